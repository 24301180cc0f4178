"""Pilot + model statistics (`engine.pilot`): the pilot's Wilson intervals, PPI++ against its
closed form and against `ppi_py`, coverage with a biased model, re-levelling, and what a
model with no signal adds (nothing)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from engine.pilot import (
    kish_n,
    pilot_estimate,
    ppi_estimate,
    relevelled_estimate,
    slice_estimates,
    wilson,
    worth_sentence,
)


def population(rng, size: int, bias: float, noise: float, spread: tuple[float, float] = (2, 3)):
    """A two-option population: each person's true chance of option 0 (Beta(`spread`)), their
    answer, and a model's prediction that is biased (too high by `bias`) and noisy."""
    chance = rng.beta(*spread, size)
    answers = (rng.random(size) >= chance).astype(int)  # 0 with probability `chance`
    predicted = np.clip(chance + bias + rng.normal(0, noise, size), 0.001, 0.999)
    return answers, np.column_stack([predicted, 1 - predicted])


def test_wilson_matches_the_hand_computed_interval():
    low, high = wilson(np.array([0.5, 0.0]), 10)
    assert low[0] == pytest.approx(0.2366, abs=1e-4) and high[0] == pytest.approx(0.7634, abs=1e-4)
    assert low[1] == 0 and high[1] == pytest.approx(0.2775, abs=1e-4)  # no answers still gets a width


def test_a_weighted_pilot_uses_its_kish_size():
    assert kish_n(np.ones(40)) == 40
    assert kish_n(np.array([1.0, 1.0, 2.0, 4.0])) == pytest.approx(64 / 22)
    estimate = pilot_estimate(np.array([0, 0, 1, 1]), 2, np.array([1.0, 1.0, 2.0, 4.0]))
    assert estimate.shares == pytest.approx([2 / 8, 6 / 8]) and estimate.effective_n == pytest.approx(64 / 22)


def test_ppi_matches_its_closed_form_and_ppi_py():
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    rng = np.random.default_rng(3)
    answers, predicted = population(rng, 42000, bias=0.1, noise=0.1)
    y, f, f_unlabelled = (answers[:2000] == 0).astype(float), predicted[:2000, 0], predicted[2000:, 0]
    n, m = len(y), len(f_unlabelled)
    # engine.pilot: about the remainder, lam = Cov(Y, f) / Var(f), Var = Var(Y - lam f) (1/n + 1/m)
    lam = np.clip(np.mean((y - y.mean()) * (f - f.mean())) / np.var(np.concatenate([f, f_unlabelled])), 0, 1)
    theta = lam * f_unlabelled.mean() + (y - lam * f).mean()
    sd = math.sqrt((y - lam * f).var() * (1 / n + 1 / m))
    estimate = ppi_estimate(answers[:2000], predicted[:2000], predicted[2000:])
    assert 0 < lam < 1
    assert estimate.shares[0] == pytest.approx(theta, abs=1e-9)
    assert estimate.shares[0] == pytest.approx(float(np.squeeze(ppi_mean_pointestimate(y, f, f_unlabelled, lam=lam))))
    # the Wilson form of the interval: the normal interval at this size, to a thousandth
    assert estimate.low[0] == pytest.approx(theta - 1.96 * sd, abs=1e-3)
    assert estimate.high[0] == pytest.approx(theta + 1.96 * sd, abs=1e-3)
    # with a remainder 20 times the pilot, ppi_py's interval about the population at the same
    # lam is nearly as wide: the two differ only in the 1/m term
    low, high = ppi_mean_ci(y, f, f_unlabelled, alpha=0.05, lam=lam)
    assert (estimate.low[0], estimate.high[0]) == pytest.approx((float(low[0]), float(high[0])), abs=1e-3)
    assert estimate.shares.sum() == pytest.approx(1)


def test_ppi_intervals_cover_the_truth_about_95_percent_with_a_biased_model():
    rng = np.random.default_rng(11)
    repeats, covered, pilot_covered = 400, 0, 0
    for _ in range(repeats):
        answers, predicted = population(rng, 3100, bias=0.15, noise=0.15)
        truth = np.mean(answers[100:] == 0)  # the unlabelled people's own answers
        estimate = ppi_estimate(answers[:100], predicted[:100], predicted[100:])
        covered += estimate.low[0] <= truth <= estimate.high[0]
        alone = pilot_estimate(answers[:100], 2)
        pilot_covered += alone.low[0] <= truth <= alone.high[0]
    tolerance = 3 * math.sqrt(0.95 * 0.05 / repeats)  # three binomial standard errors
    assert abs(covered / repeats - 0.95) <= tolerance
    assert abs(pilot_covered / repeats - 0.95) <= tolerance


