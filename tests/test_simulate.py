"""Simulating a slice: temperature without model calls, reproducible draws, real comparisons."""

import numpy as np
import pytest

import engine.scoring as scoring
from engine.baselines import CLASSICAL, best_classical, fit_baselines
from engine.errors import FocusgroupError
from engine.metrics import answer_distribution, apply_temperature, population_metrics
from engine.simulate import simulate
from engine.validation import MAX_SAMPLES
from engine.slices import parse_slice, slice_index
from engine.surveys.model import Option, Question


@pytest.fixture(scope="module")
def democrats(tiny, gss):
    return simulate(tiny, gss, "natenrgy", parse_slice(gss, ["partyid=strong democrat"]), temperature=1.0)


def test_simulated_distribution_is_the_mean_of_persona_distributions(democrats):
    expected = apply_temperature(democrats.logits, 0.7).mean(axis=0)
    np.testing.assert_allclose(democrats.at(0.7).simulated, expected)
    assert democrats.at(0.7).simulated.sum() == pytest.approx(1.0)


def test_temperature_zero_is_each_personas_argmax(democrats):
    winners = democrats.logits.argmax(axis=1)
    expected = np.bincount(winners, minlength=3) / len(winners)
    np.testing.assert_allclose(democrats.at(0).simulated, expected)


