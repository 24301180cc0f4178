"""Tested A/B: a known shift is found and told apart from noise, identical stimuli are noise,
the top box follows the spec's positive end, and the bootstrap is reproducible and weighted."""

import numpy as np
import pytest

from engine.ab_test import B_HIGHER, B_LOWER, SHIFT_COLUMNS, WITHIN_NOISE, ab_test, stimulus_shift
from engine.errors import FocusgroupError
from engine.simulate import Simulation
from engine.surveys.model import Option, Question


def scale(positive="first"):
    labels = ("Hate it", "Neutral", "Love it", "Don't know")
    return Question("taste", "How does it taste?", "ordinal",
                    tuple(Option((str(i),), label, float(i + 1), label == "Don't know")
                          for i, label in enumerate(labels)), positive=positive)


def personas(n=400, seed=1):
    """n persona distributions over four options, each with at least 0.1 on every option."""
    return 0.1 + 0.6 * np.random.default_rng(seed).dirichlet([1, 1, 1, 1], size=n)


def option(shifts, label):
    """The shift of one option's share."""
    return shifts[(shifts["measure"] == "option") & (shifts["label"] == label)].iloc[0]


def test_a_known_shift_is_inside_the_interval_and_zero_is_not():
    a = personas()
    b = a.copy()
    b[:, 2] += 0.1  # every persona moves 0.1 from "Hate it" to "Love it"
    b[:, 0] -= 0.1
    shifts = ab_test(scale(), a, b, rng=np.random.default_rng(0))
    assert list(shifts.columns) == list(SHIFT_COLUMNS)
    love = option(shifts, "Love it")
    assert love["shift"] == pytest.approx(0.1)
    assert love["low"] <= 0.1 + 1e-12 and love["high"] >= 0.1 - 1e-12 and love["low"] > 0
    assert love["verdict"] == B_HIGHER and option(shifts, "Hate it")["verdict"] == B_LOWER


def test_a_noisy_shift_gets_an_interval_around_it():
    a = personas()
    b = a.copy()
    moved = 0.1 + 0.05 * np.random.default_rng(2).standard_normal(len(a))
    moved -= moved.mean() - 0.1  # exactly 0.1 on average, different for every persona
    b[:, 2] += moved
    b[:, 1] -= moved
    love = ab_test(scale(), a, b, rng=np.random.default_rng(0)).iloc[2]
    assert love["label"] == "Love it" and love["shift"] == pytest.approx(0.1)
    assert love["low"] < 0.1 < love["high"] and love["low"] > 0 and love["high"] - love["low"] > 0.005


def test_identical_stimuli_are_within_noise():
    a = personas()
    shifts = ab_test(scale(), a, a.copy(), weights=np.linspace(0.5, 2, len(a)), rng=np.random.default_rng(0))
    assert (shifts["verdict"] == WITHIN_NOISE).all() and (shifts["shift"] == 0).all()


def test_a_shift_smaller_than_the_personas_spread_is_within_noise():
    a = personas()
    moved = 0.05 * np.random.default_rng(3).standard_normal(len(a))
    moved -= moved.mean()  # no shift on average, only noise
    b = a.copy()
    b[:, 2] += moved
    b[:, 1] -= moved
    assert ab_test(scale(), a, b, rng=np.random.default_rng(0)).iloc[2]["verdict"] == WITHIN_NOISE


def test_top_box_follows_the_positive_end():
    a = personas()
    b = a.copy()
    b[:, 2] += 0.1
    b[:, 0] -= 0.1
    last = ab_test(scale("last"), a, b).query("measure == 'top_box'").iloc[0]
    first = ab_test(scale("first"), a, b).query("measure == 'top_box'").iloc[0]
    assert last["label"] == "Love it" and last["shift"] == pytest.approx(0.1)  # the last on-scale option
    assert first["label"] == "Hate it" and first["shift"] == pytest.approx(-0.1)


def test_the_mean_score_leaves_off_scale_options_out():
    a = np.array([[0.5, 0.0, 0.0, 0.5]])
    b = np.array([[0.0, 0.0, 0.5, 0.5]])
    mean = ab_test(scale(), a, b, resamples=100).query("measure == 'mean'").iloc[0]
    assert mean["a"] == pytest.approx(1.0) and mean["b"] == pytest.approx(3.0) and mean["shift"] == pytest.approx(2.0)


def test_weights_count_in_the_shift_and_the_same_seed_gives_the_same_interval():
    a = np.tile([0.25, 0.25, 0.25, 0.25], (4, 1))
    b = a.copy()
    b[:2, 2] += 0.2  # the first two personas, weighing 3 each, move
    b[:2, 1] -= 0.2
    weights = np.array([3.0, 3.0, 1.0, 1.0])
    first = ab_test(scale(), a, b, weights, rng=np.random.default_rng(5))
    assert option(first, "Love it")["shift"] == pytest.approx(0.2 * 6 / 8)
    again = ab_test(scale(), a, b, weights, rng=np.random.default_rng(5))
    assert first.equals(again)


def test_mismatched_inputs_are_refused():
    with pytest.raises(FocusgroupError, match="same personas"):
        ab_test(scale(), personas(10), personas(11))
    with pytest.raises(FocusgroupError, match="weight"):
        ab_test(scale(), personas(10), personas(10), weights=np.zeros(10))


def test_two_simulations_of_the_same_personas_are_compared_at_a_temperature(gss):
    question = gss.question("natspac")
    index = gss.demographics.index[:50]
    logits = np.log(np.tile([0.5, 0.3, 0.2], (50, 1)))

    def simulation(values, stimulus):
        return Simulation(survey=gss, question=question, filters={}, index=index, logits=values,
                          weights=np.ones(50), answers=None, stimulus=stimulus, model_name="hand", seed=0)

    same = stimulus_shift(simulation(logits, "A"), simulation(logits, "B"), temperature=0.7)
    assert (same["verdict"] == WITHIN_NOISE).all()
    with pytest.raises(FocusgroupError, match="same personas"):
        stimulus_shift(simulation(logits, "A"), Simulation(
            survey=gss, question=question, filters={}, index=gss.demographics.index[50:100], logits=logits,
            weights=np.ones(50), answers=None, stimulus="B", model_name="hand", seed=0))
