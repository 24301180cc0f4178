"""Checks of engine.baselines on the real GSS 2018 survey and a tiny synthetic one.

Run: python -m pytest -q tests/test_baselines.py
"""

import numpy as np
import pandas as pd
import pytest

from engine.baselines import (
    BASELINES,
    DATA_BASELINES,
    NO_DATA_BASELINES,
    BaselinePrediction,
    best_classical,
    demographic_features,
    fit_baselines,
    fit_scale_prior,
    gaussian_option_probabilities,
    same_scale_questions,
    svr_residual_sd,
)
from engine.errors import FocusgroupError
from engine.metrics import answer_distribution, individual_metrics
from engine.surveys import load_survey
from engine.surveys.model import MISSING, DemographicField, Option, Question, Survey
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


def test_svr_probabilities_are_a_gaussian_integrated_over_each_options_interval():
    # N(2, 1) on options valued 1, 2, 3: edges 1.5 and 2.5, the ends open
    tail = 0.3085375387  # Phi(-0.5)
    probabilities = gaussian_option_probabilities(np.array([2.0]), 1.0, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(probabilities, [[tail, 1 - 2 * tail, tail]], rtol=1e-9)
    # N(1.2, 0.5): Phi(0.6) = .72575, Phi(2.6) - Phi(0.6) = .26959, 1 - Phi(2.6) = .00466
    near_low = gaussian_option_probabilities(np.array([1.2]), 0.5, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(near_low, [[0.72575, 0.26959, 0.00466]], atol=1e-5)
    # a scale listed high to low gets the same masses on the same values
    reversed_scale = gaussian_option_probabilities(np.array([1.2]), 0.5, np.array([3.0, 2.0, 1.0]))
    np.testing.assert_allclose(reversed_scale, near_low[:, ::-1])


def test_svr_probabilities_sum_to_one_peak_at_the_nearest_option_and_flatten_with_the_residual_sd():
    values = np.array([0.0, 25.0, 50.0, 75.0, 100.0])  # a 0-100 scale with five options
    centres = np.array([-40.0, 10.0, 30.0, 62.0, 140.0])
    narrow = gaussian_option_probabilities(centres, 10.0, values)
    wide = gaussian_option_probabilities(centres, 40.0, values)
    np.testing.assert_allclose(narrow.sum(axis=1), 1.0)
    np.testing.assert_allclose(wide.sum(axis=1), 1.0)
    assert narrow.argmax(axis=1).tolist() == [0, 0, 1, 2, 4]  # 10 is nearer 0 than 25; 62 nearer 50
    assert (wide.max(axis=1) < narrow.max(axis=1)).all()

    def entropy(p):
        return -(p * np.log(p)).sum(axis=1)

    assert (entropy(wide) > entropy(narrow)).all()
    # a perfect fit (sigma 0) still leaves every option a tiny, finite probability
    exact = gaussian_option_probabilities(np.array([25.0]), 0.0, values)
    assert exact.argmax() == 1 and (exact > 0).all() and exact[0, 0] < 1e-5
    np.testing.assert_allclose(exact.sum(), 1.0)


def test_svr_residual_sd_is_measured_out_of_fold_and_follows_how_well_features_predict():
    survey = synthetic_survey(200)
    index = survey.demographics.index
    # "agree" is 0 for group a and 1 or 2 at random for group b: features tell part of it
    fitted = fit_baselines(survey, "agree", index[:150], index[150:], names=("svr",))["svr"]
    values = survey.question("agree").values
    target = values[survey.answers.loc[index[:150], "agree"].to_numpy()]
    x = demographic_features(survey, index[:150])
    sigma = svr_residual_sd(x, target, np.ones(150), seed=0)
    assert 0 < sigma < target.std()  # better than the mean, worse than perfect
    np.testing.assert_allclose(fitted.probabilities,
                               gaussian_option_probabilities(fitted.point_predictions, sigma, values))
    noise = np.random.default_rng(1).normal(size=(150, 3))
    assert svr_residual_sd(noise, target, np.ones(150), seed=0) > sigma  # features unrelated to the answer


def test_svr_log_loss_on_a_real_question_is_finite_and_not_worse_than_uniform(gss, splits, predictions):
    _, test = splits
    question = gss.question(QUESTION)
    answers, weights = gss.answers.loc[test, QUESTION].to_numpy(), gss.weight_array(test)
    scores = {name: individual_metrics(predictions[name].probabilities, answers, question.values, weights,
                                       predictions[name].point_predictions)
              for name in ("uniform", "svr")}
    assert np.isfinite(scores["svr"]["log_loss"])
    assert scores["svr"]["log_loss"] < scores["uniform"]["log_loss"]
    # RMSE still scores the raw prediction, not the distribution's mean
    answered = answers != MISSING
    residuals = predictions["svr"].point_predictions[answered] - question.values[answers[answered]]
    rmse = np.sqrt(np.average(np.square(residuals), weights=weights[answered]))
    assert scores["svr"]["rmse"] == pytest.approx(rmse)


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
    assert set(result) == {"uniform", "scale_prior", "marginal"}


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


def test_every_baseline_is_either_blind_to_the_question_or_fitted_on_it():
    assert set(NO_DATA_BASELINES) | set(DATA_BASELINES) == set(BASELINES)
    assert not set(NO_DATA_BASELINES) & set(DATA_BASELINES)


# -- scale_prior on a survey small enough to compute by hand ---------------------------------

def hand_survey(target_answers=(0, 0, 0, 0, 1, 1, 1)) -> Survey:
    """Seven respondents; 1-4 are the train split, 5-7 the test split.

    id  sex  region  weight  q (target)  a (no/yes)  b (No/Yes)
    1   F    east    1       no          yes         yes
    2   F    east    3       no          no          yes
    3   M    east    1       no          yes         no
    4   M    west    1       no          yes         -
    5   F    west    1       yes         no          no
    6   -    east    1       yes         no          no
    7   -    -       1       yes         no          no

    c (low/high) is ordinal with other labels, d (cat/dog) nominal: no question shares d's
    labels, nor its type and option count.
    """
    index = pd.Index(np.arange(1, 8), name="respondent")
    sex = pd.Categorical.from_codes([0, 0, 1, 1, 0, -1, -1], ["F", "M"], ordered=True)
    region = pd.Categorical.from_codes([0, 0, 0, 1, 1, 0, -1], ["east", "west"], ordered=True)
    answers = pd.DataFrame({
        "q": np.array(target_answers, dtype=np.int16),
        "a": np.array([1, 0, 1, 1, 0, 0, 0], dtype=np.int16),
        "b": np.array([1, 1, 0, -1, 0, 0, 0], dtype=np.int16),
        "c": np.array([0, 1, 0, 1, 0, 1, 0], dtype=np.int16),
        "d": np.array([0, 1, 1, 1, 0, 1, 0], dtype=np.int16),
    }, index=index)
    options = lambda labels: tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(labels))
    return Survey(
        id="hand", title="Hand", description="", source="made by hand", license="none",
        fields=(DemographicField("sex", "Sex", ("F", "M")), DemographicField("region", "Region", ("east", "west"))),
        questions=(Question("q", "Q?", "ordinal", options(["no", "yes"])),
                   Question("a", "A?", "ordinal", options(["no", "yes"])),
                   Question("b", "B?", "ordinal", options([" No", "Yes"])),
                   Question("c", "C?", "ordinal", options(["low", "high"])),
                   Question("d", "D?", "nominal", options(["cat", "dog"]))),
        demographics=pd.DataFrame({"sex": sex, "region": region}, index=index), answers=answers,
        weights=pd.Series([1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0], index=index),
    )


HAND_TRAIN, HAND_TEST = pd.Index([1, 2, 3, 4]), pd.Index([5, 6, 7])


def test_same_scale_means_same_labels_else_same_option_count_and_type():
    survey = hand_survey()
    assert same_scale_questions(survey, "q") == ("a", "b")  # labels compared ignoring case and spaces
    assert same_scale_questions(survey, "c") == ("q", "a", "b")  # no label match: ordinal with 2 options
    assert same_scale_questions(survey, "d") == ()  # the only nominal question


def test_scale_prior_population_is_the_mean_of_the_other_questions_weighted_train_shares():
    # a: no = w2 = 3, yes = w1 + w3 + w4 = 3 -> (.5, .5); b: no = w3 = 1, yes = w1 + w2 = 4
    # -> (.2, .8); mean (.35, .65). Pooling the answers would give (4/11, 7/11), ignoring the
    # weights (.29, .71), counting q's own all-"no" answers (.57, .43).
    prior = fit_scale_prior(hand_survey(), "q", HAND_TRAIN)
    assert prior.sources == ("a", "b")
    np.testing.assert_allclose(prior.population(), [0.35, 0.65])


def test_scale_prior_never_reads_the_question_or_the_test_split():
    changed = hand_survey(target_answers=(1, 1, 1, 1, 0, 0, 0))
    changed.answers.loc[HAND_TEST, ["a", "b"]] = 1
    np.testing.assert_allclose(fit_scale_prior(changed, "q", HAND_TRAIN).population(), [0.35, 0.65])


def test_scale_prior_slice_averages_each_questions_slice_shares():
    prior = fit_scale_prior(hand_survey(), "q", HAND_TRAIN)
    # F (1, 2): a no 3 / yes 1 -> (.75, .25), b yes -> (0, 1): mean (.375, .625).
    np.testing.assert_allclose(prior.for_slice({"sex": ("F",)}), [0.375, 0.625])
    # M (3, 4): a yes -> (0, 1), b no -> (1, 0): mean (.5, .5).
    np.testing.assert_allclose(prior.for_slice({"sex": ("M",)}), [0.5, 0.5])
    # west (4): a yes -> (0, 1); nobody in the slice answered b, so b's whole-train (.2, .8).
    np.testing.assert_allclose(prior.for_slice({"region": ("west",)}), [0.1, 0.9])
    # east (1, 2, 3): a no 3 / yes 2 -> (.6, .4), b no 1 / yes 4 -> (.2, .8): mean (.4, .6).
    np.testing.assert_allclose(prior.for_slice({"region": ("east",)}), [0.4, 0.6])
    np.testing.assert_allclose(prior.for_slice(None), prior.population())


def test_scale_prior_for_a_respondent_averages_the_slices_of_their_known_values():
    prediction = fit_baselines(hand_survey(), "q", HAND_TRAIN, HAND_TEST, names=("scale_prior",))["scale_prior"]
    np.testing.assert_allclose(prediction.probabilities, [
        [0.2375, 0.7625],  # 5, F and west: mean of (.375, .625) and (.1, .9)
        [0.4, 0.6],        # 6, sex unknown, east
        [0.35, 0.65],      # 7, nothing known: the population version
    ])
    np.testing.assert_allclose(prediction.group_distribution({"sex": ("F",)}), [0.375, 0.625])


def test_scale_prior_is_uniform_where_no_question_shares_the_scale():
    survey = hand_survey()
    prior = fit_scale_prior(survey, "d", HAND_TRAIN)
    assert prior.sources == ()
    np.testing.assert_allclose(prior.for_slice({"sex": ("M",)}), [0.5, 0.5])
    np.testing.assert_allclose(prior.for_respondents(HAND_TEST), np.full((3, 2), 0.5))


def test_context_answers_become_features_of_the_fitted_baselines():
    from engine.baselines import context_features

    survey = hand_survey()
    features = context_features(survey, pd.Index([1, 4, 5]), ["a", "b"])
    # a: no/yes/missing, b: No/Yes/missing; respondent 4 did not answer b
    assert features.tolist() == [[0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1], [1, 0, 0, 1, 0, 0]]
    assert context_features(survey, pd.Index([1]), []).shape == (1, 0)
    with pytest.raises(FocusgroupError, match="its own baselines"):
        fit_baselines(survey, "q", HAND_TRAIN, HAND_TEST, context=["q"])


def test_a_context_answer_that_decides_the_target_lifts_the_logistic_baseline():
    # "colour" copies "agree" exactly: demographics tell only part of it, the context all.
    survey = synthetic_survey(200)
    survey.answers["colour"] = survey.answers["agree"]
    train, test = survey.demographics.index[:150], survey.demographics.index[150:]
    target = survey.answers.loc[test, "colour"].to_numpy()
    scores = {}
    for context in ([], ["agree"]):
        logistic = fit_baselines(survey, "colour", train, test, context=context, names=("logistic",))["logistic"]
        scores[len(context)] = individual_metrics(logistic.probabilities, target, None)["log_loss"]
    assert scores[1] < 0.5 * scores[0], scores


# -- a simulated slice's baselines (engine.slice_baselines) --------------------------------

def slice_decides_survey(n: int = 240) -> Survey:
    """Every woman answers "yes"; men answer "maybe" in the north, "no" in the south and
    either in the west: the slice sex = female answers unlike everyone else, and its answers
    follow perfectly from its demographic."""
    rng = np.random.default_rng(1)
    index = pd.Index(np.arange(1, n + 1), name="respondent")
    sex, region = rng.integers(0, 2, n), rng.integers(0, 3, n)
    men = np.where(region == 0, 1, np.where(region == 1, 2, rng.integers(1, 3, n)))
    demographics = pd.DataFrame({"sex": pd.Categorical.from_codes(sex, ["female", "male"]),
                                 "region": pd.Categorical.from_codes(region, ["north", "south", "west"])}, index=index)
    options = tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(["yes", "maybe", "no"]))
    return Survey(
        id="split", title="Split", description="", source="synthetic", license="none",
        fields=(DemographicField("sex", "Sex", ("female", "male")),
                DemographicField("region", "Region", ("north", "south", "west"))),
        questions=(Question("agree", "Agree?", "ordinal", options),), demographics=demographics,
        answers=pd.DataFrame({"agree": np.where(sex == 0, 0, men).astype(np.int16)}, index=index),
    )


