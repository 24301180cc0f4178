"""How close simulated answers are to real ones: pure numpy functions, no models.

Two families of metrics live here.

* Population metrics compare two answer *distributions* over the k options of one
  question (the real respondents of a slice against the simulated ones): KL divergence,
  Jensen-Shannon distance, normalised 1-Wasserstein distance and total variation. The
  `noise_floor` says how large each of them is from sampling alone, so a score can be
  read against what a second real sample of the same size would get.
* Individual metrics compare per-respondent predicted probabilities with each
  respondent's own answer: accuracy, log loss, and RMSE / MAE on the scale.

Answers are option indices 0..k-1 with -1 for missing (see `engine.surveys.model`);
distributions are length-k vectors that sum to 1. Scale values are the options' positions;
a NaN value marks an off-scale option ("Don't know"): the distributional metrics (KL, JS,
TV) keep its share like any other, while everything that needs a position (Wasserstein,
expected values and means, RMSE and MAE) leaves it out. Nothing here reads files or holds
state; randomness comes in as an `rng` argument. Run the hand-computed checks with
`python -m pytest -q tests/test_metrics.py`.
"""

from __future__ import annotations

import numpy as np

from engine.errors import FocusgroupError

SMOOTHING = 1e-3
PROBABILITY_FLOOR = 1e-6
MIN_TEMPERATURE = 1e-3  # below it (and above 0) softmax is the argmax; see check_temperature
POPULATION_METRICS = ("kl", "js", "wasserstein", "tv")
MISSING = -1


def _distribution(p, name: str) -> np.ndarray:
    vector = np.asarray(p, dtype=float)
    if vector.ndim != 1 or vector.size == 0:
        raise FocusgroupError(f"The {name} distribution must be a non-empty 1-D vector.")
    return vector


def _pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    p, q = _distribution(p, "first"), _distribution(q, "second")
    if p.shape != q.shape:
        raise FocusgroupError(
            f"The two distributions have {p.size} and {q.size} options; compare the same question."
        )
    return p, q


