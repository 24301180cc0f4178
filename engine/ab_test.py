"""Tested A/B: how far stimulus B moves the answers from stimulus A, and whether that is noise.

The same personas answer the same question twice, once after stimulus A and once after B,
so each persona is its own control (a paired design). For persona i with survey weight
w_i and answer distributions a_i and b_i (rows of [n, k] probability matrices), the shift
of a measure s is the weighted mean of the per-persona differences,

    shift = sum_i w_i (s(b_i) - s(a_i)) / sum_i w_i,

for s = each option's share, the top box (the on-scale option at the question's `positive`
end) and, for a scale, the mean score (`engine.metrics.expected_values`). Its 95% interval
is a paired percentile bootstrap over personas: persona indices drawn uniformly with
replacement (the same draw for A and B, which keeps the pairing), the weighted mean of the
drawn personas' differences taken with their own weights, `resamples` times, and the
2.5th and 97.5th percentiles read off. The verdict is "within noise" when the interval
covers 0, else "B higher" or "B lower".

    from engine.ab_test import ab_test
    ab_test(question, probabilities_a, probabilities_b, weights, rng=np.random.default_rng(0))
    stimulus_shift(simulation_a, simulation_b, temperature=1.0, seed=0)   # two `simulate` runs

The interval is over the personas only: it says whether the model's shift would survive a
different draw of the same kind of people, not whether the model is right about it. Pure
numpy/pandas; checked in `python -m pytest -q tests/test_ab_test.py`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.metrics import expected_values
from engine.surveys.model import Question
from engine.validation import check_range, check_seed

DEFAULT_RESAMPLES = 2000
LEVEL = 0.95
WITHIN_NOISE, B_HIGHER, B_LOWER = "within noise", "B higher", "B lower"
SHIFT_COLUMNS = ("measure", "label", "a", "b", "shift", "low", "high", "verdict")
RESAMPLE_CELLS = 4_000_000  # persona draws held in memory at once (resamples x personas per chunk)


def persona_measures(question: Question, probabilities: np.ndarray) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Each persona's measures [n, m] and their (measure, label): every option's share, the
    top box and the mean score (the last two for scales only)."""
    columns = [probabilities]
    names = [("option", label) for label in question.labels]
    if question.is_scale:
        top = question.positive_index
        columns += [probabilities[:, [top]], expected_values(probabilities, question.values)[:, None]]
        names += [("top_box", question.labels[top]), ("mean", "Mean score")]
    return np.hstack(columns), names


def check_pair(question: Question, a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> None:
    k = len(question.options)
    if a.ndim != 2 or a.shape != b.shape or a.shape[1] != k:
        raise FocusgroupError(f"A and B must be [personas, {k}] probability matrices of the same personas; got "
                              f"{a.shape} and {b.shape}.")
    if len(a) == 0:
        raise FocusgroupError("A/B needs at least one persona.")
    if weights.shape != (len(a),) or np.any(weights < 0) or weights.sum() <= 0:
        raise FocusgroupError(f"A/B needs one non-negative weight per persona ({len(a)}), with a positive total.")


def bootstrap_means(differences: np.ndarray, weights: np.ndarray, rng: np.random.Generator,
                    resamples: int) -> np.ndarray:
    """[resamples, m] weighted means of `differences` [n, m] over personas drawn uniformly
    with replacement, each drawn persona with its own weight. A draw whose personas all weigh
    0 (possible with zero weights) is NaN, and the percentiles leave it out."""
    n = len(weights)
    weighted = differences * weights[:, None]
    chunk = max(1, RESAMPLE_CELLS // n)
    means = []
    for start in range(0, resamples, chunk):
        counts = rng.multinomial(n, np.full(n, 1 / n), size=min(chunk, resamples - start)).astype(float)
        totals = counts @ weights
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append((counts @ weighted) / totals[:, None])
    return np.vstack(means)


def verdict(low: float, high: float) -> str:
    if low <= 0 <= high:
        return WITHIN_NOISE
    return B_HIGHER if low > 0 else B_LOWER


def ab_test(question: Question, probabilities_a, probabilities_b, weights=None,
            rng: np.random.Generator | None = None, resamples: int = DEFAULT_RESAMPLES) -> pd.DataFrame:
    """The shift from A to B of every measure, with its paired bootstrap 95% interval.

    `probabilities_a` and `probabilities_b` are [n, k]: row i is the same persona under A and
    under B; `weights` [n] their survey weights (default 1); `rng` draws the resamples
    (default: seed 0). Returns one row per measure, columns SHIFT_COLUMNS: measure ("option",
    "top_box", "mean"), label (the option's, or "Mean score"), a and b (the weighted means),
    shift (b - a), low and high (the interval), verdict ("within noise", "B higher", "B lower").
    """
    a = np.asarray(probabilities_a, dtype=float)
    b = np.asarray(probabilities_b, dtype=float)
    weights = np.ones(len(a)) if weights is None else np.asarray(weights, dtype=float).ravel()
    check_pair(question, a, b, weights)
    check_range(resamples, "The number of bootstrap resamples", low=100)
    rng = np.random.default_rng(0) if rng is None else rng

    measures_a, names = persona_measures(question, a)
    measures_b, _ = persona_measures(question, b)
    differences = measures_b - measures_a
    boot = bootstrap_means(differences, weights, rng, resamples)
    low, high = np.nanpercentile(boot, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2], axis=0)
    mean_a, mean_b = np.average(measures_a, axis=0, weights=weights), np.average(measures_b, axis=0, weights=weights)
    rows = [{"measure": measure, "label": label, "a": mean_a[j], "b": mean_b[j],
             "shift": float(np.average(differences[:, j], weights=weights)), "low": low[j], "high": high[j],
             "verdict": verdict(low[j], high[j])} for j, (measure, label) in enumerate(names)]
    return pd.DataFrame.from_records(rows, columns=list(SHIFT_COLUMNS))


def stimulus_shift(simulation_a, simulation_b, temperature: float = 1.0, seed: int = 0,
                   resamples: int = DEFAULT_RESAMPLES) -> pd.DataFrame:
    """`ab_test` of two `engine.simulate.Simulation`s of one question on the same personas
    (say `simulate(..., stimulus=A)` and `simulate(..., stimulus=B)` with the same slice and
    seed), at temperature T, with their survey weights."""
    if simulation_a.question != simulation_b.question:
        raise FocusgroupError("A and B must ask the same question to be compared.")
    if not simulation_a.index.equals(simulation_b.index):
        raise FocusgroupError("A and B must be answered by the same personas: simulate both with the same slice, "
                              "number of personas and seed.")
    check_seed(seed)
    return ab_test(simulation_a.question, simulation_a.probabilities(temperature),
                   simulation_b.probabilities(temperature), simulation_a.weights, np.random.default_rng(seed),
                   resamples)


__all__ = ["ab_test", "stimulus_shift", "SHIFT_COLUMNS", "WITHIN_NOISE", "B_HIGHER", "B_LOWER", "DEFAULT_RESAMPLES"]
