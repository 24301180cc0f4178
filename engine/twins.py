"""Twins: personas that carry a respondent's own answers to other questions of the survey.

A demographic line alone moves a small model little; a panel also knows how each person
answered the survey's other questions. A twin is the persona followed by up to K of those
answers (`engine.prompts.context_line`), which the model reads before answering the asked
question.

Which questions make the context:

- the analyst names them (`--context-questions q1 q2 ...`, the dashboard's multiselect), or
- `auto`: the K questions whose wording is most like the asked question's, by TF-IDF cosine
  similarity of the question texts over character 3- to 5-grams within words (so "cat" and
  "cats", "pet" and "pets" match, which word counts would miss).
  Only texts are read, never anyone's answers to the asked question, so `auto` works for a
  new product question too; ties keep the survey's order.

Never in the context: the asked question itself (it would hand the model the answer) and
any question in `excluded` (the held-out questions of an adapter, which neither training
nor evaluation may show). A respondent who did not answer a context question simply has
no line for it.

    .venv/bin/python -m pytest -q tests/test_twins.py
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.prompts import context_line, render_persona, render_twin
from engine.surveys.model import MISSING, Question, Survey

AUTO = "auto"
AUTO_K = 5  # context answers `auto` takes when no number is given
MAX_CONTEXT = 20


def similar_questions(survey: Survey, asked: Question, candidates: Sequence[str]) -> list[str]:
    """`candidates` (question ids) ordered by the TF-IDF cosine similarity of their text to
    the asked question's, most similar first; ties keep the given order."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not candidates:
        return []
    texts = [asked.text] + [survey.question(question_id).text for question_id in candidates]
    try:
        vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit_transform(texts)
    except ValueError:  # no text has a word of three letters: nothing to rank by
        return list(candidates)
    similarity = (vectors[1:] @ vectors[0].T).toarray().ravel()
    return [candidates[i] for i in np.argsort(-similarity, kind="stable")]


def choose_context(survey: Survey, asked: Question, chosen: str | Sequence[str] | None, k: int | None = None,
                   excluded: Collection[str] = ()) -> tuple[str, ...]:
    """The ids of the context questions for `asked`: `chosen` names them (None or [] = none)
    or is AUTO for the `k` most similar; the asked question and `excluded` never enter.
    Named questions keep their order; `k` also caps a named list."""
    if k is not None and not 0 <= k <= MAX_CONTEXT:
        raise FocusgroupError(f"The number of context answers must be between 0 and {MAX_CONTEXT}; got {k}.")
    if not chosen:
        return ()
    forbidden = {asked.id, *excluded}
    if chosen == AUTO or (not isinstance(chosen, str) and list(chosen) == [AUTO]):
        candidates = [q.id for q in survey.questions if q.id not in forbidden]
        return tuple(similar_questions(survey, asked, candidates)[: AUTO_K if k is None else k])
    names = [chosen] if isinstance(chosen, str) else list(chosen)
    known = {question.id for question in survey.questions}
    for name in names:
        if name not in known:
            raise FocusgroupError(
                f"Context question {name!r} is not in survey {survey.id!r}; choose among "
                f"{', '.join(sorted(known))}, or pass `auto`."
            )
        if name == asked.id:
            raise FocusgroupError(f"Question {name!r} is the one being asked; it cannot be its own context.")
        if name in excluded:
            raise FocusgroupError(
                f"Question {name!r} was held out of this model's training; it cannot be shown as context."
            )
    unique = list(dict.fromkeys(names))
    return tuple(unique if k is None else unique[:k])


def twin_personas(survey: Survey, index: pd.Index, context: Sequence[str], asked: Question | None = None) -> list[str]:
    """Persona texts for the respondents in `index`, each with their answers to the
    `context` questions (in that order; unanswered ones left out), worded for the `asked`
    question (`engine.prompts.context_line`)."""
    rows = survey.demographics.loc[index]
    personas = [render_persona(survey.fields, row) for _, row in rows.iterrows()]
    if not context:
        return personas
    questions = [survey.question(question_id) for question_id in context]
    answers = survey.answers.loc[index, list(context)].to_numpy()
    return [render_twin(persona, [context_line(question, int(answer), asked)
                                  for question, answer in zip(questions, row) if answer != MISSING])
            for persona, row in zip(personas, answers)]


def describe_context(context: Sequence[str]) -> str:
    """A short label for charts and tables: "no context answers" or "context: q1, q2"."""
    if not context:
        return "no context answers"
    return f"context ({len(context)}): {', '.join(context)}"


class TrainingContexts:
    """Context answers for training examples, so that one adapter serves plain personas and
    twins alike: each batch gets K context answers per example, K drawn uniformly from 0 to
    `max_context` once per batch (so a batch pads to its own K, not to the largest); for each
    example, half the time the K questions most similar to the asked one (as `auto` picks
    them), otherwise K drawn at random (as an analyst might pick them). Held-out
    questions and the asked question are never drawn. The respondent's own answers fill
    the lines, unanswered ones left out."""

    def __init__(self, surveys: dict[str, Survey], held_out: dict[str, tuple[str, ...]], max_context: int):
        self.surveys, self.held_out, self.max_context = surveys, held_out, max_context
        self.rows = {survey_id: {str(label): row for row, label in enumerate(survey.answers.index)}
                     for survey_id, survey in surveys.items()}
        self.ranked: dict[tuple[str, str], list[str]] = {}

    def candidates(self, survey_id: str, asked: Question) -> list[str]:
        """The questions that may be shown as context, most similar to the asked one first."""
        key = (survey_id, asked.id)
        if key not in self.ranked:
            survey = self.surveys[survey_id]
            allowed = [q.id for q in survey.questions if q.id != asked.id and q.id not in self.held_out[survey_id]]
            self.ranked[key] = similar_questions(survey, asked, allowed)
        return self.ranked[key]

    def draw(self, survey_id: str, asked: Question, k: int, rng: np.random.Generator) -> list[str]:
        """One example's K context question ids (fewer where fewer questions may be shown)."""
        ranked = self.candidates(survey_id, asked)
        k = min(k, len(ranked))
        if rng.random() < 0.5:
            return ranked[:k]
        return [ranked[i] for i in rng.choice(len(ranked), size=k, replace=False)]

    def personas(self, survey_id: str, respondents: Sequence[str], plain: Sequence[str], asked: Question,
                 rng: np.random.Generator) -> list[str]:
        """The twins of `respondents` (their `plain` personas with drawn context lines)."""
        survey = self.surveys[survey_id]
        k = int(rng.integers(0, self.max_context + 1))
        twins = []
        for respondent, persona in zip(respondents, plain):
            row = survey.answers.iloc[self.rows[survey_id][respondent]]
            lines = [context_line(survey.question(question_id), int(row[question_id]), asked)
                     for question_id in self.draw(survey_id, asked, k, rng) if row[question_id] != MISSING]
            twins.append(render_twin(persona, lines))
        return twins
