"""Pilot + model: a slice's answer shares from a small real pilot, from the model, and from
both (prediction-powered inference), each with a 95% interval and an effective sample size.

The estimand is a slice's share of each option among the people the model's personas stand
for: the m unlabelled people (for a survey question, the slice's respondents outside the
pilot), whose own answers are the truth. For a slice with pilot answers Y (one-hot, n x k),
the model's probabilities for those pilot respondents F (n x k) and for the unlabelled
personas F~ (m x k), per option j:

- `pilot`: the pilot's weighted share, with Wilson's score interval (below).
- `model`: the mean of F~[:, j]; no sampling interval (it is a model, not a sample).
- `ppi`: PPI++ (Angelopoulos, Duchi and Zrnic 2023): theta = lam * mean(F~) + mean(Y - lam F),
  the point estimate from `ppi_py` at the power tuning lam = Cov(Y, F) / Var(F) (below),
  clipped to [0, 1], so a model without signal falls back to the pilot alone.
- `relevelled`: the model re-levelled to the pilot: factor_j = pilot share_j / mean(F[:, j])
  applied to every unlabelled persona's probabilities, which are then renormalised; a point
  estimate only.

The intervals are about the finite remainder, not an infinite population. For a fixed lam
and D = Y - lam f (f: the model's probability of option j; lam = 0 is the pilot alone),

    theta - truth = lam mean_rest(f) + mean_pilot(D) - mean_rest(Y) = mean_pilot(D) - mean_rest(D):

the model's mean over the remainder is known exactly and cancels, and what is left is how
the remainder's answers differ from lam f, a sample of m just as the pilot is one of n.
When the n + m people of the slice split at random into pilot and remainder (or are two
independent samples of one population) with S_D^2 the variance of D among them,

    Var(theta - truth) = S_D^2 (1/n + 1/m)

(for the random split: the pilot mean's finite-population variance (1 - n/M) S_D^2 / n, M =
n + m, times (M/m)^2, since mean_pilot - mean_rest = (M/m)(mean_pilot - mean_slice)). That is
the textbook S_D^2 / n times (1 + n/m): a 400-person pilot beside a remainder of 100 is five
times less certain about the remainder than about an infinite population. PPI++'s variance
lam^2 Var(f) / N + Var(D) / n is about the population mean; about the remainder its model
term becomes Var(D) / m (the remainder's answers around lam f, not the model's mean, are
unknown), and the lam minimising S_D^2 (1/n + 1/m) is Cov(Y, f) / Var(f), without PPI++'s
(1 + n/N) factor. Here Cov(Y, f) is the pilot's weighted covariance, Var(f) the weighted
variance of f over pilot and unlabelled personas (each set's weights scaled to mean 1),
S_D^2 the pilot's weighted variance of D, and n, m the Kish sizes (sum w)^2 / sum w^2 of the
pilot's and the remainder's weights. `remainder=inf` gives the infinite-population interval.

Each interval is Wilson's score interval at the option's effective size p (1 - p) / Var(theta)
(p the pilot's share; 1 / (1/n + 1/m) for the pilot alone, and for PPI where that is 0/0),
centred on the estimate: asymptotically the normal interval, and the pilot's own interval
when lam is 0. The normal interval covers badly on slices with a handful of pilot answers
(it has zero width when they all answer alike), and slices are where a pilot is thinnest.

Effective sample size: the pilot's Kish size n times the pilot alone's total variance over
PPI's, n sum_j p_j (1 - p_j) / sum_j S_Dj^2 (the factor 1/n + 1/m is common to both and
cancels): how many equally weighted pilot answers the estimate is worth; the pilot alone's
is its Kish size, so a model without signal (lam = 0) is worth exactly the pilot. With fewer
than MIN_PILOT pilot answers in the slice no interval is given. Weights must be finite,
non-negative and not all zero (FocusgroupError otherwise).

    from engine.pilot import slice_estimates
    estimates = slice_estimates(answers, pilot_probabilities, unlabelled_probabilities)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import FocusgroupError

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


def checked_weights(weights: np.ndarray | None, n: int, whose: str) -> np.ndarray:
    """`weights` as floats (ones when None), refused unless finite, non-negative and not all
    zero: weights summing to zero leave every share 0 / 0."""
    if weights is None:
        return np.ones(n)
    weights = np.asarray(weights, dtype=float)
    if len(weights) != n:
        raise ValueError(f"{whose}: {len(weights)} weights for {n} rows")
    if n and (not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0):
        raise FocusgroupError(f"The weights of {whose} must be finite numbers, zero or positive, and not all zero; "
                              "give the people of the slice a positive weight.")
    return weights


def kish_n(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted data: (sum w)^2 / sum w^2."""
    weights = np.asarray(weights, dtype=float)
    return float(weights.sum() ** 2 / np.square(weights).sum())


