"""Who is in a simulated slice: the respondents drawn as personas and their persona texts.

`simulate` and `simulate_by_generation` (`engine.simulate`) both start here: the slice's
respondents (all of them, or N drawn with a seeded generator), their survey weights, and
their persona texts (twins carrying their answers to context questions, `engine.twins`),
checked to fit the model's context window before any model call. `personas_for` is the
plain demographic persona that training, benchmarks and tests render as well.

Checked by `tests/test_simulate.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.models import LoadedModel
from engine.prompts import check_prompt_fits
from engine.slices import Slice, describe_slice, slice_index, slice_weights
from engine.surveys.model import Question, Survey
from engine.twins import twin_personas
from engine.validation import check_range


def personas_for(survey: Survey, index: pd.Index) -> list[str]:
    """Persona texts for the respondents in `index`, in order (demographics only)."""
    return twin_personas(survey, index, ())


def choose_personas(survey: Survey, filters: Slice, n_personas: int | None, rng: np.random.Generator) -> pd.Index:
    """The slice's respondents, or `n_personas` of them drawn without replacement (all of
    them when the slice has no more)."""
    if n_personas is not None:
        check_range(n_personas, "The number of personas (--personas)", low=1)
    index = slice_index(survey, filters)
    if len(index) == 0:
        raise FocusgroupError(
            f"No respondent of {survey.id!r} is in the slice ({describe_slice(filters)}); widen it."
        )
    if n_personas is not None and n_personas < len(index):
        index = index[np.sort(rng.choice(len(index), size=n_personas, replace=False))]
    return index


def slice_personas(
    loaded: LoadedModel, survey: Survey, question: Question, filters: Slice, n_personas: int | None,
    stimulus: str | None, rng: np.random.Generator, reply_tokens: int = 0, context: Sequence[str] = (),
) -> tuple[pd.Index, np.ndarray, list[str]]:
    """Who is in the slice: their index, weights and persona texts (twins carrying their
    answers to the `context` questions, `engine.twins`), checked to fit the model's context
    with the stimulus and `reply_tokens` to generate."""
    index = choose_personas(survey, filters, n_personas, rng)
    personas = twin_personas(survey, index, context, question)
    check_prompt_fits(loaded.tokenizer, loaded.context_length, question, survey.fields, personas, stimulus,
                      reply_tokens)
    return index, slice_weights(survey, index, filters), personas


__all__ = ["choose_personas", "personas_for", "slice_personas"]
