"""The training loss: cross-entropy on the answer plus the numeric-distance term.

For one example with k options, let

    a_j   = log P(option j's answer tokens | prompt), over the full vocabulary
            (`engine.scoring.batch_option_logprobs`), t the true option,
    p_j   = softmax(a)_j, the answer distribution among the options,
    v_j   = the options' scale positions, D > 0 the width,
    w_j   = max(0, 1 - |v_j - v_t| / D), 1 at the true answer, 0 at distance D and beyond
            (and 0 for an off-scale option, which has no position, unless it is the answer).

Then

    CE    = -a_t                         (the true answer's tokens, full vocabulary)
    NUM   = -log( sum_j w_j p_j )        (probability mass near the true answer)
    loss  = CE + W * NUM                 (NUM only for ordinal and numeric questions)

W = 0 is plain cross-entropy. NUM is 0 when all the mass sits within the kernel's peak,
and it rewards an answer one step off more than one three steps off, which plain
cross-entropy does not (the paper's numeric-distance objective). As D shrinks below the
gap between options, NUM becomes the cross-entropy among the options.
"""

from __future__ import annotations

import torch


def distance_weights(values: torch.Tensor, targets: torch.Tensor, width: float) -> torch.Tensor:
    """w[i, j] = max(0, 1 - |v_j - v_{t_i}| / width), shape [batch, k]. An off-scale option
    (value NaN, "Don't know") is near nothing but itself: w = 1 at the true answer, else 0."""
    if width <= 0:
        raise ValueError("the numeric loss width must be positive")
    distance = (values[None, :] - values[targets][:, None]).abs()
    weights = torch.nan_to_num((1.0 - distance / width).clamp(min=0.0), nan=0.0)
    weights[torch.arange(len(targets)), targets] = 1.0
    return weights


def answer_loss(
    option_logprobs: torch.Tensor,
    targets: torch.Tensor,
    values: torch.Tensor | None,
    numeric_weight: float,
    numeric_width: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean loss over the batch, and its parts for logging.

    option_logprobs: [batch, k] log-probabilities of each option's answer tokens.
    targets: [batch] true option indices. values: [k] scale positions, or None for nominal.
    """
    cross_entropy = -option_logprobs.gather(1, targets[:, None]).squeeze(1)
    loss = cross_entropy
    parts = {"cross_entropy": float(cross_entropy.detach().mean())}
    if values is not None and numeric_weight > 0:
        option_distribution = torch.log_softmax(option_logprobs, dim=1)
        weights = distance_weights(values.to(option_logprobs.dtype), targets, numeric_width)
        numeric = -torch.logsumexp(option_distribution + weights.clamp(min=1e-12).log(), dim=1)
        loss = loss + numeric_weight * numeric
        parts["numeric"] = float(numeric.detach().mean())
    return loss.mean(), parts
