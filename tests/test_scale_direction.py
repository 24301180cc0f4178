"""A scale's favourable end (`positive`) and its off-scale options (`off_scale`): parsed from
specs, checked with one clear message, and kept out of positions, means and distances."""

import math
import textwrap

import numpy as np
import pytest

from engine.cli import main
from engine.errors import FocusgroupError
from engine.metrics import population_metrics
from engine.surveys.model import DEFAULT_POSITIVE, Option, Question
from engine.surveys.spec import survey_from_spec

SPEC = """
    id = "cars"
    title = "Car panel"
    [data]
    file = "cars.csv"
    [scales.likely]
    type = "ordinal"
    positive = "last"
    options = [
      {code = "1", label = "Very unlikely"},
      {code = "2", label = "Unlikely"},
      {code = "9", label = "I do not expect to buy a car", off_scale = true},
      {code = "3", label = "Likely"},
    ]
    [[fields]]
    name = "sex"
    column = "sex"
    options = ["F", "M"]
    [[questions]]
    id = "electric"
    column = "electric"
    text = "How likely is your next car to be electric?"
    scale = "likely"
    [[questions]]
    id = "hybrid"
    column = "hybrid"
    text = "How likely is your next car to be a hybrid?"
    scale = "likely"
    positive = "first"
    [[questions]]
    id = "rating"
    column = "rating"
    text = "How good is your car?"
    type = "ordinal"
    options = ["Good", "Fair", "Poor"]
"""
CSV = "sex,electric,hybrid,rating\nF,1,3,Good\nM,9,2,Poor\nF,3,9,Fair\n"


def load(tmp_path, spec=SPEC):
    (tmp_path / "cars.toml").write_text(textwrap.dedent(spec))
    (tmp_path / "cars.csv").write_text(CSV)
    return survey_from_spec(tmp_path / "cars.toml", tmp_path)


def test_positive_comes_from_the_scale_the_question_or_the_default(tmp_path):
    survey = load(tmp_path)
    electric, hybrid, rating = (survey.question(name) for name in ("electric", "hybrid", "rating"))
    assert DEFAULT_POSITIVE == "first"
    assert (electric.positive, hybrid.positive, rating.positive) == ("last", "first", "first")
    assert electric.labels[electric.positive_index] == "Likely"  # the last option on the scale
    assert hybrid.labels[hybrid.positive_index] == "Very unlikely"
    assert rating.labels[rating.positive_index] == "Good"


def test_off_scale_options_keep_their_answers_but_no_position(tmp_path):
    survey = load(tmp_path)
    electric = survey.question("electric")
    # Positions count only the options on the scale: 1, 2, (none), 3.
    np.testing.assert_array_equal(electric.values[[0, 1, 3]], [1.0, 2.0, 3.0])
    assert math.isnan(electric.values[2])
    assert electric.off_scale_labels == ["I do not expect to buy a car"]
    assert survey.answers["electric"].tolist() == [0, 2, 3]
    assert survey.question("rating").off_scale_labels == []


def test_off_scale_shares_stay_in_the_distributional_metrics_but_not_in_wasserstein(tmp_path):
    values = load(tmp_path).question("electric").values
    real, simulated = np.array([0.5, 0.0, 0.5, 0.0]), np.array([0.0, 0.0, 0.0, 1.0])
    scores = population_metrics(real, simulated, values)
    assert scores["tv"] == pytest.approx(1.0)  # the off-scale share counts here
    # On the scale: all of real on position 1, all of simulated on position 3.
    assert scores["wasserstein"] == pytest.approx(1.0)


@pytest.mark.parametrize("change,message", [
    (('positive = "last"', 'positive = "middle"'),
     "question 'electric': `positive` must be \"first\" or \"last\" (the end of the listed options that is favourable"),
    (('positive = "first"', 'positive = 1'), "question 'hybrid': `positive` must be"),
    (('off_scale = true', 'off_scale = "yes"'),
     "question 'electric' option 3: `off_scale` must be true or false (TOML booleans, unquoted); got 'yes'"),
])
def test_bad_values_name_the_spec_the_key_and_the_fix(tmp_path, change, message):
    with pytest.raises(FocusgroupError) as error:
        load(tmp_path, SPEC.replace(*change))
    assert message in str(error.value) and "cars.toml" in str(error.value)


NOMINAL = SPEC.replace('''    type = "ordinal"
    options = ["Good", "Fair", "Poor"]''', '''    type = "nominal"
    options = ["Good", "Fair", "Poor"]''')


@pytest.mark.parametrize("spec,message", [
    (NOMINAL.replace('options = ["Good", "Fair", "Poor"]', 'options = ["Good", "Fair", "Poor"]\n    positive = "last"'),
     "question 'rating' is nominal, so `positive` means nothing for it"),
    (NOMINAL.replace('options = ["Good", "Fair", "Poor"]',
                     'options = ["Good", "Fair", {code = "Poor", label = "Poor", off_scale = true}]'),
     "question 'rating' is nominal, so `off_scale` means nothing for it"),
    (SPEC.replace('{code = "1", label = "Very unlikely"}', '{code = "1", label = "Very unlikely", off_scale = true}')
         .replace('{code = "2", label = "Unlikely"}', '{code = "2", label = "Unlikely", off_scale = true}'),
     "only 1 option(s) are on the scale; at least two must not be marked `off_scale = true`"),
    (SPEC.replace('off_scale = true', 'off_scale = true, value = 0'),
     "an `off_scale` option has no place on the scale; remove its `value`"),
    (SPEC.replace('options = ["F", "M"]', 'options = ["F", {code = "M", label = "M", off_scale = true}]'),
     "field 'sex': `off_scale` marks answer options of questions"),
])
def test_meaningless_or_impossible_scales_are_refused(tmp_path, spec, message):
    with pytest.raises(FocusgroupError) as error:
        load(tmp_path, spec)
    assert message in str(error.value)


def test_the_command_line_reports_a_bad_direction_in_one_line(tmp_path, capsys):
    load(tmp_path)
    (tmp_path / "cars.toml").write_text(textwrap.dedent(SPEC.replace('positive = "last"', 'positive = "middle"')))
    assert main(["questions", "--survey", str(tmp_path / "cars.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "`positive` must be" in err


def test_questions_built_in_code_are_checked_too():
    two = (Option(("1",), "Yes", 1.0), Option(("2",), "No", 2.0))
    with pytest.raises(FocusgroupError, match="Question 'q' has positive = 'middle'; use \"first\" or \"last\""):
        Question("q", "Text?", "ordinal", two, positive="middle")
    with pytest.raises(FocusgroupError, match="Question 'q' is nominal"):
        Question("q", "Text?", "nominal", two + (Option(("9",), "Don't know", 3.0, off_scale=True),))
    with pytest.raises(FocusgroupError, match="at least two must not be off-scale"):
        Question("q", "Text?", "ordinal", (two[0], Option(("9",), "Don't know", 3.0, off_scale=True)))
    assert Question("q", "Text?", "nominal", two).positive_index is None
