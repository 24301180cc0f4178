"""Hand-computed checks of engine.metrics. Run: python -m pytest -q tests/test_metrics.py"""

import math

import numpy as np
import pytest

from engine.errors import FocusgroupError
from engine.metrics import (
    MIN_TEMPERATURE,
    POPULATION_METRICS,
    SMOOTHING,
    answer_distribution,
    apply_temperature,
    effective_sample_size,
    expected_values,
    individual_metrics,
    js_distance,
    kl_divergence,
    noise_floor,
    population_metrics,
    total_variation,
    wasserstein,
)


# answer_distribution

def test_answer_distribution_counts_valid_answers_and_ignores_missing():
    distribution = answer_distribution(np.array([0, 0, 1, -1, 2, -1]), 4)
    np.testing.assert_allclose(distribution, [0.5, 0.25, 0.25, 0.0])


def test_weights_change_answer_distribution():
    answers = np.array([0, 0, 1, -1])
    np.testing.assert_allclose(answer_distribution(answers, 2), [2 / 3, 1 / 3])
    # The missing answer's weight of 9 must not count anywhere.
    weighted = answer_distribution(answers, 2, weights=np.array([1.0, 1.0, 2.0, 9.0]))
    np.testing.assert_allclose(weighted, [0.5, 0.5])


def test_answer_distribution_without_valid_answers_raises():
    with pytest.raises(FocusgroupError):
        answer_distribution(np.array([-1, -1]), 3)


# KL divergence

def test_kl_divergence_by_hand_with_smoothing():
    # p' = (0.5 + 0.001) / 1.002 = 0.5; q' = (0.251 / 1.002, 0.751 / 1.002)
    # KL = 0.5 ln(0.501 / 0.251) + 0.5 ln(0.501 / 0.751) = 0.1431768056...
    assert SMOOTHING == 1e-3
    expected = 0.5 * math.log(0.501 / 0.251) + 0.5 * math.log(0.501 / 0.751)
    assert kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected, rel=1e-9)
    assert kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.1431768056, rel=1e-8)
    # Without smoothing it is 0.5 ln 2 + 0.5 ln(2/3), a different number.
    assert kl_divergence([0.5, 0.5], [0.25, 0.75], smoothing=0.0) == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-9
    )


def test_kl_divergence_direction_is_real_given_simulated():
    real, simulated = [0.9, 0.1], [0.5, 0.5]
    assert kl_divergence(real, simulated) != pytest.approx(kl_divergence(simulated, real))


def test_kl_divergence_stays_finite_when_simulation_misses_an_option():
    assert np.isfinite(kl_divergence([0.5, 0.5], [1.0, 0.0]))


# Jensen-Shannon distance

def test_js_distance_of_disjoint_distributions_is_one():
    assert js_distance([1, 0, 0], [0, 0.5, 0.5]) == pytest.approx(1.0)