@pytest.mark.parametrize("weighted", [False, True])
def test_intervals_cover_the_finite_remainder_of_the_slice_outside_a_large_pilot(weighted):
    # One slice of 500 people; each draw takes 400 as the pilot and asks for the share of
    # the other 100, which is itself a sample: the interval must carry 1/n + 1/m, not 1/n.
    rng = np.random.default_rng(0)
    answers, predicted = population(rng, 500, bias=0.15, noise=0.15)
    weights = rng.uniform(0.5, 2.0, 500) if weighted else np.ones(500)
    repeats = 400
    covered = {"pilot": 0, "ppi": 0, "about an infinite population": 0}
    for _ in range(repeats):
        order = rng.permutation(500)
        pilot, rest = order[:400], order[400:]
        truth = np.average(answers[rest] == 0, weights=weights[rest])
        estimates = slice_estimates(answers[pilot], predicted[pilot], predicted[rest], weights[pilot], weights[rest])
        estimates["about an infinite population"] = pilot_estimate(answers[pilot], 2, weights[pilot])
        for method, estimate in estimates.items():
            if method in covered:
                covered[method] += estimate.low[0] <= truth <= estimate.high[0]
    coverage = {method: count / repeats for method, count in covered.items()}
    assert 0.92 <= coverage["pilot"] <= 0.98 and 0.92 <= coverage["ppi"] <= 0.98, coverage
    # without the remainder's term the interval is sqrt(5) too narrow: about 62% coverage
    assert coverage["about an infinite population"] < 0.8, coverage


def test_the_remainder_term_widens_the_pilot_interval_by_the_finite_population_factor():
    answers = np.array([0] * 120 + [1] * 280)
    infinite, finite = pilot_estimate(answers, 2), pilot_estimate(answers, 2, remainder=100)
    # Var = p (1 - p) (1/400 + 1/100): the Wilson interval at 1 / (1/400 + 1/100) = 80 answers
    low, high = wilson(np.array([0.3, 0.7]), 80)
    assert finite.low == pytest.approx(low) and finite.high == pytest.approx(high)
    assert (finite.high - finite.low)[0] == pytest.approx(math.sqrt(5) * (infinite.high - infinite.low)[0], rel=0.03)
    assert finite.effective_n == infinite.effective_n == 400  # the pilot's own size either way


def test_weights_that_sum_to_zero_are_refused_by_name():
    from engine.errors import FocusgroupError

    with pytest.raises(FocusgroupError, match="weights of the pilot"):
        pilot_estimate(np.array([0, 1, 1]), 2, np.zeros(3))
    with pytest.raises(FocusgroupError, match="weights of the unlabelled personas"):
        slice_estimates(np.array([0, 1]), np.tile([0.5, 0.5], (2, 1)), np.tile([0.5, 0.5], (3, 1)),
                        unlabelled_weights=np.zeros(3))


def test_a_weighted_pilot_with_a_model_without_signal_is_worth_exactly_its_kish_size():
    rng = np.random.default_rng(8)
    answers = rng.integers(0, 3, 60)
    weights = rng.uniform(0.2, 3.0, 60)
    constant = np.tile([0.2, 0.3, 0.5], (60, 1))
    estimates = slice_estimates(answers, constant, np.tile([0.2, 0.3, 0.5], (500, 1)), weights, np.ones(500))
    assert estimates["pilot"].effective_n == pytest.approx(kish_n(weights)) and kish_n(weights) < 50
    assert estimates["ppi"].effective_n == pytest.approx(estimates["pilot"].effective_n)
    assert estimates["ppi"].low == pytest.approx(estimates["pilot"].low)
    sentence = worth_sentence(60, estimates["ppi"], "women", estimates["pilot"].effective_n)
    assert sentence.endswith("adds nothing here.")


