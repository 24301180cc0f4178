"""Pilot + model: a slice's answer shares from a small real pilot, from the model, and from
both (prediction-powered inference), each with a 95% interval and an effective sample size.

The estimand is a slice's share of each option among the people the model's personas stand
for (the unlabelled set: for a survey question, the survey's respondents outside the pilot).
For a slice with pilot answers Y (one-hot, n x k), the model's probabilities for those pilot
respondents F (n x k) and for the unlabelled personas F~ (N x k), per option j:

- `pilot`: the pilot's weighted share; Wilson score interval at the Kish effective size
  n_kish = (sum w)^2 / sum w^2 (n with equal weights).
- `model`: the mean of F~[:, j]; no sampling interval (it is a model, not a sample).
- `ppi`: PPI++ with power tuning (Angelopoulos, Duchi and Zrnic 2023), from `ppi_py`:
  theta = lam * mean(F~) + mean(Y - lam * F), lam fitted on the pilot and clipped to [0, 1],
  so a model without signal falls back to the pilot alone; its CLT interval.
- `relevelled`: the model re-levelled to the pilot: factor_j = pilot share_j / mean(F[:, j])
  applied to every unlabelled persona's probabilities, which are then renormalised; a point
  estimate only.

Effective sample size: how many pilot answers alone would give an interval as narrow,
sum_j p_j (1 - p_j) / sum_j Var(theta_j) over the options (p the pilot's shares); the model
is "worth" that minus the pilot's own size. With fewer than MIN_PILOT pilot answers in the
slice no interval is given.

    from engine.pilot import slice_estimates
    estimates = slice_estimates(answers, pilot_probabilities, unlabelled_probabilities)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
MIN_PILOT = 2
METHODS = ("pilot", "model", "ppi", "relevelled")


@dataclass(frozen=True)
class Estimate:
    """One method's shares for one slice: per option, the point, and the 95% interval where
    the method has one (None otherwise); the effective sample size where it applies."""

    method: str
    shares: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    effective_n: float | None = None

    def as_json(self, labels) -> dict:
        def listed(values):
            return None if values is None else {label: float(v) for label, v in zip(labels, values)}

        return {"method": self.method, "shares": listed(self.shares), "low": listed(self.low),
                "high": listed(self.high), "effective_n": self.effective_n}


def one_hot(answers: np.ndarray, k: int) -> np.ndarray:
    """Option indices (n,) as an n x k indicator matrix."""
    answers = np.asarray(answers, dtype=int)
    if answers.size and (answers.min() < 0 or answers.max() >= k):
        raise ValueError(f"answer indices must lie in 0..{k - 1}")
    return np.eye(k)[answers]


def kish_n(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted data: (sum w)^2 / sum w^2."""
    weights = np.asarray(weights, dtype=float)
    return float(weights.sum() ** 2 / np.square(weights).sum())