def test_changing_temperature_never_runs_the_model(democrats, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the model ran for a temperature change")

    monkeypatch.setattr(scoring, "score_personas", forbidden)
    low, high = democrats.at(0.2), democrats.at(2.0)
    assert not np.allclose(low.simulated, high.simulated)
    assert low.metrics["js"] != high.metrics["js"]


def test_real_distribution_and_counts_come_from_the_slice(democrats, gss):
    answers = gss.answers.loc[democrats.index, "natenrgy"].to_numpy()
    np.testing.assert_allclose(democrats.real, answer_distribution(answers, 3))
    assert democrats.n_real == int((answers != -1).sum()) == 368
    assert democrats.n_personas == 379


def test_json_summary_has_every_documented_key(democrats):
    result = democrats.to_dict(1.0)
    for key in ("survey", "question", "slice", "n_real", "temperature", "options", "simulated", "real",
                "metrics", "noise_floor", "baselines", "baseline_fit", "reference"):
        assert key in result
    assert set(result["metrics"]) == set(result["noise_floor"]) == {"kl", "js", "wasserstein", "tv"}
    assert {"uniform", "marginal", "logistic", "gradient_boosting", "svr"} <= set(result["baselines"])
    assert result["slice"] == {"partyid": ["Strong Democrat"]}
    assert result["reference"] == {} and set(result["baseline_fit"]) == set(result["baselines"])
    assert {result["baseline_fit"][name] for name in ("marginal", "logistic", "gradient_boosting", "svr")} == {
        "outside the slice"}
    assert sum(result["simulated"].values()) == pytest.approx(1.0, abs=1e-5)


def test_same_seed_same_personas_and_samples(tiny, gss):
    first = simulate(tiny, gss, "natspac", n_personas=25, seed=7, with_baselines=False)
    again = simulate(tiny, gss, "natspac", n_personas=25, seed=7, with_baselines=False)
    other = simulate(tiny, gss, "natspac", n_personas=25, seed=8, with_baselines=False)
    assert first.index.equals(again.index) and not first.index.equals(other.index)
    draws = [s.sample(50, 1.0, np.random.default_rng(1)) for s in (first, again)]
    assert draws[0].equals(draws[1])
    assert first.noise == again.noise


def test_an_empty_slice_is_explained(tiny, gss):
    filters = parse_slice(gss, ["race=other", "partyid=other party", "age=75+"])
    with pytest.raises(FocusgroupError, match="widen it"):
        simulate(tiny, gss, "natenrgy", filters)


def test_a_new_question_is_simulated_without_real_data(tiny, gss):
    question = Question("new_snack", "Would you buy a spicy seaweed snack?", "ordinal", (
        Option(("1",), "Definitely", 1.0), Option(("2",), "Maybe", 2.0), Option(("3",), "No", 3.0)))
    simulation = simulate(tiny, gss, question, parse_slice(gss, ["sex=female"]), stimulus="Only 90 calories.")
    result = simulation.to_dict(1.0)
    assert result["real"] is None and result["metrics"] is None and result["baselines"] == {}
    assert sum(result["simulated"].values()) == pytest.approx(1.0, abs=1e-5)


def test_weights_enter_the_simulated_distribution(tiny, data_dir):
    from engine.surveys import load_survey

    survey = load_survey("non-voters", data_dir)
    simulation = simulate(tiny, survey, "Q3_4", n_personas=60, with_baselines=False)
    probabilities = apply_temperature(simulation.logits, 1.0)
    weighted = np.average(probabilities, axis=0, weights=simulation.weights)
    np.testing.assert_allclose(simulation.at(1.0).simulated, weighted)
    assert not np.allclose(simulation.weights, 1.0)


def test_a_blank_new_question_is_refused(tiny, gss):
    blank = Question("new_question", "  \n ", "ordinal", (Option(("1",), "Yes", 1.0), Option(("2",), "No", 2.0)))
    with pytest.raises(FocusgroupError, match="has no text"):
        simulate(tiny, gss, blank, n_personas=3, with_baselines=False)


@pytest.mark.parametrize("n_personas", [0, -70])
def test_fewer_than_one_persona_is_refused(tiny, gss, n_personas):
    with pytest.raises(FocusgroupError, match="at least 1"):
        simulate(tiny, gss, "natspac", n_personas=n_personas, with_baselines=False)


def test_samples_are_capped_before_anything_is_allocated(democrats):
    assert len(democrats.sample(MAX_SAMPLES, 1.0, np.random.default_rng(0))) == MAX_SAMPLES
    with pytest.raises(FocusgroupError, match="100,000"):
        democrats.sample(10**9, 1.0, np.random.default_rng(0))


def test_a_prompt_longer_than_the_models_context_is_refused(tiny, gss):
    with pytest.raises(FocusgroupError, match="reads at most 2,048"):
        simulate(tiny, gss, "natspac", n_personas=3, stimulus="word " * 3000, with_baselines=False)


# -- drawn personas against the whole slice ------------------------------------------------

@pytest.fixture(scope="module")
def drawn_democrats(tiny, gss):
    return simulate(tiny, gss, "natenrgy", parse_slice(gss, ["partyid=strong democrat"]), n_personas=40, seed=3)


def test_drawn_personas_are_read_against_the_whole_slices_real_answers(drawn_democrats, democrats):
    np.testing.assert_allclose(drawn_democrats.real, democrats.real)
    assert drawn_democrats.n_real == democrats.n_real == 368 and drawn_democrats.real_from == "slice"
    assert drawn_democrats.n_personas == 40 and drawn_democrats.n_slice == 379
    snapshot = drawn_democrats.at(1.0)
    expected = population_metrics(democrats.real, snapshot.simulated, drawn_democrats.question.values)
    assert snapshot.metrics == pytest.approx(expected)
    marginal = drawn_democrats.baselines["marginal"]["probabilities"]
    expected = population_metrics(democrats.real, np.average(marginal, axis=0, weights=drawn_democrats.weights),
                                  drawn_democrats.question.values)
    assert {key: snapshot.baselines["marginal"][key] for key in expected} == pytest.approx(expected)


def test_individual_metrics_stay_on_the_drawn_personas(drawn_democrats, gss):
    own = gss.answers.loc[drawn_democrats.index, "natenrgy"].to_numpy()
    assert drawn_democrats.at(1.0).individual["n"] == int((own != -1).sum()) <= 40
    np.testing.assert_array_equal(drawn_democrats.answers, own)


def test_real_from_drawn_reads_only_the_drawn_personas(tiny, gss, drawn_democrats):
    drawn = simulate(tiny, gss, "natenrgy", parse_slice(gss, ["partyid=strong democrat"]), n_personas=40, seed=3,
                     real_from_drawn=True)
    own = gss.answers.loc[drawn.index, "natenrgy"].to_numpy()
    assert drawn.index.equals(drawn_democrats.index) and drawn.real_from == "drawn personas"
    np.testing.assert_allclose(drawn.real, answer_distribution(own, 3))
    assert drawn.n_real == int((own != -1).sum())
    assert not np.allclose(drawn.real, drawn_democrats.real)


def test_a_weighted_slices_real_distribution_is_all_of_it_however_few_are_drawn(tiny, data_dir):
    from engine.surveys import load_survey

    survey = load_survey("non-voters", data_dir)
    everyone = survey.answers["Q3_4"].to_numpy()
    weights = survey.weight_array(survey.answers.index)
    simulation = simulate(tiny, survey, "Q3_4", n_personas=25, with_baselines=False)
    np.testing.assert_allclose(simulation.real, answer_distribution(everyone, len(simulation.question.options),
                                                                    weights))
    assert simulation.n_real == int((everyone != -1).sum()) and simulation.n_personas == 25


def test_every_persona_of_the_slice_reads_the_same_real_answers_either_way(tiny, gss, democrats):
    drawn = simulate(tiny, gss, "natenrgy", parse_slice(gss, ["partyid=strong democrat"]), n_personas=10_000,
                     real_from_drawn=True)
    np.testing.assert_allclose(drawn.real, democrats.real)
    assert drawn.real_from == "slice" and drawn.noise == democrats.noise


# -- baselines fitted without the slice's answers -------------------------------------------

def test_drawn_personas_baselines_are_fitted_outside_the_whole_slice(drawn_democrats, gss):
    outside = gss.demographics.index.difference(slice_index(gss, drawn_democrats.filters))
    expected = fit_baselines(gss, "natenrgy", outside, drawn_democrats.index, drawn_democrats.seed, ("logistic", "svr"))
    for name in ("logistic", "svr"):
        np.testing.assert_allclose(drawn_democrats.baselines[name]["probabilities"], expected[name].probabilities)


def test_for_everyone_the_marginal_is_the_reference_and_never_the_best_classical(tiny, gss):
    result = simulate(tiny, gss, "natenrgy", n_personas=60, seed=2).to_dict(1.0)
    assert "marginal" not in result["baselines"] and set(result["reference"]) == {"marginal"}
    assert result["reference"]["marginal"]["js"] == pytest.approx(0, abs=1e-6)
    assert result["baseline_fit"]["logistic"] == "out of fold (5-fold) over everyone"
    competitors = {**result["baselines"], **result["reference"]}
    best = best_classical(competitors, {name: scores["js"] for name, scores in competitors.items()})
    assert best in CLASSICAL and result["baselines"][best]["js"] > result["reference"]["marginal"]["js"]