def test_a_model_without_signal_adds_nothing_and_a_good_one_adds_respondents():
    rng = np.random.default_rng(5)
    # people whose answers their demographics nearly settle (Beta(0.3, 0.5) chances): a model
    # that knows each chance explains about half the answers' variance
    answers, good = population(rng, 5100, bias=0.0, noise=0.02, spread=(0.3, 0.5))
    noise = rng.random(5100)
    useless = np.column_stack([noise, 1 - noise])
    alone = pilot_estimate(answers[:100], 2)
    blind = ppi_estimate(answers[:100], useless[:100], useless[100:])
    assert blind.effective_n == pytest.approx(100, rel=0.15)
    assert abs(blind.shares[0] - alone.shares[0]) < 0.05
    helped = ppi_estimate(answers[:100], good[:100], good[100:])
    assert helped.effective_n > 1.3 * 100
    assert (helped.high - helped.low)[0] < (alone.high - alone.low)[0]
    assert "adds the equivalent of" in worth_sentence(100, helped, "women")
    assert worth_sentence(100, blind, "women").endswith("adds nothing here.") or blind.effective_n > 100


def test_relevelling_a_uniformly_biased_model_gives_the_pilot_shares():
    answers = np.array([0, 0, 1, 2, 2, 2])
    biased = np.tile([0.6, 0.3, 0.1], (6, 1))
    unlabelled = np.tile([0.6, 0.3, 0.1], (50, 1))
    estimate = relevelled_estimate(answers, biased, unlabelled)
    assert estimate.shares == pytest.approx([2 / 6, 1 / 6, 3 / 6])
    assert estimate.low is None


def test_ppi_intervals_cover_small_slices_too_and_equal_the_pilot_without_signal():
    rng = np.random.default_rng(2)
    repeats, covered = 400, 0
    for _ in range(repeats):
        answers, predicted = population(rng, 1008, bias=0.1, noise=0.3)
        truth = np.mean(answers[8:] == 0)
        estimate = ppi_estimate(answers[:8], predicted[:8], predicted[8:])  # eight pilot answers in the slice
        covered += estimate.low[0] <= truth <= estimate.high[0]
    assert covered / repeats >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / repeats)
    answers = np.array([0, 0, 0, 0, 0])  # all alike: a normal interval would have no width
    flat = np.tile([0.5, 0.5], (5, 1))
    estimate = ppi_estimate(answers, flat, np.tile([0.5, 0.5], (40, 1)))
    alone = pilot_estimate(answers, 2, remainder=40)  # the same remainder of 40
    assert estimate.low == pytest.approx(alone.low) and estimate.high == pytest.approx(alone.high)
    assert estimate.high[1] > 0.3


def test_a_slice_with_one_pilot_answer_gets_no_interval():
    estimates = slice_estimates(np.array([1]), np.array([[0.5, 0.5]]), np.array([[0.4, 0.6]] * 5))
    assert set(estimates) == {"pilot", "model", "ppi", "relevelled"}
    assert estimates["ppi"].low is None and estimates["pilot"].low is None and estimates["model"].low is None
    assert worth_sentence(1, estimates["ppi"], "men").startswith("Too few pilot answers")
    with pytest.raises(ValueError, match="one row per pilot answer"):
        slice_estimates(np.array([1, 0]), np.array([[0.5, 0.5]]), np.array([[0.4, 0.6]]))


# A pilot on a survey: drawn from the respondents, or read from a CSV.

def test_a_drawn_pilot_is_left_out_of_the_population_it_is_checked_against(tiny, gss):
    from engine.pilot_survey import draw_pilot, pilot_estimates
    from engine.simulate import simulate
    from engine.surveys.model import MISSING

    filters = {"sex": ("Female",)}
    simulation = simulate(tiny, gss, "natenvir", filters, with_baselines=False)
    pilot = draw_pilot(gss, "natenvir", 200, seed=4)
    assert pilot.respondents.equals(draw_pilot(gss, "natenvir", 200, seed=4).respondents)
    assert not pilot.respondents.equals(draw_pilot(gss, "natenvir", 200, seed=5).respondents)
    assert (pilot.answers != MISSING).all()
    report = pilot_estimates(tiny, simulation, pilot)
    inside = pilot.respondents[pilot.in_slice(filters)]
    assert report.pilot_in_slice == len(inside) > 50
    assert report.n_unlabelled == len(simulation.index) - len(inside)
    outside = simulation.index[~simulation.index.isin(inside)]
    answers = gss.answers.loc[outside, "natenvir"].to_numpy()
    weights = gss.weight_array(outside)[answers != MISSING]
    expected = np.bincount(answers[answers != MISSING], weights=weights, minlength=3) / weights.sum()
    assert report.truth == pytest.approx(expected)
    shares = {method: estimate.shares for method, estimate in report.estimates.items()}
    assert shares["pilot"] == pytest.approx(np.bincount(pilot.answers[pilot.in_slice(filters)], minlength=3,
                                                        weights=pilot.weights[pilot.in_slice(filters)])
                                            / pilot.weights[pilot.in_slice(filters)].sum())
    assert shares["model"] == pytest.approx(np.average(simulation.probabilities(1.0)[~simulation.index.isin(inside)],
                                                       axis=0, weights=simulation.weights[~simulation.index.isin(inside)]))
    block = report.to_dict()
    assert set(block["estimates"]) == {"pilot", "model", "ppi", "relevelled"} and block["sentence"]


