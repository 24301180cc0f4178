"""The distribution-level objective: SubPOP's forward KL on the personas actually scored.

For a question and a single-field slice S of the train split (one value of one demographic
field, at least `min_slice_respondents` train respondents who answered it), let

    p_j   = the slice's real share of option j: survey-weighted, over every train
            respondent of S who answered (`engine.metrics.answer_distribution`),
    a_ij  = persona i's option log-probabilities (`engine.scoring`), for the n personas of
            S scored in the step (drawn with the step's seed), with survey weights w_i,
    q_ij  = softmax_j(a_i)_j, persona i's distribution among the options,
    q_j   = sum_i w_i q_ij / sum_i w_i, the slice's predicted distribution (the weighted mean
            of its personas', as `engine.simulate` forms a slice's answer);

    KL    = sum_j p_j (log p_j - log q_j)     (forward KL(p || q), terms with p_j = 0 are 0)

and a step's loss, with L = `distribution_loss_weight`,

    loss  = mean_b [ CE_b + W * NUM_b ]  +  L * KL

where the first term is the per-respondent answer loss of the step's batch
(`engine.training.loss`) and KL is that of one slice of the same question, drawn at random
among the question's slices. The slice's personas join the batch in the same forward pass
(the question is in the shared prompt prefix, which runs once), so the term costs the
slice's persona tokens only. L = 0 scores no slice: exactly the per-respondent loss.

KL is minimised, for fixed p, by q = p: the scored personas must average to the slice's real
answers, which cross-entropy on single answers asks only on average over many steps, and
which rewards differences between slices directly. Validation stays the per-respondent
loss, comparable across values of L.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.metrics import answer_distribution
from engine.simulate import personas_for
from engine.slices import describe_slice
from engine.surveys.model import MISSING, Question, Survey
from engine.surveys.split import split_index
from engine.training.config import TrainConfig
from engine.training.examples import Batch, SliceDraw
from engine.training.loss import answer_loss


def distribution_loss(option_logprobs: torch.Tensor, weights: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KL(p || q) for one slice: option_logprobs [n, k] of its n personas, weights [n] their
    survey weights, target [k] the real distribution p (see the module docstring)."""
    persona_distributions = torch.softmax(option_logprobs, dim=1)
    weights = weights.to(persona_distributions.dtype)
    predicted = (weights[:, None] * persona_distributions).sum(dim=0) / weights.sum()
    target = target.to(predicted.dtype)
    present = target > 0
    return (target[present] * (target[present].log() - predicted[present].clamp(min=1e-12).log())).sum()


def step_loss(option_logprobs: torch.Tensor, batch: Batch, question: Question,
              config: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one step and its parts for logging: the answer loss (CE + W x NUM) of the
    batch's examples, whose rows come first in `option_logprobs`, plus L x KL of its slice's
    personas, the rows after them, when the batch has a slice."""
    answered = len(batch.examples)
    device = option_logprobs.device
    targets = torch.tensor([example.target for example in batch.examples], device=device)
    values = torch.tensor(question.values, device=device) if question.is_scale else None
    loss, parts = answer_loss(option_logprobs[:answered], targets, values, config.numeric_loss_weight,
                              config.numeric_loss_width)
    if batch.slice is not None:
        divergence = distribution_loss(option_logprobs[answered:], torch.tensor(batch.slice.weights, device=device),
                                       torch.tensor(batch.slice.target, device=device))
        loss = loss + config.distribution_loss_weight * divergence
        parts["distribution"] = float(divergence.detach())
    return loss, parts


class SliceTargets:
    """The train split's single-field slices of each trained question: the respondents who
    answered, their personas and weights, and the real distribution. Built once per run;
    `draw` picks one slice of a question and personas from it."""

    def __init__(self, surveys: dict[str, Survey], held_out: dict[str, tuple[str, ...]], split_seed: int,
                 min_respondents: int):
        self.slices: dict[tuple[str, str], list[tuple[str, list[str], np.ndarray, np.ndarray]]] = {}
        for survey in surveys.values():
            index = split_index(survey, "train", split_seed)
            weights = survey.weight_array(index)
            index, weights = index[weights > 0], weights[weights > 0]  # weight 0 carries no answer
            personas = np.array(personas_for(survey, index), dtype=object)
            demographics = survey.demographics.loc[index]
            groups = [(describe_slice({field.name: (value,)}), demographics[field.name].to_numpy() == value)
                      for field in survey.fields for value in field.values]
            for question in survey.questions:
                if question.id in held_out[survey.id]:
                    continue
                answers = survey.answers.loc[index, question.id].to_numpy()
                found = []
                for description, in_group in groups:
                    members = in_group & (answers != MISSING)
                    if members.sum() >= min_respondents:
                        target = answer_distribution(answers[members], len(question.options), weights[members])
                        found.append((description, list(personas[members]), weights[members], target))
                if found:
                    self.slices[(survey.id, question.id)] = found

    def draw(self, survey_id: str, question_id: str, size: int, rng: np.random.Generator) -> SliceDraw | None:
        """One slice of the question, chosen uniformly, and up to `size` of its personas drawn
        without replacement; None when the question has no slice large enough."""
        found = self.slices.get((survey_id, question_id))
        if not found:
            return None
        description, personas, weights, target = found[int(rng.integers(len(found)))]
        chosen = np.sort(rng.choice(len(personas), size=min(size, len(personas)), replace=False))
        return SliceDraw(description, tuple(personas[i] for i in chosen), tuple(float(weights[i]) for i in chosen),
                         tuple(float(share) for share in target))
