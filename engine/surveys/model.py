"""The in-memory model of a survey, shared by every loader.

A `Survey` holds one row per respondent. Demographic fields are ordered pandas
categoricals whose categories are readable labels ("30-44", "Strong democrat"); answers
are option indices (0..k-1, -1 for missing) so that metrics and models work on plain
integer arrays. Loaders (`engine.surveys.spec`) build it; nothing here reads files.

A scale question (ordinal or numeric) says which end of its listed options is favourable
(`positive`, the "top box") and may hold off-scale options ("Don't know", "I do not expect
to buy a car"): those keep their share of the answers but have no position on the scale
(their value is NaN), so means, Wasserstein distances and RMSE leave them out.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError

QuestionType = Literal["ordinal", "nominal", "numeric"]
QUESTION_TYPES = ("ordinal", "nominal", "numeric")
POSITIVE_ENDS = ("first", "last")
DEFAULT_POSITIVE = "first"  # why: see `Question`
# One NaN object for every off-scale value: NaN != NaN, but tuples compare items by identity
# first, so two equal questions with off-scale options still compare (and hash) equal.
OFF_SCALE_VALUE = float("nan")
MISSING = -1


@dataclass(frozen=True)
class Option:
    """One answer option: the codes that stand for it in the data, a readable label, and
    its position on the scale (1..m over the on-scale options of an ordinal question, the
    number itself for numeric). An off-scale option ("Don't know") has no position: its
    value is NaN whatever was passed."""

    codes: tuple[str, ...]
    label: str
    value: float
    off_scale: bool = False

    def __post_init__(self):
        if self.off_scale:
            object.__setattr__(self, "value", OFF_SCALE_VALUE)


@dataclass(frozen=True)
class Question:
    """A survey question with its exact wording and ordered options.

    `positive` names the favourable end of a scale question's listed options, "first" or
    "last"; the top box is the on-scale option at that end. The default is "first"
    (DEFAULT_POSITIVE): questionnaires usually list the favourable answer first (the GSS
    spending items' "Too little", non-voters' "Very important" and "Strongly agree", the
    dashboard's new product questions' "Very likely"), and the dashboard's top-2 box has
    always counted from the first option; scales listed the other way round (food-world-
    cup's "1 - I hate it" .. "5 - I love it") say `positive = "last"` in their spec.
    Nominal questions have no ends and no off-scale options.
    """

    id: str
    text: str
    type: QuestionType
    options: tuple[Option, ...]
    positive: str = DEFAULT_POSITIVE

    def __post_init__(self):
        if self.type not in QUESTION_TYPES:
            raise FocusgroupError(
                f"Question {self.id!r} has type {self.type!r}; use one of {', '.join(QUESTION_TYPES)}."
            )
        if len(self.options) < 2:
            raise FocusgroupError(f"Question {self.id!r} needs at least two answer options.")
        labels = [option.label for option in self.options]
        if len(set(labels)) != len(labels):
            raise FocusgroupError(f"Question {self.id!r} repeats an option label: {labels}.")
        if self.positive not in POSITIVE_ENDS:
            raise FocusgroupError(
                f"Question {self.id!r} has positive = {self.positive!r}; use \"first\" or \"last\" (the end of "
                "the listed options that is favourable)."
            )
        off_scale = [option.label for option in self.options if option.off_scale]
        if off_scale and not self.is_scale:
            raise FocusgroupError(
                f"Question {self.id!r} is nominal, so it has no scale to keep {off_scale[0]!r} off; remove "
                "`off_scale` or make the question ordinal."
            )
        if self.is_scale and len(self.options) - len(off_scale) < 2:
            raise FocusgroupError(
                f"Question {self.id!r} has {len(self.options) - len(off_scale)} option(s) on its scale; at least "
                "two must not be off-scale."
            )

    @property
    def labels(self) -> list[str]:
        return [option.label for option in self.options]

    @property
    def values(self) -> np.ndarray:
        """Each option's position on the scale, NaN for off-scale options."""
        return np.array([option.value for option in self.options], dtype=float)

    @property
    def on_scale(self) -> np.ndarray:
        """True for the options that have a position on the scale (all of a nominal question's)."""
        return np.array([not option.off_scale for option in self.options])

    @property
    def off_scale_labels(self) -> list[str]:
        return [option.label for option in self.options if option.off_scale]

    @property
    def positive_index(self) -> int | None:
        """The top box: the on-scale option at the `positive` end (None for nominal questions)."""
        if not self.is_scale:
            return None
        positions = np.flatnonzero(self.on_scale)
        return int(positions[0] if self.positive == "first" else positions[-1])

    @property
    def is_scale(self) -> bool:
        """True when options are ordered on a numeric scale (distances are meaningful)."""
        return self.type in ("ordinal", "numeric")

    def option_index(self, label: str) -> int:
        """The index of the option whose label matches `label`, ignoring case."""
        wanted = label.strip().casefold()
        for index, option in enumerate(self.options):
            if option.label.casefold() == wanted:
                return index
        raise FocusgroupError(
            f"Question {self.id!r} has no option {label!r}; options are: {', '.join(self.labels)}."
        )


@dataclass(frozen=True)
class DemographicField:
    """A demographic field with its ordered, readable values (banded where numeric)."""

    name: str
    label: str
    values: tuple[str, ...]


@dataclass
class Survey:
    """Respondents, their demographics and answers, and where the data came from.

    `demographics` has one ordered categorical column per field (NaN where unknown);
    `answers` has one int16 column per question holding option indices, -1 for missing;
    `weights` is None for unweighted surveys. All three share the respondent index.
    """

    id: str
    title: str
    description: str
    source: str
    license: str
    fields: tuple[DemographicField, ...]
    questions: tuple[Question, ...]
    demographics: pd.DataFrame
    answers: pd.DataFrame
    weights: pd.Series | None = None
    held_out: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self):
        if len(self.demographics) == 0:
            raise FocusgroupError(f"Survey {self.id!r} has no respondents.")
        if not self.demographics.index.equals(self.answers.index):
            raise ValueError("demographics and answers must share the respondent index")
        for name, questions in self.held_out.items():
            for question_id in questions:
                self.question(question_id)

    @property
    def n_respondents(self) -> int:
        return len(self.demographics)

    @property
    def provenance(self) -> str:
        """One line to show wherever the data is shown."""
        return f"{self.source} Licence: {self.license}"

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        for question in self.questions:
            if question.id.casefold() == question_id.casefold():
                return question
        ids = [q.id for q in self.questions]
        close = difflib.get_close_matches(question_id, ids, n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise FocusgroupError(
            f"Survey {self.id!r} has no question {question_id!r}; {hint}"
            f"run `focusgroup questions --survey {self.id}` to list all {len(ids)}."
        )

    def field(self, name: str) -> DemographicField:
        for demographic in self.fields:
            if demographic.name.casefold() == name.strip().casefold():
                return demographic
        raise FocusgroupError(
            f"Survey {self.id!r} has no demographic field {name!r}; fields are: "
            f"{', '.join(f.name for f in self.fields)}."
        )

    def answer_codes(self, question_id: str) -> np.ndarray:
        """Option indices of every respondent for one question (-1 = missing)."""
        return self.answers[self.question(question_id).id].to_numpy()

    def weight_array(self, index: pd.Index | None = None) -> np.ndarray:
        """Survey weights (ones when the survey is unweighted) for `index` or everyone."""
        rows = self.demographics.index if index is None else index
        if self.weights is None:
            return np.ones(len(rows))
        return self.weights.loc[rows].to_numpy(dtype=float)