def pilot_csv(tmp_path, text: str):
    path = tmp_path / "pilot.csv"
    path.write_text(text)
    return path


def test_a_pilot_file_is_read_against_the_survey_fields(tmp_path, gss):
    from engine.pilot_survey import read_pilot

    question = gss.question("natenvir")
    labels = question.labels
    path = pilot_csv(tmp_path, f"sex,partyid,Answer,weight\nfemale,Strong Democrat,{labels[0]},1.5\n"
                               f"Male,,{labels[2].upper()},0.5\n")
    pilot = read_pilot(path, gss, question)
    assert list(pilot.answers) == [0, 2] and list(pilot.weights) == [1.5, 0.5]
    assert list(pilot.demographics["sex"]) == ["Female", "Male"]
    assert pd.isna(pilot.demographics["partyid"][1]) and pd.isna(pilot.demographics["age"][0])
    assert list(pilot.in_slice({"sex": ("Female",)})) == [True, False]


@pytest.mark.parametrize("text,fragment", [
    ("sex,shoe_size,answer\nFemale,9,Too little\n", "column 'shoe_size', which is not a field"),
    ("sex,answer\nMartian,Too little\n", "field 'sex' has no value 'Martian'"),
    ("sex,answer\nFemale,Maybe\n", "line 2: answer 'Maybe' is not an option"),
    ("sex\nFemale\n", "no 'answer' column"),
    ("sex,answer\n", "has no rows"),
    ("sex,answer,weight\nFemale,Too little,-1\n", "every 'weight' must be a number"),
    ("sex,answer,weight\nFemale,Too little,=1+1\n", "every 'weight' must be a number"),
])
def test_a_bad_pilot_file_is_refused_by_name(tmp_path, gss, text, fragment):
    from engine.errors import FocusgroupError
    from engine.pilot_survey import read_pilot

    with pytest.raises(FocusgroupError, match=re.escape(fragment)):
        read_pilot(pilot_csv(tmp_path, text), gss, gss.question("natenvir"))


def test_repeated_pilots_credit_a_model_that_knows_the_answers_and_not_a_constant_one(gss):
    from engine.pilot_evaluate import PilotEvaluationConfig, question_records, summarize_pilots
    from engine.surveys.model import MISSING

    question = gss.question("natenvir")
    index = gss.answers.index[gss.answers["natenvir"].to_numpy() != MISSING]
    answers = gss.answers.loc[index, "natenvir"].to_numpy()
    weights = gss.weight_array(index)
    knowing = 0.1 / 3 + 0.9 * np.eye(3)[answers]  # nearly each person's own answer
    constant = np.tile([0.2, 0.3, 0.5], (len(index), 1))
    config = PilotEvaluationConfig(pilot_sizes=(100,), repeats=3, min_slice=100)
    summaries = {name: summarize_pilots(question_records(gss, question, (index, answers, weights, probabilities),
                                                         config), (100,))["100"]
                 for name, probabilities in {"knowing": knowing, "constant": constant}.items()}
    assert summaries["knowing"]["n_estimates"] == summaries["constant"]["n_estimates"] > 20
    assert summaries["knowing"]["ppi"]["effective_n_ratio"] > 3
    assert summaries["knowing"]["ppi"]["js"] < 0.6 * summaries["knowing"]["pilot"]["js"]
    assert summaries["constant"]["ppi"]["effective_n_ratio"] == pytest.approx(1)
    assert summaries["constant"]["ppi"]["js"] == pytest.approx(summaries["constant"]["pilot"]["js"])
    assert summaries["constant"]["model"]["js"] > summaries["knowing"]["model"]["js"]
    for summary in summaries.values():
        assert 0.8 <= summary["ppi"]["coverage"] <= 1 and 0.8 <= summary["pilot"]["coverage"] <= 1