def wilson(share: np.ndarray, n: float, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial shares at sample size n (may be fractional)."""
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def pilot_estimate(answers: np.ndarray, k: int, weights: np.ndarray | None = None) -> Estimate:
    """The pilot alone: weighted shares with Wilson intervals at the Kish size."""
    weights = np.ones(len(answers)) if weights is None else np.asarray(weights, dtype=float)
    shares = (one_hot(answers, k) * weights[:, None]).sum(0) / weights.sum()
    n = kish_n(weights)
    if len(answers) < MIN_PILOT:
        return Estimate("pilot", shares, None, None, None)
    low, high = wilson(shares, n)
    return Estimate("pilot", shares, low, high, n)


def model_estimate(unlabelled: np.ndarray, weights: np.ndarray | None = None) -> Estimate:
    """The model alone: the personas' mean probabilities, without a sampling interval."""
    return Estimate("model", np.average(unlabelled, axis=0, weights=weights), None, None, None)


def relevelled_estimate(answers: np.ndarray, pilot: np.ndarray, unlabelled: np.ndarray,
                        weights: np.ndarray | None = None, unlabelled_weights: np.ndarray | None = None) -> Estimate:
    """The model re-levelled so that its mean over the pilot personas equals the pilot's
    shares (an option the model never gives keeps the pilot's share through the factor's
    floor), applied to every unlabelled persona, renormalised, averaged."""
    k = pilot.shape[1]
    target = pilot_estimate(answers, k, weights).shares
    modelled = np.average(pilot, axis=0, weights=weights)
    factor = target / np.maximum(modelled, 1e-9)
    adjusted = unlabelled * factor
    totals = adjusted.sum(1, keepdims=True)
    adjusted = np.where(totals > 0, adjusted / np.where(totals > 0, totals, 1), 1.0 / k)
    return Estimate("relevelled", np.average(adjusted, axis=0, weights=unlabelled_weights), None, None, None)


def ppi_estimate(answers: np.ndarray, pilot: np.ndarray, unlabelled: np.ndarray,
                 weights: np.ndarray | None = None, unlabelled_weights: np.ndarray | None = None) -> Estimate:
    """PPI++ per option: the point estimate with the power-tuning lam fitted (and clipped to
    [0, 1]) by `ppi_py`, and its variance from `ppi_py`'s interval. The interval is Wilson's
    score interval at the option's effective size p (1 - p) / Var (p the pilot's share; the
    pilot's Kish size where that is 0/0), centred on the estimate: asymptotically the same
    as `ppi_py`'s normal interval, and the pilot's own Wilson interval when lam is 0. The
    normal interval covers badly on slices with a handful of pilot answers (it has zero width
    when they all answer alike), and slices are where a pilot is thinnest."""
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    k = pilot.shape[1]
    labels = one_hot(answers, k)
    if len(answers) < MIN_PILOT:
        return Estimate("ppi", model_estimate(unlabelled, unlabelled_weights).shares, None, None, None)
    shares, variances = np.empty(k), np.empty(k)
    for j in range(k):
        args = (labels[:, j], pilot[:, j], unlabelled[:, j])
        # a prediction without variance carries no signal, and ppi_py's lam would be 0 / 0
        lam = 0.0 if np.ptp(np.concatenate([pilot[:, j], unlabelled[:, j]])) < 1e-12 else None
        options = {"lam": lam, "w": weights, "w_unlabeled": unlabelled_weights}
        shares[j] = float(np.squeeze(ppi_mean_pointestimate(*args, **options)))
        low, high = (float(np.squeeze(bound)) for bound in ppi_mean_ci(*args, alpha=0.05, **options))
        variances[j] = ((high - low) / (2 * Z95)) ** 2
    alone = pilot_estimate(answers, k, weights)
    spread = alone.shares * (1 - alone.shares)
    sizes = np.where((spread > 0) & (variances > 0), spread / np.where(variances > 0, variances, 1), alone.effective_n)
    low, high = wilson(np.clip(shares, 0, 1), sizes)
    return Estimate("ppi", shares, low, high, effective_n(alone.shares, variances))


def effective_n(pilot_shares: np.ndarray, variances: np.ndarray) -> float | None:
    """How many pilot answers alone would give this estimate's total variance:
    sum_j p_j (1 - p_j) / sum_j Var_j, p the pilot's shares; None where either is zero."""
    spread, total = float((pilot_shares * (1 - pilot_shares)).sum()), float(np.sum(variances))
    return spread / total if spread > 0 and total > 0 else None


def slice_estimates(answers: np.ndarray, pilot: np.ndarray, unlabelled: np.ndarray,
                    weights: np.ndarray | None = None,
                    unlabelled_weights: np.ndarray | None = None) -> dict[str, Estimate]:
    """The estimates of one slice: `answers` are the pilot respondents' option indices,
    `pilot` and `unlabelled` the model's option probabilities (rows sum to 1) for the pilot
    respondents and the unlabelled personas; `weights` and `unlabelled_weights` their survey
    weights. Without a pilot answer in the slice there is only the model's."""
    pilot, unlabelled = np.asarray(pilot, dtype=float), np.asarray(unlabelled, dtype=float)
    if pilot.shape[0] != len(answers) or pilot.shape[1] != unlabelled.shape[1] or not len(unlabelled):
        raise ValueError("pilot probabilities need one row per pilot answer, and the unlabelled personas the "
                         "same options")
    model = model_estimate(unlabelled, unlabelled_weights)
    if not len(answers):
        return {"model": model}
    return {"pilot": pilot_estimate(answers, pilot.shape[1], weights), "model": model,
            "ppi": ppi_estimate(answers, pilot, unlabelled, weights, unlabelled_weights),
            "relevelled": relevelled_estimate(answers, pilot, unlabelled, weights, unlabelled_weights)}


def worth_sentence(pilot_n: int, estimate: Estimate | None, slice_name: str) -> str:
    """One plain sentence on what the model adds to the pilot (`estimate`: PPI's) for this slice."""
    if estimate is None or estimate.effective_n is None or pilot_n < MIN_PILOT:
        return f"Too few pilot answers in {slice_name} ({pilot_n}) to say what the model adds."
    extra = int(round(estimate.effective_n - pilot_n))
    if extra < 1:
        return f"With your {pilot_n} pilot answers in {slice_name}, the model adds nothing here."
    return (f"With your {pilot_n} pilot answers in {slice_name}, the model adds the equivalent of "
            f"{extra} more respondents.")


__all__ = ["Estimate", "METHODS", "MIN_PILOT", "slice_estimates", "pilot_estimate", "model_estimate",
           "ppi_estimate", "relevelled_estimate", "effective_n", "kish_n", "wilson", "worth_sentence"]
