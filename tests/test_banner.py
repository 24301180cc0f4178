"""Banner tables: columns are subsets of one simulation, real shares are the survey's own,
flags follow a hand-checked test, the workbook carries the same numbers safely, and the command runs."""

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

import engine.scoring as scoring
from engine.banner import (
    BASE_ROW,
    DOWN,
    MEAN_ROW,
    TOTAL,
    UP,
    BannerConfig,
    assemble_banner,
    banner,
    two_mean_p,
    two_proportion_p,
)
from engine.banner_command import banner_table
from engine.banner_export import banner_workbook, neutralise_formula, sheet_name
from engine.cli import main
from engine.errors import FocusgroupError
from engine.metrics import apply_temperature
from engine.simulate import Simulation, simulate
from engine.surveys.model import DemographicField, Option, Question, Survey

GSS_QUESTIONS = ("natspac", "natenrgy", "natsci")
GSS_FIELDS = ("age", "partyid")
GROUPS = ("A", "B", "-C")  # "-C" starts like a formula


# -- a hand-made survey: 100 respondents per group, weights 1 and 3 in equal numbers -------

def options(*labels, off_scale=()):
    return tuple(Option((str(i),), label, float(i + 1), label in off_scale) for i, label in enumerate(labels))


def block(yes: int, size: int = 100) -> list[int]:
    """`yes` answers 0, then answers 1; with the weights alternating 1, 3 and even runs, each
    run is half weight 1 and half weight 3, so its weighted share is its count's."""
    return [0] * yes + [1] * (size - yes)


@pytest.fixture(scope="module")
def shop():
    index = pd.RangeIndex(300, name="respondent")
    group = np.repeat(GROUPS, 100)
    buy = block(80) + block(60) + block(40)  # "Yes": A 80%, B 60%, C 40%; B equals the rest of the base
    feel = [0, 1, 2, 3] * 75  # Hate, Meh, Love, Don't know in turn, weighing 1, 3, 1, 3
    questions = (
        Question("buy", "Would you buy it?", "ordinal", options("Yes", "No")),
        Question("feel", "How do you feel about it?", "ordinal",
                 options("Hate", "Meh", "Love", "Don't know", off_scale=("Don't know",)), positive="last"),
        Question("formula", '=HYPERLINK("http://example.com","click")', "nominal",
                 options("+1 more", "-less", "@mention")),
    )
    return Survey(
        id="shop", title="Shop", description="", source="hand-made.", license="none",
        fields=(DemographicField("group", "Group", GROUPS),), questions=questions,
        demographics=pd.DataFrame({"group": pd.Categorical(group, categories=GROUPS, ordered=True)}, index=index),
        answers=pd.DataFrame({"buy": np.array(buy, dtype=np.int16), "feel": np.array(feel, dtype=np.int16),
                              "formula": np.array([0, 1, 2] * 100, dtype=np.int16)}, index=index),
        weights=pd.Series(np.tile([1.0, 3.0], 150), index=index),
    )


def hand_simulation(survey, question_id, probabilities):
    """A simulation whose every persona has the given distribution (no model)."""
    question = survey.question(question_id)
    logits = np.log(np.tile(probabilities, (survey.n_respondents, 1)))
    return Simulation(survey=survey, question=question, filters={}, index=survey.demographics.index, logits=logits,
                      weights=survey.weight_array(), answers=None, stimulus=None, model_name="hand", seed=0)


@pytest.fixture(scope="module")
def shop_banner(shop):
    simulations = {"buy": hand_simulation(shop, "buy", [0.5, 0.5]),
                   "feel": hand_simulation(shop, "feel", [0.1, 0.2, 0.6, 0.1]),
                   "formula": hand_simulation(shop, "formula", [0.2, 0.3, 0.5])}
    return assemble_banner(shop, BannerConfig(questions=tuple(simulations), fields=("group",)), simulations, "hand")


def cell(result, question, row, value, field=None):
    cells = result.cells
    found = cells[(cells["question"] == question) & (cells["row"] == row) & (cells["value"] == value)]
    if field is not None:
        found = found[found["field"] == field]
    assert len(found) == 1
    return found.iloc[0]