def test_js_distance_by_hand():
    # m = [0.75, 0.25]; KL2(p||m) = log2(4/3); KL2(q||m) = 0.5 log2(2/3) + 0.5 log2(2)
    divergence = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    assert js_distance([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.sqrt(divergence), rel=1e-9)
    assert js_distance([1.0, 0.0], [0.5, 0.5]) == pytest.approx(0.5579230453, rel=1e-8)


# Wasserstein

def test_wasserstein_between_scale_ends_is_one():
    assert wasserstein([1, 0, 0], [0, 0, 1], [1, 2, 3]) == pytest.approx(1.0)
    assert wasserstein([1, 0, 0], [0, 0, 1], [1, 2, 5]) == pytest.approx(1.0)


def test_wasserstein_uses_the_gaps_between_scale_values():
    # One step of mass: gap / range.
    assert wasserstein([1, 0, 0], [0, 1, 0], [1, 2, 3]) == pytest.approx(0.5)
    assert wasserstein([1, 0, 0], [0, 1, 0], [1, 2, 5]) == pytest.approx(1 / 4)
    assert wasserstein([0, 1, 0], [0, 0, 1], [1, 2, 5]) == pytest.approx(3 / 4)
    # Half the mass moved across the whole scale: |CDF diff| = 0.5 on both gaps.
    assert wasserstein([1, 0, 0], [0.5, 0, 0.5], [1, 2, 5]) == pytest.approx(0.5)


def test_wasserstein_sorts_unordered_scale_values():
    # Option 1 sits at 5 and option 2 at 2: moving the mass from one to the other is 3 / 4.
    assert wasserstein([0, 1, 0], [0, 0, 1], [1, 5, 2]) == pytest.approx(3 / 4)
    assert wasserstein([1, 0, 0], [0, 0, 1], [1, 5, 2]) == pytest.approx(1 / 4)


# Off-scale options (NaN values: "Don't know") have no position

OFF_SCALE_VALUES = np.array([1.0, 2.0, 3.0, np.nan])


def test_wasserstein_leaves_off_scale_options_out_and_renormalises():
    # On the scale, [0.2, 0, 0.2] and [0, 0, 0.6] are [0.5, 0, 0.5] and [0, 0, 1]: 0.5 x 2 / 2.
    assert wasserstein([0.2, 0, 0.2, 0.6], [0, 0, 0.6, 0.4], OFF_SCALE_VALUES) == pytest.approx(0.5)
    # Only the off-scale share differs: the same answers on the scale, distance 0.
    assert wasserstein([0.25, 0.25, 0.0, 0.5], [0.5, 0.5, 0.0, 0.0], OFF_SCALE_VALUES) == pytest.approx(0.0)
    assert math.isnan(wasserstein([0, 0, 0, 1], [1, 0, 0, 0], OFF_SCALE_VALUES))  # nobody on the scale


def test_expected_values_are_means_over_the_scale_alone():
    # (0.2 x 1 + 0.2 x 2 + 0.2 x 3) / 0.6 = 2; the 0.4 that is off the scale does not pull it to 0.
    np.testing.assert_allclose(expected_values(np.array([[0.2, 0.2, 0.2, 0.4], [0.5, 0.0, 0.0, 0.5]]),
                                               OFF_SCALE_VALUES), [2.0, 1.0])
    assert expected_values(np.array([0.1, 0.0, 0.3, 0.6]), OFF_SCALE_VALUES) == pytest.approx(2.5)


def test_rmse_and_mae_skip_off_scale_answers_and_means():
    probabilities = np.array([[0.6, 0.2, 0.0, 0.2], [0.1, 0.3, 0.0, 0.6], [0.2, 0.0, 0.2, 0.6]])
    answers = np.array([0, 3, 1])  # the second answer is "Don't know"
    scores = individual_metrics(probabilities, answers, OFF_SCALE_VALUES)
    # Expected values on the scale: (0.6 + 0.4) / 0.8 = 1.25 against 1; (0.2 + 0.6) / 0.4 = 2 against 2.
    assert scores["rmse"] == pytest.approx(math.sqrt(0.25**2 / 2))
    assert scores["mae"] == pytest.approx(0.125)
    assert scores["n"] == 3 and scores["accuracy"] == pytest.approx(2 / 3)  # "Don't know" is still an answer
    only_off = individual_metrics(probabilities[1:2], answers[1:2], OFF_SCALE_VALUES)
    assert only_off["rmse"] is None and only_off["mae"] is None


# Total variation

def test_total_variation_by_hand():
    assert total_variation([0.5, 0.3, 0.2], [0.2, 0.3, 0.5]) == pytest.approx(0.3)
    assert total_variation([1, 0], [0, 1]) == pytest.approx(1.0)


def test_identical_distributions_score_zero_on_every_metric():
    p = np.array([0.2, 0.5, 0.3])
    scores = population_metrics(p, p.copy(), np.array([1.0, 2.0, 3.0]))
    assert set(scores) == set(POPULATION_METRICS)
    for name in POPULATION_METRICS:
        assert scores[name] == pytest.approx(0.0, abs=1e-12)


def test_population_metrics_has_no_wasserstein_for_nominal_questions():
    scores = population_metrics([0.5, 0.5], [0.25, 0.75], None)
    assert scores["wasserstein"] is None
    assert scores["tv"] == pytest.approx(0.25)


# Noise floor

def test_effective_sample_size_is_kish():
    assert effective_sample_size([1, 1, 1, 1]) == pytest.approx(4.0)
    assert effective_sample_size([1, 1, 2]) == pytest.approx(16 / 6)


def test_noise_floor_is_reproducible_with_the_same_seed():
    real, values = np.array([0.5, 0.3, 0.2]), np.array([1.0, 2.0, 3.0])
    first = noise_floor(real, 100, values, np.random.default_rng(7))
    second = noise_floor(real, 100, values, np.random.default_rng(7))
    assert first == second
    assert set(first) == set(POPULATION_METRICS)


def test_noise_floor_shrinks_as_the_slice_grows():
    real, values = np.array([0.5, 0.3, 0.2]), np.array([1.0, 2.0, 3.0])
    small = noise_floor(real, 30, values, np.random.default_rng(0))
    large = noise_floor(real, 3000, values, np.random.default_rng(0))
    for name in POPULATION_METRICS:
        assert 0 < large[name] < small[name]


def test_noise_floor_of_nominal_question_has_no_wasserstein():
    floor = noise_floor(np.array([0.5, 0.5]), 50, None, np.random.default_rng(0), n_resamples=20)
    assert floor["wasserstein"] is None
    assert floor["tv"] > 0


# Individual metrics

PROBABILITIES = np.array([
    [0.7, 0.2, 0.1],
    [0.1, 0.6, 0.3],
    [0.3, 0.3, 0.4],
    [0.5, 0.5, 0.0],
])
ANSWERS = np.array([0, 2, 2, -1])
VALUES = np.array([1.0, 2.0, 3.0])


def test_expected_values_by_hand():
    np.testing.assert_allclose(expected_values(PROBABILITIES[:3], VALUES), [1.4, 2.2, 2.1])


def test_individual_metrics_on_a_hand_case():
    scores = individual_metrics(PROBABILITIES, ANSWERS, VALUES)
    assert scores["n"] == 3
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.3) + math.log(0.4)) / 3)
    # Expected values 1.4, 2.2, 2.1 against true values 1, 3, 3.
    assert scores["rmse"] == pytest.approx(math.sqrt((0.4**2 + 0.8**2 + 0.9**2) / 3))
    assert scores["mae"] == pytest.approx(0.7)


