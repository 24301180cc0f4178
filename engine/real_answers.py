"""The real answers a simulated slice is read against: who answered, their distribution.

`simulate` and `simulate_by_generation` (`engine.simulate`) compare a simulated slice with
the answers its real respondents gave. This module decides which answers those are and
whether there are any:

- `is_in_survey`: a question the survey asked (same id and content) has real answers; a new
  product question has none;
- `scorable`: answers can be scored when someone answered with a positive survey weight;
- `real_answers`: the slice's weighted answer distribution, from every respondent of the
  slice or only the drawn personas, with the count and Kish's effective sample size that
  the noise floor needs.

It reads the survey and nothing else (no model). Checked by `tests/test_simulate.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.metrics import answer_distribution, effective_sample_size
from engine.slices import Slice, slice_index, slice_weights
from engine.surveys.model import MISSING, Question, Survey


def is_in_survey(survey: Survey, question: Question) -> bool:
    """Whether `question` is one of the survey's (same id and content), not a new one."""
    return any(known.id == question.id and known == question for known in survey.questions)


def scorable(answers: np.ndarray | None, weights: np.ndarray) -> bool:
    """Whether per-persona answers can be scored: some answered, with positive weight."""
    if answers is None:
        return False
    answered = answers != MISSING
    return bool(answered.any()) and float(weights[answered].sum()) > 0


@dataclass(frozen=True)
class RealAnswers:
    """The real distribution a simulation is read against, and who gave it."""

    distribution: np.ndarray
    n: int  # respondents who answered
    effective_n: float  # Kish's effective size of their weights: the noise floor's sample size
    source: str  # "slice" (every respondent of it) or "drawn personas"


def real_answers(survey: Survey, question: Question, filters: Slice, index: pd.Index, weights: np.ndarray,
                 from_drawn: bool, n_slice: int) -> RealAnswers | None:
    """The slice's real answers to `question`: every respondent of the slice, or with
    `from_drawn` only the drawn personas (`index`, `weights`); None when nobody there answered
    with a positive weight. Drawn personas that are the whole slice (`n_slice`) are the slice."""
    if not from_drawn:
        index = slice_index(survey, filters)
        weights = slice_weights(survey, index, filters)
    answers = survey.answers.loc[index, question.id].to_numpy()
    if not scorable(answers, weights):
        return None
    answered = answers != MISSING
    source = "slice" if len(index) == n_slice else "drawn personas"
    return RealAnswers(answer_distribution(answers, len(question.options), weights), int(answered.sum()),
                       effective_sample_size(weights[answered]), source)


__all__ = ["RealAnswers", "is_in_survey", "real_answers", "scorable"]