def test_a_slice_that_clearly_differs_is_flagged_and_one_that_does_not_is_not(shop_banner):
    # Each group's Kish effective size is 200^2 / (50 * 1 + 50 * 9) = 80; the rest's is 160.
    a = cell(shop_banner, "buy", "Yes", "A")
    pooled = (80 * 0.8 + 160 * 0.5) / 240
    z = 0.3 / math.sqrt(pooled * (1 - pooled) * (1 / 80 + 1 / 160))
    assert a["real"] == pytest.approx(0.8) and a["real_p"] == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert a["real_p"] < 1e-4 and a["real_flag"] == UP
    b = cell(shop_banner, "buy", "Yes", "B")  # 60% against the rest's (80% + 40%) / 2 = 60%
    assert b["real"] == pytest.approx(0.6) and b["real_p"] == pytest.approx(1.0) and b["real_flag"] == ""
    assert cell(shop_banner, "buy", "Yes", "-C")["real_flag"] == DOWN
    assert cell(shop_banner, "buy", "No", "-C")["real_flag"] == UP
    # Every persona says 50/50, so no simulated column differs from its rest.
    buy = shop_banner.cells[shop_banner.cells["question"] == "buy"]
    assert (buy["simulated_flag"] == "").all() and buy["simulated"].iloc[:2].tolist() == pytest.approx([0.5, 0.5])


def test_the_hand_made_significance_tests():
    assert two_proportion_p(0.6, 400, 0.4, 400) < 1e-6  # z = 0.2 / sqrt(0.25 * 2 / 400) = 5.66
    assert two_proportion_p(0.52, 100, 0.5, 100) == pytest.approx(math.erfc(0.02 / math.sqrt(0.51 * 0.49 * 0.02)
                                                                             / math.sqrt(2)))
    assert two_proportion_p(0.0, 50, 0.0, 80) == 1.0
    assert two_mean_p(2.0, 1.0, 100, 1.5, 1.0, 100) == pytest.approx(math.erfc(0.5 / math.sqrt(0.02) / math.sqrt(2)))
    assert two_mean_p(2.0, 0.0, 10, 1.0, 0.0, 10) == 0.0


def test_top_box_is_the_last_on_scale_option_when_positive_is_last(shop_banner):
    rows = list(dict.fromkeys(shop_banner.cells.loc[shop_banner.cells["question"] == "feel", "row"]))
    assert rows == ["Hate", "Meh", "Love", "Don't know", "Top box: Love", MEAN_ROW]
    total = cell(shop_banner, "feel", "Top box: Love", TOTAL)
    assert total["real"] == pytest.approx(1 / 8) and total["simulated"] == pytest.approx(0.6)
    # The mean leaves "Don't know" out: (1 * 1 + 2 * 3 + 3 * 1) / 5 real, (0.1 + 0.4 + 1.8) / 0.9 simulated.
    mean = cell(shop_banner, "feel", MEAN_ROW, TOTAL)
    assert mean["real"] == pytest.approx(2.0) and mean["simulated"] == pytest.approx(2.3 / 0.9)


def test_the_total_is_never_tested_and_small_columns_are_not_either(shop, shop_banner):
    total = shop_banner.cells[shop_banner.cells["value"] == TOTAL]
    assert total[["simulated_p", "real_p"]].isna().all().all() and (total["real_flag"] == "").all()
    strict = assemble_banner(shop, BannerConfig(("buy",), ("group",), min_base=101), shop_banner.simulations, "hand")
    assert (strict.cells["real_flag"] == "").all() and strict.cells["real_p"].isna().all()


def test_the_wide_table_has_the_base_first_and_a_column_per_slice(shop_banner):
    table = shop_banner.table("buy")
    assert table.index.tolist() == [BASE_ROW, "Yes", "No", "Top box: Yes", MEAN_ROW]
    assert [value for _, value, _ in table.columns[::4]] == [TOTAL, *GROUPS]
    assert table.loc[BASE_ROW, ("group", "A", "simulated")] == 100
    assert table.loc["Yes", ("group", "A", "real_flag")] == UP


def test_the_workbook_escapes_every_text_that_a_spreadsheet_would_run(shop_banner):
    workbook = load_workbook(io.BytesIO(banner_workbook(shop_banner)))
    assert workbook.sheetnames == ["buy", "feel", "formula", "Notes"]
    cells = [sheet_cell for sheet in workbook for row in sheet.iter_rows() for sheet_cell in row
             if sheet_cell.value is not None]
    assert not any(sheet_cell.data_type == "f" for sheet_cell in cells)
    texts = {sheet_cell.value for sheet_cell in cells if isinstance(sheet_cell.value, str)}
    assert {"'" + shop_banner.survey.question("formula").text, "'+1 more", "'-less", "'@mention", "'-C"} <= texts
    assert not any(text.startswith(("=", "+", "-", "@")) for text in texts)
    assert neutralise_formula(-0.5) == -0.5 and neutralise_formula("fine") == "fine"