def test_individual_metrics_weights_the_means():
    scores = individual_metrics(PROBABILITIES, ANSWERS, VALUES, weights=np.array([1.0, 1.0, 2.0, 5.0]))
    assert scores["accuracy"] == pytest.approx(3 / 4)
    assert scores["mae"] == pytest.approx((0.4 + 0.8 + 2 * 0.9) / 4)


def test_individual_metrics_uses_point_predictions_when_given():
    scores = individual_metrics(PROBABILITIES, ANSWERS, VALUES, point_predictions=np.array([1.0, 3.0, 2.0, 0.0]))
    assert scores["mae"] == pytest.approx(1 / 3)
    assert scores["rmse"] == pytest.approx(math.sqrt(1 / 3))


def test_individual_metrics_nominal_has_no_rmse_and_log_loss_is_clipped():
    scores = individual_metrics(np.array([[1.0, 0.0]]), np.array([1]), None)
    assert scores["rmse"] is None and scores["mae"] is None
    assert scores["accuracy"] == 0.0
    assert scores["log_loss"] == pytest.approx(-math.log(1e-6))


# Temperature

LOGITS = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])


def test_temperature_zero_is_argmax():
    np.testing.assert_array_equal(apply_temperature(LOGITS, 0.0), [[0, 1, 0], [1, 0, 0]])


def test_temperature_one_is_softmax():
    expected = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(apply_temperature(LOGITS, 1.0), expected)
    half = np.exp(2 * LOGITS) / np.exp(2 * LOGITS).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(apply_temperature(LOGITS, 0.5), half)


def test_high_temperature_tends_to_uniform():
    np.testing.assert_allclose(apply_temperature(LOGITS, 1e6), np.full((2, 3), 1 / 3), atol=1e-5)


def test_temperature_is_stable_for_large_logits():
    np.testing.assert_allclose(apply_temperature(np.array([1000.0, 1001.0]), 1.0),
                               [1 / (1 + math.e), math.e / (1 + math.e)])


def test_negative_temperature_raises():
    with pytest.raises(FocusgroupError):
        apply_temperature(LOGITS, -0.5)


def test_temperatures_between_zero_and_the_minimum_are_refused_with_the_fix():
    with pytest.raises(FocusgroupError, match="pass 0"):
        apply_temperature(LOGITS, 1e-320)


def test_the_smallest_temperature_never_gives_nan_even_for_huge_logit_gaps():
    probabilities = apply_temperature(np.array([[1e306, 0.0], [-1e306, 1e306]]), MIN_TEMPERATURE)
    np.testing.assert_array_equal(probabilities, [[1.0, 0.0], [0.0, 1.0]])