WOMEN = {"sex": ("female",)}


def test_a_slices_fitted_baselines_never_see_its_answers():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    from engine.metrics import js_distance
    from engine.slice_baselines import OUTSIDE, out_of_fold_baselines, slice_baselines

    survey = slice_decides_survey()
    question = survey.question("agree")
    is_woman = (survey.demographics["sex"] == "female").to_numpy()
    women = survey.demographics.index[is_woman]
    real = answer_distribution(survey.answers.loc[women, "agree"].to_numpy(), 3)
    np.testing.assert_allclose(real, [1, 0, 0])
    fitted = slice_baselines(survey, question, WOMEN, women, seed=0)

    def slice_distribution(slots, name):
        return slots[name]["probabilities"].mean(axis=0)

    # Independently: a logistic regression on the men alone, predicting the women.
    encoder = OneHotEncoder(categories=[["female", "male"], ["north", "south", "west"]])
    features = encoder.fit_transform(survey.demographics.astype(str)).toarray()
    men_answers = survey.answers["agree"].to_numpy()[~is_woman]
    model = LogisticRegression(max_iter=1000, C=1.0).fit(features[~is_woman], men_answers)
    expected = np.zeros(3)
    expected[model.classes_] = model.predict_proba(features[is_woman]).mean(axis=0)
    np.testing.assert_allclose(slice_distribution(fitted.predictions, "logistic"), expected, atol=1e-3)
    np.testing.assert_allclose(slice_distribution(fitted.predictions, "marginal"),
                               answer_distribution(men_answers, 3), atol=1e-5)
    for name in ("marginal", "logistic", "gradient_boosting", "svr"):
        assert fitted.fit[name] == OUTSIDE
        assert js_distance(real, slice_distribution(fitted.predictions, name)) > 0.95, name
    # Fitted out of fold within the slice (the old way), the slice's own answers give it away.
    in_slice = out_of_fold_baselines(survey, question, women, 0, ("logistic", "gradient_boosting"))
    assert js_distance(real, slice_distribution(in_slice, "logistic")) < 0.2
    assert js_distance(real, slice_distribution(in_slice, "gradient_boosting")) < 0.1