def test_sheet_names_are_valid_unique_and_never_notes():
    taken = {"notes", "history"}
    names = [sheet_name(text, taken) for text in ("a/b:c*d?e[f]g\\h" * 4, "a/b:c*d?e[f]g\\h" * 4, "Notes", "'x'")]
    assert all(len(name) <= 31 and not set(name) & set("[]:*?/\\") for name in names)
    assert len({name.casefold() for name in names}) == 4 and names[1].endswith("(2)")
    assert names[2] == "Notes (2)" and names[3] == "x"


def test_the_config_refuses_what_cannot_be_a_banner(shop):
    with pytest.raises(FocusgroupError, match="at least one demographic field"):
        BannerConfig(("buy",), ())
    with pytest.raises(FocusgroupError, match="twice"):
        BannerConfig(("buy", "buy"), ("group",))
    with pytest.raises(FocusgroupError, match="no demographic field"):
        assemble_banner(shop, BannerConfig(("buy",), ("colour",)), {}, "hand")


# -- the real gss2018 survey with the tiny model ---------------------------------------------

@pytest.fixture(scope="module")
def gss_banner(tiny, gss):
    reports = []
    result = banner(tiny, gss, BannerConfig(GSS_QUESTIONS, GSS_FIELDS), progress=lambda done, total:
                    reports.append((done, total)))
    return result, reports


def test_each_question_is_simulated_once_and_progress_spans_them_all(gss_banner, gss):
    result, reports = gss_banner
    assert list(result.simulations) == list(GSS_QUESTIONS)
    assert all(simulation.n_personas == gss.n_respondents for simulation in result.simulations.values())
    assert reports[-1] == (3 * gss.n_respondents, 3 * gss.n_respondents)
    assert all(done <= total for done, total in reports)


def test_the_total_column_is_the_everyone_distribution(gss_banner, tiny, gss):
    result, _ = gss_banner
    everyone = simulate(tiny, gss, "natenrgy", {}, with_baselines=False)
    total = result.cells[(result.cells["question"] == "natenrgy") & (result.cells["value"] == TOTAL)
                         & (result.cells["kind"] == "option")]
    np.testing.assert_allclose(total["simulated"], everyone.at(1.0).simulated)
    np.testing.assert_allclose(total["real"], everyone.real)
    assert (total["n_personas"] == gss.n_respondents).all() and (total["n_real"] == everyone.n_real).all()


def test_each_slice_has_the_surveys_own_real_shares(gss_banner, gss):
    result, _ = gss_banner
    for question_id in GSS_QUESTIONS:
        labels = gss.question(question_id).labels
        frame = pd.DataFrame({"answer": gss.answers[question_id], "weight": gss.weight_array()})
        for field_name in GSS_FIELDS:
            for value in gss.field(field_name).values:
                members = frame[(gss.demographics[field_name] == value) & (frame["answer"] >= 0)]
                expected = members.groupby("answer")["weight"].sum().reindex(range(len(labels)), fill_value=0)
                got = result.cells[(result.cells["question"] == question_id) & (result.cells["field"] == field_name)
                                   & (result.cells["value"] == value) & (result.cells["kind"] == "option")]
                np.testing.assert_allclose(got["real"], expected / expected.sum())
                assert (got["n_real"] == len(members)).all()


def test_each_slice_simulates_as_the_mean_of_its_own_personas(gss_banner, gss):
    result, _ = gss_banner
    simulation = result.simulations["natspac"]
    probabilities = apply_temperature(simulation.logits, 1.0)
    members = (gss.demographics.loc[simulation.index, "partyid"] == "Strong Democrat").to_numpy()
    got = result.cells[(result.cells["question"] == "natspac") & (result.cells["value"] == "Strong Democrat")
                       & (result.cells["kind"] == "option")]
    np.testing.assert_allclose(got["simulated"], probabilities[members].mean(axis=0))
    assert (got["n_personas"] == members.sum()).all()


