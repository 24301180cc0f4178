"""Checks of engine.baselines on the real GSS 2018 survey and a tiny synthetic one.

Run: python -m pytest -q tests/test_baselines.py
"""

import numpy as np
import pandas as pd
import pytest

from engine.baselines import (
    BASELINES,
    BaselinePrediction,
    best_classical,
    demographic_features,
    fit_baselines,
)
from engine.errors import FocusgroupError
from engine.metrics import answer_distribution, individual_metrics
from engine.surveys import load_survey
from engine.surveys.model import DemographicField, Option, Question, Survey
from engine.surveys.split import split_index

QUESTION = "natenrgy"


@pytest.fixture(scope="module")
def gss():
    return load_survey("gss2018")


@pytest.fixture(scope="module")
def splits(gss):
    return split_index(gss, "train"), split_index(gss, "test")


@pytest.fixture(scope="module")
def predictions(gss, splits):
    train, test = splits
    return fit_baselines(gss, QUESTION, train, test, seed=0)


def synthetic_survey(n: int = 80, weights: pd.Series | None = None) -> Survey:
    """Two demographic fields, one nominal and one ordinal question, answers tied to group."""
    rng = np.random.default_rng(0)
    index = pd.Index(np.arange(1, n + 1), name="respondent")
    group = rng.integers(0, 2, n)
    demographics = pd.DataFrame({
        "group": pd.Categorical.from_codes(group, ["a", "b"], ordered=True),
        "region": pd.Categorical.from_codes(rng.integers(-1, 3, n), ["north", "south", "west"], ordered=True),
    }, index=index)
    nominal = np.where(group == 0, rng.integers(0, 2, n), 2).astype(np.int16)
    ordinal = np.where(group == 0, 0, rng.integers(1, 3, n)).astype(np.int16)
    nominal[:3] = -1
    answers = pd.DataFrame({"colour": nominal, "agree": ordinal}, index=index)
    options = lambda labels: tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(labels))
    return Survey(
        id="toy", title="Toy", description="", source="synthetic", license="none",
        fields=(DemographicField("group", "Group", ("a", "b")),
                DemographicField("region", "Region", ("north", "south", "west"))),
        questions=(Question("colour", "Favourite colour?", "nominal", options(["red", "green", "blue"])),
                   Question("agree", "Agree?", "ordinal", options(["no", "maybe", "yes"]))),
        demographics=demographics, answers=answers, weights=weights,
    )


def test_every_baseline_gives_k_columns_of_rows_summing_to_one(gss, splits, predictions):
    k = len(gss.question(QUESTION).options)
    assert set(predictions) == set(BASELINES)
    for name, prediction in predictions.items():
        assert isinstance(prediction, BaselinePrediction) and prediction.name == name
        assert prediction.probabilities.shape == (len(splits[1]), k)
        np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0)
        assert (prediction.probabilities >= 0).all()
    assert predictions["svr"].point_predictions.shape == (len(splits[1]),)


def test_marginal_equals_train_answer_distribution(gss, splits, predictions):
    train, _ = splits
    question = gss.question(QUESTION)
    expected = answer_distribution(
        gss.answers.loc[train, QUESTION].to_numpy(), len(question.options), gss.weight_array(train)
    )
    np.testing.assert_allclose(predictions["marginal"].probabilities, np.tile(expected, (len(splits[1]), 1)))


def test_logistic_beats_uniform_on_test_log_loss(gss, splits, predictions):
    _, test = splits
    answers = gss.answers.loc[test, QUESTION].to_numpy()
    values = gss.question(QUESTION).values
    loss = {
        name: individual_metrics(predictions[name].probabilities, answers, values)["log_loss"]
        for name in ("uniform", "logistic")
    }
    assert loss["uniform"] == pytest.approx(np.log(3))
    assert loss["logistic"] < loss["uniform"]


