"""Training examples: (persona, question, answer) from one split, never from held-out questions.

Each answered question of each respondent in the split is one example. Batches hold one
question of one survey each, so the question's prompt prefix runs through the model once
per step and only the personas differ (the same sharing as `engine.scoring`). A `Batch` is
what one step scores: its examples, the order its options are shown in, and optionally a
slice's personas for the distribution term (`engine.training.distribution`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine.errors import FocusgroupError
from engine.prompts import random_option_order
from engine.simulate import personas_for
from engine.surveys.model import MISSING, Survey
from engine.surveys.split import split_index


@dataclass(frozen=True)
class Example:
    survey_id: str
    question_id: str
    respondent: str
    persona: str
    target: int

    @property
    def question_key(self) -> tuple[str, str]:
        """Question ids are unique within a survey only."""
        return self.survey_id, self.question_id


@dataclass(frozen=True)
class SliceDraw:
    """Personas of one single-field slice with their survey weights, and the slice's real
    answer distribution over the train split (the target of the distribution term)."""

    description: str
    personas: tuple[str, ...]
    weights: tuple[float, ...]
    target: tuple[float, ...]


@dataclass(frozen=True)
class Batch:
    """One step's input: answer examples of one question, the order its options are shown in
    (None: as listed), and optionally a slice scored in the same forward pass."""

    examples: tuple[Example, ...]
    option_order: tuple[int, ...] | None = None
    slice: SliceDraw | None = None

    @property
    def survey_id(self) -> str:
        return self.examples[0].survey_id

    @property
    def question_id(self) -> str:
        return self.examples[0].question_id

    @property
    def personas(self) -> list[str]:
        """The examples' personas, then the slice's: one forward pass scores both."""
        return [example.persona for example in self.examples] + list(self.slice.personas if self.slice else ())


def build_examples(survey: Survey, split: str, split_seed: int, held_out: tuple[str, ...]) -> list[Example]:
    """Every answered (respondent, question) pair of the split, held-out questions excluded."""
    index = split_index(survey, split, split_seed)
    personas = dict(zip(index, personas_for(survey, index)))
    examples = []
    for question in survey.questions:
        if question.id in held_out:
            continue
        answers = survey.answers.loc[index, question.id].to_numpy()
        for respondent, answer in zip(index, answers):
            if answer != MISSING:
                examples.append(Example(survey.id, question.id, str(respondent), personas[respondent], int(answer)))
    if not examples:
        raise FocusgroupError(f"The {split} split of {survey.id!r} has no answers to train on.")
    return examples


def subsample(examples: list, limit: int | None, rng: np.random.Generator) -> list:
    """At most `limit` examples (or anything), drawn without replacement, in their original order."""
    if limit is None or limit >= len(examples):
        return examples
    keep = np.sort(rng.choice(len(examples), size=limit, replace=False))
    return [examples[i] for i in keep]


def by_question(examples: list[Example]) -> dict[tuple[str, str], list[Example]]:
    """Examples grouped by (survey, question), each group in its original order."""
    groups: dict[tuple[str, str], list[Example]] = {}
    for example in examples:
        groups.setdefault(example.question_key, []).append(example)
    return groups


def make_batches(examples: list[Example], batch_size: int, rng: np.random.Generator) -> list[list[Example]]:
    """Shuffle within each question, cut into batches, then shuffle the batches' order."""
    by_question_key = by_question(examples)
    batches = []
    for key in sorted(by_question_key):
        group = by_question_key[key]
        order = rng.permutation(len(group))
        for start in range(0, len(group), batch_size):
            batches.append([group[i] for i in order[start:start + batch_size]])
    return [batches[i] for i in rng.permutation(len(batches))]


def step_batch(examples: list[Example], question, config, slices, contexts, step: int, rank: int = 0) -> Batch:
    """The batch of training step `step` (0-based) on process `rank`: its examples, the order
    its options are shown in, a slice of its question (`slices`, a
    `engine.training.distribution.SliceTargets`, or None when the distribution term is off),
    and each example's persona as a twin (`contexts`, a `engine.twins.TrainingContexts`, or
    None when `config.max_context` is 0).

    The batch shares one prompt prefix, which holds the question and its options, so the
    order is drawn once per batch, not per example; it, the slice and the context answers are
    drawn from a generator seeded by (seed, step, rank), in that order, so a resumed run
    shows every step what it would have had, whatever ran before, and a run without context
    draws what it always drew. `config.option_order` "fixed" shows the survey's order.
    """
    rng = np.random.default_rng((config.seed, step, rank))
    order = random_option_order(question, rng) if config.option_order == "random" else None
    drawn = None if slices is None else slices.draw(examples[0].survey_id, examples[0].question_id,
                                                       config.slice_personas, rng)
    if contexts is not None:
        examples = as_twins(examples, question, contexts, rng)
    return Batch(tuple(examples), order, drawn)


def as_twins(examples: list[Example], question, contexts, rng: np.random.Generator) -> list[Example]:
    """The examples (one question's) with their personas carrying drawn context answers."""
    twins = contexts.personas(examples[0].survey_id, [e.respondent for e in examples],
                              [e.persona for e in examples], question, rng)
    return [dataclasses.replace(example, persona=twin) for example, twin in zip(examples, twins)]


def validation_batches(examples: list[Example], config, contexts, question_of) -> list[Batch]:
    """The run's validation batches, fixed for the whole run and shown in the survey's option
    order. With context on, each batch's personas carry context answers drawn once (seed 0),
    so the validation loss scores twins and plain personas alike, as the adapter is used."""
    rng = np.random.default_rng(0)
    batches = make_batches(examples, config.batch_size, rng)
    if contexts is not None:
        batches = [as_twins(batch, question_of(batch[0]), contexts, rng) for batch in batches]
    return [Batch(tuple(batch)) for batch in batches]


def batch_sources(config, surveys: dict, held_out: dict):
    """What `step_batch` draws from besides the examples: (slices, contexts), each None
    when its option is off (`distribution_loss_weight`, `max_context`)."""
    from engine.training.distribution import SliceTargets
    from engine.twins import TrainingContexts

    slices = SliceTargets(surveys, held_out, config.split_seed, config.min_slice_respondents) \
        if config.distribution_loss_weight > 0 else None
    contexts = TrainingContexts(surveys, held_out, config.max_context) if config.max_context > 0 else None
    return slices, contexts