def test_flags_appear_exactly_where_the_test_is_significant(gss_banner):
    cells = gss_banner[0].cells
    sliced = cells[cells["value"] != TOTAL]
    for side in ("simulated", "real"):
        significant = sliced[f"{side}_p"] < 0.05
        assert ((sliced[f"{side}_flag"] != "") == significant).all()
    assert (sliced["real_flag"] != "").any()  # real age and party differences exist in the GSS
    # The arrow points the way the slice differs from the Total.
    total = cells[cells["value"] == TOTAL].set_index(["question", "row"])["real"]
    flagged = sliced[sliced["real_flag"] != ""]
    above = flagged["real"].to_numpy() > total.loc[list(zip(flagged["question"], flagged["row"]))].to_numpy()
    assert ((flagged["real_flag"] == UP).to_numpy() == above).all()


def test_a_new_temperature_runs_no_model(gss_banner, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the model ran for a temperature change")

    monkeypatch.setattr(scoring, "score_personas", forbidden)
    result = gss_banner[0]
    cooler = result.at(0.3)
    assert cooler.config.temperature == 0.3 and not np.allclose(cooler.cells["simulated"], result.cells["simulated"])
    pd.testing.assert_series_equal(cooler.cells["real"], result.cells["real"])


def test_the_workbook_has_a_sheet_per_question_and_the_banners_numbers(gss_banner):
    result = gss_banner[0]
    workbook = load_workbook(io.BytesIO(banner_workbook(result)))
    assert workbook.sheetnames == [*GSS_QUESTIONS, "Notes"]
    for question_id in GSS_QUESTIONS:
        sheet, table = workbook[question_id], result.table(question_id)
        assert sheet["A1"].value == result.survey.question(question_id).text
        for offset, (row_label, values) in enumerate(table.iterrows()):
            row = 6 + offset
            assert sheet.cell(row=row, column=1).value == row_label
            for position, value in enumerate(values.tolist()):
                written = sheet.cell(row=row, column=2 + position)
                if value == "" or (isinstance(value, float) and math.isnan(value)):
                    assert written.value is None
                else:
                    assert written.value == pytest.approx(value)
                if row_label != BASE_ROW and not table.columns[position][2].endswith("_flag"):
                    assert written.number_format == ("0.00" if row_label == MEAN_ROW else "0.0%")
    notes = dict(workbook["Notes"].iter_rows(values_only=True))
    assert notes["Model"] == "tiny" and notes["Temperature"] == "1" and notes["Survey"].endswith("(gss2018)")
    assert "Kish" in notes["Significance"] and "Simulated by a language model" in notes["Caution"]
    assert notes["Date"] == result.created


def test_the_text_table_wraps_long_column_labels_instead_of_cutting_them(gss_banner):
    text = banner_table(gss_banner[0].to_dict())
    block = text[text.index("natsci:"):]
    assert "Independent," in block and "close to" in block and "Democrat" in block and "…" not in block
    assert "Kish" in text and "Simulated by a language model." in text


def test_the_banner_command_prints_a_table_json_and_writes_the_workbook(capsys, tmp_path):
    workbook = tmp_path / "out" / "banner.xlsx"
    code = main(["banner", "--questions", "natspac", "natsci", "--fields", "sex", "--slice", "age=18-29",
                 "--model", "tiny", "--dtype", "float32", "--xlsx", str(workbook)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "base age = 18-29" in out and "Female" in out and "Kish" in out and "Top box: Too little" in out
    assert load_workbook(workbook).sheetnames == ["natspac", "natsci", "Notes"]
    assert not [path for path in workbook.parent.iterdir() if path.name.startswith(".")]  # no temporary left

    code = main(["banner", "--questions", "natspac", "--fields", "sex", "--model", "tiny", "--dtype", "float32",
                 "--temperature", "0.5", "--format", "json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["temperature"] == 0.5 and result["fields"] == ["sex"]
    cells = result["questions"][0]["cells"]
    assert {cell["value"] for cell in cells} == {TOTAL, "Male", "Female"}
    assert {"simulated", "real", "simulated_flag", "real_flag", "n_personas", "n_real"} <= set(cells[0])


def test_a_bad_field_is_one_line_before_any_model_loads(capsys):
    code = main(["banner", "--questions", "natspac", "--fields", "colour", "--model", "/nonexistent/model"])
    err = capsys.readouterr().err
    assert code == 2 and "no demographic field 'colour'" in err and err.count("\n") == 1
