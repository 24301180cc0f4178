"""Pilot + model statistics (`engine.pilot`): the pilot's Wilson intervals, PPI++ against its
closed form and against `ppi_py`, coverage with a biased model, re-levelling, and what a
model with no signal adds (nothing)."""

from __future__ import annotations

import math

import numpy as np
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
    from ppi_py import ppi_mean_ci

    rng = np.random.default_rng(3)
    answers, predicted = population(rng, 4200, bias=0.1, noise=0.1)
    y, f, f_unlabelled = (answers[:200] == 0).astype(float), predicted[:200, 0], predicted[200:, 0]
    n, big_n = len(y), len(f_unlabelled)
    # METHODS.md: lam* = Cov(Y, f) / ((1 + n/N) Var(f)), clipped to [0, 1]
    lam = np.clip(np.cov(y, f, bias=True)[0, 1] / ((1 + n / big_n) * np.var(np.concatenate([f, f_unlabelled]),
                                                                                ddof=1)), 0, 1)
    theta = lam * f_unlabelled.mean() + (y - lam * f).mean()
    sd = math.sqrt(lam ** 2 * f_unlabelled.var() / big_n + (y - lam * f).var() / n)
    estimate = ppi_estimate(answers[:200], predicted[:200], predicted[200:])
    assert 0 < lam < 1
    assert estimate.shares[0] == pytest.approx(theta, abs=1e-6)
    assert estimate.low[0] == pytest.approx(theta - 1.96 * sd, abs=2e-3)
    assert estimate.high[0] == pytest.approx(theta + 1.96 * sd, abs=2e-3)
    low, high = ppi_mean_ci(y, f, f_unlabelled, alpha=0.05)
    assert (estimate.low[0], estimate.high[0]) == pytest.approx((float(low[0]), float(high[0])))
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


def test_a_slice_with_one_pilot_answer_gets_no_interval():
    estimates = slice_estimates(np.array([1]), np.array([[0.5, 0.5]]), np.array([[0.4, 0.6]] * 5))
    assert set(estimates) == {"pilot", "model", "ppi", "relevelled"}
    assert estimates["ppi"].low is None and estimates["pilot"].low is None and estimates["model"].low is None
    assert worth_sentence(1, estimates["ppi"], "men").startswith("Too few pilot answers")
    with pytest.raises(ValueError, match="one row per pilot answer"):
        slice_estimates(np.array([1, 0]), np.array([[0.5, 0.5]]), np.array([[0.4, 0.6]]))