def test_for_everyone_the_marginal_is_the_reference_not_a_competitor():
    from engine.slice_baselines import NOT_FITTED, OUT_OF_FOLD, REFERENCE, slice_baselines

    survey = slice_decides_survey()
    everyone = survey.demographics.index
    fitted = slice_baselines(survey, survey.question("agree"), {}, everyone, seed=0)
    assert "marginal" not in fitted.predictions and set(fitted.reference) == {"marginal"}
    assert fitted.fit == {"uniform": NOT_FITTED, "scale_prior": OUT_OF_FOLD, "logistic": OUT_OF_FOLD,
                          "gradient_boosting": OUT_OF_FOLD, "svr": OUT_OF_FOLD, "marginal": REFERENCE}
    real = answer_distribution(survey.answers["agree"].to_numpy(), 3)
    np.testing.assert_allclose(fitted.reference["marginal"]["probabilities"], np.tile(real, (len(everyone), 1)))
    # A slice that everyone else left unanswered has no outside to fit on either.
    survey.answers.loc[~survey.demographics["sex"].eq("female").to_numpy(), "agree"] = MISSING
    women = survey.demographics.index[survey.demographics["sex"].eq("female").to_numpy()]
    assert slice_baselines(survey, survey.question("agree"), WOMEN, women, seed=0).fit["marginal"] == REFERENCE
