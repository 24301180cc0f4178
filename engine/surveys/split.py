"""Respondent-level train/validation/test splits and named held-out question sets.

Splitting by respondent (never by answer) keeps every answer of one person in one split,
so a model is never evaluated on a person whose other answers it was trained on. The split
depends only on the survey's respondent ids and the seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.surveys.model import Survey

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
DEFAULT_SEED = 0


def split_respondents(survey: Survey, seed: int = DEFAULT_SEED) -> pd.Series:
    """A label ("train" / "validation" / "test") per respondent, in the ratio 8:1:1.

    Respondents are sorted by id before shuffling, so the split does not depend on the
    order of rows in the file.
    """
    ids = survey.demographics.index
    order = np.argsort(ids.astype(str).to_numpy(), kind="stable")
    shuffled = order[np.random.default_rng(seed).permutation(len(ids))]
    n_train = int(round(SPLIT_FRACTIONS[0] * len(ids)))
    n_validation = int(round(SPLIT_FRACTIONS[1] * len(ids)))
    labels = np.empty(len(ids), dtype=object)
    labels[shuffled[:n_train]] = "train"
    labels[shuffled[n_train:n_train + n_validation]] = "validation"
    labels[shuffled[n_train + n_validation:]] = "test"
    return pd.Series(labels, index=ids, name="split")


def split_index(survey: Survey, split: str, seed: int = DEFAULT_SEED) -> pd.Index:
    """The respondent ids in one split ("all" gives everyone)."""
    if split == "all":
        return survey.demographics.index
    if split not in SPLITS:
        raise FocusgroupError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)} or all.")
    labels = split_respondents(survey, seed)
    return labels.index[labels.to_numpy() == split]


def held_out_questions(survey: Survey, name: str = "default") -> tuple[str, ...]:
    """The named set of questions never used in training (empty when the survey has none)."""
    if name not in survey.held_out:
        if name == "default":
            return ()
        raise FocusgroupError(
            f"Survey {survey.id!r} has no held-out set {name!r}; sets: {', '.join(survey.held_out) or 'none'}."
        )
    return survey.held_out[name]