def test_baselines_are_reproducible_with_the_same_seed(gss, splits, predictions):
    again = fit_baselines(gss, QUESTION, *splits, seed=0, names=("logistic", "gradient_boosting", "svr"))
    for name, prediction in again.items():
        np.testing.assert_array_equal(prediction.probabilities, predictions[name].probabilities)
    np.testing.assert_array_equal(again["svr"].point_predictions, predictions["svr"].point_predictions)


def test_svr_point_predictions_map_to_nearest_option(gss, predictions):
    values = gss.question(QUESTION).values
    svr = predictions["svr"]
    nearest = np.abs(svr.point_predictions[:, None] - values[None, :]).argmin(axis=1)
    np.testing.assert_array_equal(svr.probabilities.argmax(axis=1), nearest)
    assert set(np.unique(svr.probabilities)) <= {0.0, 1.0}


def test_demographic_features_have_the_same_columns_for_any_index(gss, splits):
    train, test = splits
    n_columns = sum(len(gss.demographics[c].cat.categories) + 1 for c in gss.demographics.columns)
    everyone = demographic_features(gss, gss.demographics.index)
    assert everyone.shape == (gss.n_respondents, n_columns)
    # Each field is one-hot: exactly one 1 per field per row.
    assert (everyone.sum(axis=1) == len(gss.demographics.columns)).all()
    subset = demographic_features(gss, test[:5])
    positions = gss.demographics.index.get_indexer(test[:5])
    np.testing.assert_array_equal(subset, everyone[positions])


def test_svr_is_skipped_for_nominal_questions():
    survey = synthetic_survey()
    index = survey.demographics.index
    nominal = fit_baselines(survey, "colour", index[:60], index[60:])
    assert "svr" not in nominal and "logistic" in nominal
    ordinal = fit_baselines(survey, "agree", index[:60], index[60:])
    assert "svr" in ordinal


def test_unseen_option_gets_a_tiny_finite_probability():
    survey = synthetic_survey()
    survey.answers.loc[survey.answers["colour"] == 1, "colour"] = 0  # "green" never answered
    index = survey.demographics.index
    logistic = fit_baselines(survey, "colour", index[:60], index[60:], names=("logistic",))["logistic"]
    assert (logistic.probabilities[:, 1] > 0).all() and (logistic.probabilities[:, 1] < 1e-5).all()
    np.testing.assert_allclose(logistic.probabilities.sum(axis=1), 1.0)


def test_few_train_answers_give_only_trivial_baselines():
    survey = synthetic_survey()
    index = survey.demographics.index
    result = fit_baselines(survey, "agree", index[:15], index[15:])
    assert set(result) == {"uniform", "marginal"}


def test_marginal_uses_survey_weights():
    survey = synthetic_survey(weights=pd.Series(np.linspace(0.5, 3.0, 80), index=pd.Index(np.arange(1, 81))))
    index = survey.demographics.index
    marginal = fit_baselines(survey, "agree", index[:60], index[60:], names=("marginal",))["marginal"]
    answers = survey.answers.loc[index[:60], "agree"].to_numpy()
    weighted = answer_distribution(answers, 3, survey.weight_array(index[:60]))
    assert not np.allclose(weighted, answer_distribution(answers, 3))
    np.testing.assert_allclose(marginal.probabilities[0], weighted)


def test_unknown_baseline_name_raises():
    survey = synthetic_survey()
    index = survey.demographics.index
    with pytest.raises(FocusgroupError):
        fit_baselines(survey, "agree", index[:60], index[60:], names=("forest",))


def test_best_classical_picks_lowest_present_classical_baseline():
    present = {name: None for name in ("uniform", "marginal", "logistic", "gradient_boosting")}
    scores = {"uniform": 0.1, "marginal": 0.2, "logistic": 0.9, "gradient_boosting": 0.8, "svr": 0.01}
    assert best_classical(present, scores) == "gradient_boosting"
    with pytest.raises(FocusgroupError):
        best_classical({"uniform": None}, scores)