def answer_distribution(
    answers: np.ndarray, n_options: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """The (weighted) share of each option among valid answers.

    dist[j] = sum_i w_i [a_i == j] / sum_i w_i [a_i != -1]; missing answers (-1) are
    ignored, weights default to 1. Raises FocusgroupError when no valid answer (or no
    positive weight on one) remains.
    """
    answers = np.asarray(answers).astype(int).ravel()
    weights = np.ones(answers.size) if weights is None else np.asarray(weights, dtype=float).ravel()
    if weights.shape != answers.shape:
        raise FocusgroupError(f"Got {answers.size} answers but {weights.size} weights.")
    valid = answers != MISSING
    if np.any((answers[valid] < 0) | (answers[valid] >= n_options)):
        raise FocusgroupError(f"Answers must be option indices 0..{n_options - 1} or -1 for missing.")
    counts = np.bincount(answers[valid], weights=weights[valid], minlength=n_options)
    total = counts.sum()
    if not valid.any() or total <= 0:
        raise FocusgroupError("There are no valid answers to build a distribution from; widen the slice.")
    return counts / total


def kl_divergence(real, simulated, smoothing: float = SMOOTHING) -> float:
    """KL(real || simulated) = sum_j p'_j ln(p'_j / q'_j), in nats.

    Both vectors are smoothed first, p' = (p + eps) / (1 + k eps) with eps = `smoothing`,
    so an option the simulation never produces costs a large but finite amount. The
    direction matters: the real distribution weights the log ratio.
    """
    p, q = _pair(real, simulated)
    k = p.size
    p = (p + smoothing) / (1 + k * smoothing)
    q = (q + smoothing) / (1 + k * smoothing)
    return float(np.sum(p * np.log(p / q)))


def js_distance(p, q) -> float:
    """Jensen-Shannon distance: sqrt(JSD) with base-2 logs, so it lies in [0, 1].

    JSD = 0.5 KL2(p || m) + 0.5 KL2(q || m) with m = (p + q) / 2 and 0 log 0 = 0; the
    distance is 1 exactly when p and q share no option. No smoothing.
    """
    p, q = _pair(p, q)
    m = 0.5 * (p + q)

    def kl2(a: np.ndarray) -> float:
        used = a > 0
        return float(np.sum(a[used] * np.log2(a[used] / m[used])))

    divergence = 0.5 * kl2(p) + 0.5 * kl2(q)
    return float(np.sqrt(min(max(divergence, 0.0), 1.0)))


def wasserstein(p, q, values) -> float:
    """1-Wasserstein (earth mover's) distance on the scale, divided by its range.

    With the scale positions sorted, v_1 < ... < v_k, and P, Q the cumulative
    distributions, W1 = sum_{j<k} |P_j - Q_j| (v_{j+1} - v_j); the result is
    W1 / (v_k - v_1), so moving all mass from one end of the scale to the other gives 1.

    Options whose value is NaN are off the scale: they are dropped and both distributions
    renormalised over the options on it (the shares among answers that have a position).
    When either has no answer on the scale the distance is undefined: NaN.
    """
    p, q = _pair(p, q)
    values = np.asarray(values, dtype=float).ravel()
    if values.shape != p.shape:
        raise FocusgroupError(f"Got {values.size} scale values for {p.size} options.")
    on_scale = ~np.isnan(values)
    if not on_scale.all():
        values, p, q = values[on_scale], p[on_scale], q[on_scale]
        if values.size and (p.sum() <= 0 or q.sum() <= 0):
            return float("nan")
        p, q = p / p.sum(), q / q.sum()
    span = values.max() - values.min() if values.size else 0.0
    if not span > 0:
        raise FocusgroupError("The scale values are all equal, so the Wasserstein distance is undefined.")
    order = np.argsort(values, kind="stable")
    values, p, q = values[order], p[order], q[order]
    gaps = np.diff(values)
    cumulative_gap = np.abs(np.cumsum(p) - np.cumsum(q))[:-1]
    return float(np.sum(cumulative_gap * gaps) / span)


def total_variation(p, q) -> float:
    """Total variation distance 0.5 * sum_j |p_j - q_j|, in [0, 1]."""
    p, q = _pair(p, q)
    return float(0.5 * np.sum(np.abs(p - q)))


def population_metrics(real, simulated, values: np.ndarray | None) -> dict:
    """Every population metric of one real / simulated pair, keyed by POPULATION_METRICS.

    `wasserstein` is None when `values` is None (nominal questions have no scale).
    """
    return {
        "kl": kl_divergence(real, simulated),
        "js": js_distance(real, simulated),
        "wasserstein": None if values is None else wasserstein(real, simulated, values),
        "tv": total_variation(real, simulated),
    }


def effective_sample_size(weights) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2; equals n for equal weights."""
    weights = np.asarray(weights, dtype=float).ravel()
    squares = np.sum(weights**2)
    if weights.size == 0 or squares <= 0:
        raise FocusgroupError("The effective sample size needs at least one positive weight.")
    return float(np.sum(weights) ** 2 / squares)


def noise_floor(
    real, n: float, values, rng: np.random.Generator, n_resamples: int = 200
) -> dict:
    """The distance sampling alone produces for a slice of `n` respondents.

    Draws `n_resamples` multinomial samples of size round(n) from `real`, turns each into
    a distribution and returns the mean of each population metric between `real` and
    those resamples (same keys as `population_metrics`; `wasserstein` is None when
    `values` is None). For weighted data pass the effective sample size
    (`effective_sample_size(weights)`), not the raw count: weights make a slice noisier
    than its row count suggests. The floor shrinks roughly as 1 / sqrt(n).
    """
    real = _distribution(real, "real")
    size = int(round(n))
    if size < 1:
        raise FocusgroupError(f"The noise floor needs a sample size of at least 1, got {n}.")
    if n_resamples < 1:
        raise FocusgroupError("The noise floor needs at least one resample.")
    probabilities = np.clip(real, 0, None)
    probabilities = probabilities / probabilities.sum()
    samples = rng.multinomial(size, probabilities, size=n_resamples) / size
    scores = [population_metrics(real, sample, values) for sample in samples]
    return {
        name: None if scores[0][name] is None else float(np.mean([s[name] for s in scores]))
        for name in POPULATION_METRICS
    }


def expected_values(probabilities: np.ndarray, values) -> np.ndarray:
    """The expected scale position of each row (or of one distribution, the mean score):
    E_i = sum_j P[i, j] v_j.

    With off-scale options (NaN values) the mean is over the scale alone,
    E_i = sum_{j on} P[i, j] v_j / sum_{j on} P[i, j], NaN for a row with no mass on it.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    values = np.asarray(values, dtype=float).ravel()
    if probabilities.shape[-1] != values.size:
        raise FocusgroupError(
            f"Got {probabilities.shape[-1]} option probabilities but {values.size} scale values."
        )
    on_scale = ~np.isnan(values)
    if on_scale.all():
        return probabilities @ values
    kept = probabilities[..., on_scale]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (kept @ values[on_scale]) / kept.sum(axis=-1)


def individual_metrics(
    probabilities: np.ndarray,
    answers: np.ndarray,
    values: np.ndarray | None,
    weights: np.ndarray | None = None,
    point_predictions: np.ndarray | None = None,
) -> dict:
    """Per-respondent scores of predicted option probabilities against the real answers.

    Rows whose answer is -1 are dropped; every mean below is weighted by `weights`
    (default 1) over the remaining n rows:

    * accuracy: mean of [argmax_j P[i, j] == a_i] (ties go to the first option);
    * log_loss: mean of -ln max(P[i, a_i], 1e-6), in nats;
    * rmse, mae: sqrt(mean (y_i - v_{a_i})^2) and mean |y_i - v_{a_i}|, where y_i is
      `point_predictions[i]` when given and the expected value sum_j P[i, j] v_j
      otherwise (over the on-scale options, see `expected_values`); only rows whose answer
      is on the scale count (an off-scale answer, NaN value, has no position to miss);
      None when `values` is None (nominal questions) or no answer is on the scale;
    * n: the number of rows used (for accuracy and log loss).
    """
    probabilities = np.asarray(probabilities, dtype=float)
    answers = np.asarray(answers).astype(int).ravel()
    if probabilities.ndim != 2 or probabilities.shape[0] != answers.size:
        raise FocusgroupError(
            f"Probabilities must be [n, k] with one row per answer; got {probabilities.shape} "
            f"for {answers.size} answers."
        )
    weights = np.ones(answers.size) if weights is None else np.asarray(weights, dtype=float).ravel()
    if weights.shape != answers.shape:
        raise FocusgroupError(f"Got {answers.size} answers but {weights.size} weights.")
    valid = answers != MISSING
    if not valid.any() or weights[valid].sum() <= 0:
        raise FocusgroupError("There are no valid answers to score; widen the slice.")
    k = probabilities.shape[1]
    if np.any(answers[valid] >= k) or np.any(answers[valid] < 0):
        raise FocusgroupError(f"Answers must be option indices 0..{k - 1} or -1 for missing.")

    rows, truth, w = probabilities[valid], answers[valid], weights[valid]
    chosen = rows[np.arange(truth.size), truth]
    result = {
        "accuracy": float(np.average(rows.argmax(axis=1) == truth, weights=w)),
        "log_loss": float(np.average(-np.log(np.clip(chosen, PROBABILITY_FLOOR, None)), weights=w)),
        "rmse": None,
        "mae": None,
        "n": int(truth.size),
    }
    if values is not None:
        values = np.asarray(values, dtype=float).ravel()
        if point_predictions is None:
            predicted = expected_values(rows, values)
        else:
            predicted = np.asarray(point_predictions, dtype=float).ravel()
            if predicted.size != answers.size:
                raise FocusgroupError(
                    f"Got {predicted.size} point predictions for {answers.size} answers."
                )
            predicted = predicted[valid]
        on_scale = ~np.isnan(values[truth])
        if on_scale.any() and w[on_scale].sum() > 0:
            errors = predicted[on_scale] - values[truth[on_scale]]
            result["rmse"] = float(np.sqrt(np.average(errors**2, weights=w[on_scale])))
            result["mae"] = float(np.average(np.abs(errors), weights=w[on_scale]))
    return result


def check_temperature(temperature: float) -> None:
    """Raise FocusgroupError unless the temperature is 0 or a finite number >= MIN_TEMPERATURE.

    Between 0 and MIN_TEMPERATURE a softmax is already the argmax to many decimals, while
    logits / T overflows in sampling (transformers' generate then fails on NaN
    probabilities); 0 says what such a temperature means.
    """
    if not np.isfinite(temperature) or temperature < 0:
        raise FocusgroupError(f"Temperature must be zero or positive, got {temperature}.")
    if 0 < temperature < MIN_TEMPERATURE:
        raise FocusgroupError(
            f"Temperature {temperature:g} is below {MIN_TEMPERATURE:g}; pass 0 for each persona's most likely answer."
        )


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) along the last axis.

    The maximum is subtracted before dividing by T, so neither large logits nor a small T
    overflow (every exponent is <= 0). T = 0 gives the one-hot argmax (ties go to the first
    index); T -> infinity tends to the uniform distribution; a negative T, or one between
    0 and MIN_TEMPERATURE, raises FocusgroupError.
    """
    logits = np.asarray(logits, dtype=float)
    check_temperature(temperature)
    if temperature == 0:
        winners = logits.argmax(axis=-1)
        one_hot = np.zeros_like(logits)
        np.put_along_axis(one_hot, winners[..., None], 1.0, axis=-1)
        return one_hot
    with np.errstate(over="ignore"):  # a gap that overflows is -inf, whose exponential is exactly 0
        scaled = (logits - logits.max(axis=-1, keepdims=True)) / temperature
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)
