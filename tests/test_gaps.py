"""Slice gaps: hand-computed gaps, the summaries, and the alarm wherever a simulation is shown."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.gaps import ALARM, gap_correlation, slice_gaps, spread_ratio, summarize_gaps, typical_spread
from engine.simulate import GAP_PERSONAS, personas_for, simulate
from engine.surveys.model import DemographicField, Option, Question, Survey
from engine.tables import evaluation_table, gap_lines

PAGES = Path(__file__).resolve().parents[1] / "dashboard" / "pages"


def options(*labels, off_scale=()):
    return tuple(Option((str(i),), label, float(i + 1), label in off_scale) for i, label in enumerate(labels))


GOOD_OK_BAD = options("Good", "OK", "Bad")
# Eight respondents: sex F F F F M M M M, age y o y o y o y o.
ANSWERS = {
    "first": [0, 0, 0, 1, 1, 2, 2, 2],  # top box "Good": F 3/4, M 0, young 2/4, old 1/4, everyone 3/8
    "last": [0, 0, 0, 1, 1, 2, 2, 2],  # the same answers, top box "Bad"
    "colour": [0, 0, 1, 1, 0, 1, 1, 1],  # Red: F 1/2, M 1/4, young 1/2, old 1/4, everyone 3/8
    "dk": [0, 2, 2, 2, 1, 1, 0, 2],  # "Don't know" off the scale
}


@pytest.fixture(scope="module")
def little():
    index = pd.RangeIndex(1, 9, name="respondent")
    demographics = pd.DataFrame({
        "sex": pd.Categorical(list("FFFFMMMM"), categories=["F", "M"], ordered=True),
        "age": pd.Categorical(["y", "o"] * 4, categories=["y", "o"], ordered=True),
    }, index=index)
    questions = (
        Question("first", "How is it?", "ordinal", GOOD_OK_BAD),
        Question("last", "How is it, top box last?", "ordinal", GOOD_OK_BAD, positive="last"),
        Question("colour", "Which colour?", "nominal", options("Red", "Blue")),
        Question("dk", "Good or bad?", "ordinal", options("Good", "Bad", "Don't know", off_scale=("Don't know",))),
    )
    return Survey(
        id="little", title="Little", description="", source="hand-made", license="none",
        fields=(DemographicField("sex", "Sex", ("F", "M")), DemographicField("age", "Age", ("y", "o"))),
        questions=questions, demographics=demographics,
        answers=pd.DataFrame({name: np.array(values, dtype=np.int16) for name, values in ANSWERS.items()},
                             index=index),
    )


def one_hot(answers, k):
    return np.eye(k)[np.asarray(answers)]


def gaps_of(survey, question_id, probabilities=None, **options):
    question = survey.question(question_id)
    answers = np.array(ANSWERS[question_id])
    k = len(question.options)
    probabilities = one_hot(answers, k) if probabilities is None else probabilities
    return slice_gaps(survey, question, survey.demographics.index, probabilities, np.ones(8), answers,
                      **{"min_slice": 2, **options})


def column(report, measure, source="real"):
    return {(row.field, row.value, row.option): getattr(row, source) for row in report.tables[measure].rows}


def test_top_box_gaps_by_hand_with_the_positive_end_first_and_last(little):
    first = column(gaps_of(little, "first"), "top_box")
    assert first == pytest.approx({("sex", "F", None): 0.75 - 0.375, ("sex", "M", None): -0.375,
                                   ("age", "y", None): 0.125, ("age", "o", None): -0.125})
    last = gaps_of(little, "last")
    assert last.positive == "Bad"
    assert column(last, "top_box") == pytest.approx({("sex", "F", None): -0.375, ("sex", "M", None): 0.375,
                                                     ("age", "y", None): -0.125, ("age", "o", None): 0.125})


def test_mean_score_gaps_by_hand(little):
    # Everyone's mean is 2.0; F (1 + 1 + 1 + 2) / 4, M (2 + 3 + 3 + 3) / 4, young 1.75, old 2.25.
    report = gaps_of(little, "first")
    assert report.tables["mean"].everyone["real"] == pytest.approx([2.0])
    assert column(report, "mean") == pytest.approx({("sex", "F", None): -0.75, ("sex", "M", None): 0.75,
                                                    ("age", "y", None): -0.25, ("age", "o", None): 0.25})


def test_nominal_gaps_are_one_per_option_share(little):
    report = gaps_of(little, "colour")
    assert list(report.tables) == ["share"] and report.positive is None
    assert column(report, "share") == pytest.approx({
        ("sex", "F", "Red"): 0.125, ("sex", "F", "Blue"): -0.125, ("sex", "M", "Red"): -0.125,
        ("sex", "M", "Blue"): 0.125, ("age", "y", "Red"): 0.125, ("age", "y", "Blue"): -0.125,
        ("age", "o", "Red"): -0.125, ("age", "o", "Blue"): 0.125})


def test_off_scale_answers_count_in_the_top_box_share_but_not_in_the_mean(little):
    # dk answers: F Good, DK, DK, DK; M Bad, Bad, Good, DK. Top box "Good": everyone 2/8, F 1/4, M 1/4.
    # Means over answers on the scale: everyone (1 + 2 + 2 + 1) / 4 = 1.5, F 1 (one answer), M 5/3.
    report = gaps_of(little, "dk")
    assert report.off_scale == ("Don't know",)
    assert column(report, "top_box")[("sex", "F", None)] == pytest.approx(0.0)
    assert report.tables["mean"].everyone["real"] == pytest.approx([1.5])
    assert column(report, "mean")[("sex", "F", None)] == pytest.approx(-0.5)
    assert column(report, "mean")[("sex", "M", None)] == pytest.approx(5 / 3 - 1.5)


def test_a_model_that_copies_the_real_answers_has_r_one_and_spread_one_and_no_alarm(little):
    report = gaps_of(little, "first")
    table = report.primary
    assert table.measure == "top_box"
    np.testing.assert_allclose(table.gaps("simulated"), table.gaps("real"))
    assert table.correlation == pytest.approx(1.0) and table.spread_ratio == pytest.approx(1.0)
    assert not report.alarm and report.message is None


def test_a_constant_model_raises_the_alarm_and_leaves_r_undefined(little):
    constant = np.tile([0.5, 0.3, 0.2], (8, 1))
    report = gaps_of(little, "first", constant)
    assert report.alarm and report.message == ALARM
    assert report.primary.correlation is None and report.primary.spread_ratio == pytest.approx(0.0, abs=1e-9)
    assert report.reference == "the real gaps"
    assert ALARM in gap_lines(report.to_dict())


def test_a_model_with_a_quarter_of_the_real_spread_is_just_above_the_alarm(little):
    # Simulated persona distributions shrunk towards everyone's by 0.3 keep r = 1 and the
    # spread ratio at 0.3 (> 0.25): no alarm; shrunk by 0.2, the alarm sounds.
    answers = one_hot(ANSWERS["first"], 3)
    for shrink, alarmed in ((0.3, False), (0.2, True)):
        probabilities = shrink * answers + (1 - shrink) * answers.mean(axis=0)
        report = gaps_of(little, "first", probabilities)
        assert report.primary.spread_ratio == pytest.approx(shrink)
        assert report.primary.correlation == pytest.approx(1.0)
        assert report.alarm is alarmed


def test_logistic_gaps_sit_beside_and_are_summarised(little):
    answers = one_hot(ANSWERS["first"], 3)
    report = gaps_of(little, "first", logistic=0.5 * answers + 0.5 / 3)
    assert report.primary.logistic_spread_ratio == pytest.approx(0.5)
    assert report.primary.logistic_correlation == pytest.approx(1.0)
    assert column(report, "top_box", "logistic")[("sex", "M", None)] == pytest.approx(-0.375 / 2)


def test_a_new_question_reads_its_spread_against_the_surveys_typical_one(little):
    # The other ordinal questions' real top-box gap SDs: "first" and "last" both
    # sqrt((2 x 0.375^2 + 2 x 0.125^2) / 4); the median of three with two equal is that.
    new = Question("new", "Would you buy it?", "ordinal", options("Yes", "Maybe", "No"))
    typical, count = typical_spread(little, new, min_slice=2)
    assert count == 3 and typical == pytest.approx(np.sqrt((2 * 0.375**2 + 2 * 0.125**2) / 4))
    flat = slice_gaps(little, new, little.demographics.index, np.tile([0.2, 0.5, 0.3], (8, 1)), np.ones(8),
                      min_slice=2)
    assert flat.alarm and "median real gap spread of the survey's 3 other ordinal questions" in flat.reference
    assert flat.primary.real_sd is None and flat.primary.correlation is None
    varied = slice_gaps(little, new, little.demographics.index, one_hot(ANSWERS["first"], 3), np.ones(8),
                        min_slice=2)
    assert not varied.alarm


def test_slices_smaller_than_min_slice_are_left_out(little):
    report = gaps_of(little, "first", min_slice=5)
    assert report.primary.rows == () and not report.alarm
    assert "No single-field slice" in gap_lines(report.to_dict())[-1]


def test_summaries_are_undefined_not_a_crash_without_spread():
    assert gap_correlation([0.1, 0.1, 0.1], [0.2, -0.1, 0.3]) is None
    assert gap_correlation([0.1, 0.2], [0.2, 0.3]) is None  # two points fit any line
    assert spread_ratio([0.1, -0.1], [0.0, 0.0]) is None
    assert gap_correlation([1.0, 2.0, 3.0, np.nan], [2.0, 4.0, 7.0, 1.0]) == pytest.approx(
        np.corrcoef([1, 2, 3], [2, 4, 7])[0, 1])


def test_summaries_over_questions_name_the_alarmed_ones(little):
    constant = np.tile([0.5, 0.3, 0.2], (8, 1))
    reports = [gaps_of(little, "first").to_dict(), gaps_of(little, "last", constant).to_dict()]
    summary = summarize_gaps(reports)
    assert summary["alarms"] == ["last"] and summary["mean_correlation"] == pytest.approx(1.0)
    assert summary["median_spread_ratio"] == pytest.approx(0.5)


# -- the engine's simulations and the command line (tiny model) ----------------------------

def constant_logits(loaded, question, fields, personas, stimulus=None, progress=None):
    return np.tile(np.log(np.linspace(1.0, 2.0, len(question.options)) / 4.5), (len(personas), 1))


@pytest.fixture
def copying_logits(gss, monkeypatch):
    """A model that answers as the real respondent with that persona did (uniform when they did not answer)."""
    personas = personas_for(gss, gss.demographics.index)

    def fake(loaded, question, fields, asked, stimulus=None, progress=None):
        answers = dict(zip(personas, gss.answer_codes(question.id)))
        k = len(question.options)
        rows = [np.full(k, 1.0 / k) if answers[p] < 0 else 0.01 + 0.98 * np.eye(k)[answers[p]] for p in asked]
        return np.log(np.array(rows) / np.array(rows).sum(axis=1, keepdims=True))

    monkeypatch.setattr("engine.simulate.option_logits", fake)


def test_simulate_with_gaps_scores_everyone_and_reuses_an_everyone_slice(tiny, gss, monkeypatch):
    monkeypatch.setattr("engine.simulate.option_logits", constant_logits)
    women = simulate(tiny, gss, "natspac", {"sex": ("Female",)}, with_baselines=False, gaps=True)
    # everyone: a seeded draw of GAP_PERSONAS from the 2,348 respondents, the same at every call
    assert women.population is not women and women.population.n_personas == min(gss.n_respondents, GAP_PERSONAS)
    again = simulate(tiny, gss, "natspac", {"sex": ("Female",)}, with_baselines=False, gaps=True)
    assert again.population.index.equals(women.population.index) and not women.population.filters
    result = women.to_dict(0.7)
    gaps = result["gaps"]
    assert gaps["alarm"] and gaps["message"] == ALARM and gaps["measure"] == "top_box"
    assert gaps["positive"] == "Too little"
    rows = gaps["tables"]["top_box"]["rows"]
    assert ("partyid", "Strong Democrat") in {(row["field"], row["value"]) for row in rows}
    assert all(row["logistic"] is None for row in rows)  # no baselines asked
    everyone = simulate(tiny, gss, "natspac", with_baselines=False, gaps=True)
    assert everyone.population is everyone
    assert simulate(tiny, gss, "natspac", with_baselines=False).to_dict(1.0)["gaps"] is None


def test_the_cli_json_and_table_show_the_alarm_for_a_constant_model(capsys, monkeypatch):
    monkeypatch.setattr("engine.simulate.option_logits", constant_logits)
    argv = ["simulate", "--question", "natspac", "--slice", "sex=female", "--personas", "30", "--model", "tiny",
            "--dtype", "float32"]
    assert main(argv + ["--format", "json"]) == 0
    gaps = json.loads(capsys.readouterr().out)["gaps"]
    summary = gaps["tables"]["top_box"]["summary"]
    assert gaps["alarm"] and gaps["message"] == ALARM and summary["correlation"] is None
    assert summary["logistic_correlation"] > 0.5  # demographics alone tell the slices apart
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Do slices differ?" in out and ALARM in out.splitlines()
    assert "correlation r undefined" in out
    assert main(argv + ["--no-gaps", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["gaps"] is None


def test_the_cli_shows_no_alarm_for_a_model_that_copies_the_real_answers(capsys, copying_logits):
    argv = ["simulate", "--question", "natenrgy", "--model", "tiny", "--dtype", "float32", "--no-baselines"]
    assert main(argv + ["--format", "json"]) == 0
    gaps = json.loads(capsys.readouterr().out)["gaps"]
    summary = gaps["tables"]["top_box"]["summary"]
    assert not gaps["alarm"] and gaps["message"] is None
    assert summary["correlation"] > 0.95 and 0.9 < summary["spread_ratio"] < 1.1
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Top box gaps:" in out and ALARM not in out


def test_evaluate_reports_gaps_per_question_and_names_the_alarmed(tiny, gss, monkeypatch):
    from engine.evaluate import EvaluationConfig, evaluate

    monkeypatch.setattr("engine.evaluate.option_logits", constant_logits)
    result = evaluate(tiny, gss, EvaluationConfig(questions=("natspac",), min_slice=40))
    gaps = result["questions"][0]["gaps"]
    assert gaps["alarm"] and gaps["tables"]["top_box"]["summary"]["real_sd"] > 0
    assert result["summary"]["all"]["gaps"]["alarms"] == ["natspac"]
    assert f"  natspac: {ALARM}" in evaluation_table(result).splitlines()


def test_the_focus_group_page_warns_when_the_model_answers_every_slice_alike(monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard import resources

    monkeypatch.setenv("FOCUSGROUP_MODEL", "tiny")
    monkeypatch.setattr("engine.simulate.option_logits", constant_logits)
    resources.SIMULATIONS.clear()
    app = AppTest.from_file(str(PAGES / "focus_group.py"), default_timeout=120)
    app.run()
    app.multiselect(key="slice_gss2018_sex").set_value(["Female"])
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert [warning.value for warning in app.warning if warning.value == ALARM] == [ALARM]
    assert any(header.value == "Do slices differ?" for header in app.subheader)
    assert any("correlation r = undefined" in markdown.value for markdown in app.markdown)
    resources.SIMULATIONS.clear()