def weighted_variance(values: np.ndarray, weights: np.ndarray) -> float:
    """sum_i w_i (x_i - x_w)^2 / sum_i w_i, x_w the weighted mean (p (1 - p) for 0/1 values)."""
    mean = np.average(values, weights=weights)
    return float(np.average(np.square(values - mean), weights=weights))


def wilson(share: np.ndarray, n: float, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial shares at sample size n (may be fractional)."""
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def interval_size(pilot_kish: float, remainder: float) -> float:
    """1 / (1/n + 1/m): the size at which a share's binomial variance p (1 - p) / size is the
    variance of the pilot's share about the remainder's (module docstring)."""
    return 1.0 / (1.0 / pilot_kish + 1.0 / remainder)


def pilot_estimate(answers: np.ndarray, k: int, weights: np.ndarray | None = None,
                   remainder: float = math.inf) -> Estimate:
    """The pilot alone: weighted shares with Wilson intervals at 1 / (1/n + 1/m), n the
    pilot's Kish size and m = `remainder` the Kish size of the people whose shares are
    estimated (inf: a population far larger than the pilot); its effective size is n."""
    weights = checked_weights(weights, len(answers), "the pilot")
    shares = (one_hot(answers, k) * weights[:, None]).sum(0) / weights.sum()
    n = kish_n(weights)
    if len(answers) < MIN_PILOT:
        return Estimate("pilot", shares, None, None, None)
    low, high = wilson(shares, interval_size(n, remainder))
    return Estimate("pilot", shares, low, high, n)


def model_estimate(unlabelled: np.ndarray, weights: np.ndarray | None = None) -> Estimate:
    """The model alone: the personas' mean probabilities, without a sampling interval."""
    weights = checked_weights(weights, len(unlabelled), "the unlabelled personas")
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
    return Estimate("relevelled", model_estimate(adjusted, unlabelled_weights).shares, None, None, None)


def power_tuning(labels: np.ndarray, predicted: np.ndarray, unlabelled: np.ndarray, weights: np.ndarray,
                 unlabelled_weights: np.ndarray) -> float:
    """lam = Cov(Y, f) / Var(f) clipped to [0, 1], the lam that minimises the variance about
    the remainder (module docstring): Cov on the pilot, Var over pilot and unlabelled
    predictions, each set's weights scaled to mean 1; 0 when the predictions do not vary
    (a prediction without variance carries no signal)."""
    pooled = np.concatenate([predicted, unlabelled])
    pooled_weights = np.concatenate([weights / weights.mean(), unlabelled_weights / unlabelled_weights.mean()])
    spread = weighted_variance(pooled, pooled_weights)
    if spread < 1e-12:
        return 0.0
    covariance = np.average((labels - np.average(labels, weights=weights))
                            * (predicted - np.average(predicted, weights=weights)), weights=weights)
    return float(np.clip(covariance / spread, 0.0, 1.0))


def ppi_estimate(answers: np.ndarray, pilot: np.ndarray, unlabelled: np.ndarray,
                 weights: np.ndarray | None = None, unlabelled_weights: np.ndarray | None = None) -> Estimate:
    """PPI++ per option about the unlabelled remainder (module docstring): lam from
    `power_tuning`, the point estimate from `ppi_py` at that lam, Var = S_D^2 (1/n + 1/m), and
    Wilson's interval at the effective size p (1 - p) / Var."""
    from ppi_py import ppi_mean_pointestimate

    k = pilot.shape[1]
    if len(answers) < MIN_PILOT:
        return Estimate("ppi", model_estimate(unlabelled, unlabelled_weights).shares, None, None, None)
    labels = one_hot(answers, k)
    weights = checked_weights(weights, len(answers), "the pilot")
    unlabelled_weights = checked_weights(unlabelled_weights, len(unlabelled), "the unlabelled personas")
    shares, spreads = np.empty(k), np.empty(k)
    for j in range(k):
        lam = power_tuning(labels[:, j], pilot[:, j], unlabelled[:, j], weights, unlabelled_weights)
        shares[j] = float(np.squeeze(ppi_mean_pointestimate(labels[:, j], pilot[:, j], unlabelled[:, j], lam=lam,
                                                            w=weights, w_unlabeled=unlabelled_weights)))
        spreads[j] = weighted_variance(labels[:, j] - lam * pilot[:, j], weights)
    pilot_kish = kish_n(weights)
    size = interval_size(pilot_kish, kish_n(unlabelled_weights))
    alone = pilot_estimate(answers, k, weights).shares
    binomial = alone * (1 - alone)
    variances = spreads / size
    sizes = np.where((binomial > 0) & (variances > 0), binomial / np.where(variances > 0, variances, 1), size)
    low, high = wilson(np.clip(shares, 0, 1), sizes)
    return Estimate("ppi", shares, low, high, effective_n(pilot_kish, alone, spreads))


def effective_n(pilot_kish: float, pilot_shares: np.ndarray, spreads: np.ndarray) -> float | None:
    """How many equally weighted pilot answers the estimate is worth: the pilot's Kish size
    times sum_j p_j (1 - p_j) / sum_j S_Dj^2 (p the pilot's shares, S_Dj^2 the variance of
    Y_j - lam_j f_j); None where either sum is zero."""
    binomial, total = float((pilot_shares * (1 - pilot_shares)).sum()), float(np.sum(spreads))
    return pilot_kish * binomial / total if binomial > 0 and total > 0 else None


def slice_estimates(answers: np.ndarray, pilot: np.ndarray, unlabelled: np.ndarray,
                    weights: np.ndarray | None = None,
                    unlabelled_weights: np.ndarray | None = None) -> dict[str, Estimate]:
    """The estimates of one slice: `answers` are the pilot respondents' option indices,
    `pilot` and `unlabelled` the model's option probabilities (rows sum to 1) for the pilot
    respondents and the unlabelled personas; `weights` and `unlabelled_weights` their survey
    weights. The intervals are about the unlabelled people's own shares. Without a pilot
    answer in the slice there is only the model's."""
    pilot, unlabelled = np.asarray(pilot, dtype=float), np.asarray(unlabelled, dtype=float)
    if pilot.shape[0] != len(answers) or pilot.shape[1] != unlabelled.shape[1] or not len(unlabelled):
        raise ValueError("pilot probabilities need one row per pilot answer, and the unlabelled personas the "
                         "same options")
    model = model_estimate(unlabelled, unlabelled_weights)
    if not len(answers):
        return {"model": model}
    remainder = kish_n(checked_weights(unlabelled_weights, len(unlabelled), "the unlabelled personas"))
    return {"pilot": pilot_estimate(answers, pilot.shape[1], weights, remainder), "model": model,
            "ppi": ppi_estimate(answers, pilot, unlabelled, weights, unlabelled_weights),
            "relevelled": relevelled_estimate(answers, pilot, unlabelled, weights, unlabelled_weights)}


def worth_sentence(pilot_n: int, estimate: Estimate | None, slice_name: str,
                   pilot_effective_n: float | None = None) -> str:
    """One plain sentence on what the model adds to the pilot (`estimate`: PPI's) for this
    slice: its effective size minus the pilot's own (`pilot_effective_n`, the pilot's Kish
    size; `pilot_n` when None, an unweighted pilot)."""
    if estimate is None or estimate.effective_n is None or pilot_n < MIN_PILOT:
        return f"Too few pilot answers in {slice_name} ({pilot_n}) to say what the model adds."
    extra = int(round(estimate.effective_n - (pilot_n if pilot_effective_n is None else pilot_effective_n)))
    if extra < 1:
        return f"With your {pilot_n} pilot answers in {slice_name}, the model adds nothing here."
    return (f"With your {pilot_n} pilot answers in {slice_name}, the model adds the equivalent of "
            f"{extra} more respondents.")


__all__ = ["Estimate", "METHODS", "MIN_PILOT", "slice_estimates", "pilot_estimate", "model_estimate",
           "ppi_estimate", "relevelled_estimate", "power_tuning", "effective_n", "kish_n", "wilson",
           "worth_sentence"]
