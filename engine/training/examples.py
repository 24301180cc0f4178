"""Training examples: (persona, question, answer) from one split, never from held-out questions.

Each answered question of each respondent in the split is one example. Batches hold one
question each, so the question's prompt prefix runs through the model once per step and
only the personas differ (the same sharing as `engine.scoring`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import FocusgroupError
from engine.simulate import personas_for
from engine.surveys.model import MISSING, Survey
from engine.surveys.split import split_index


@dataclass(frozen=True)
class Example:
    question_id: str
    respondent: str
    persona: str
    target: int


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
                examples.append(Example(question.id, str(respondent), personas[respondent], int(answer)))
    if not examples:
        raise FocusgroupError(f"The {split} split of {survey.id!r} has no answers to train on.")
    return examples


def subsample(examples: list[Example], limit: int | None, rng: np.random.Generator) -> list[Example]:
    """At most `limit` examples, drawn without replacement, in their original order."""
    if limit is None or limit >= len(examples):
        return examples
    keep = np.sort(rng.choice(len(examples), size=limit, replace=False))
    return [examples[i] for i in keep]


def make_batches(examples: list[Example], batch_size: int, rng: np.random.Generator) -> list[list[Example]]:
    """Shuffle within each question, cut into batches, then shuffle the batches' order."""
    by_question: dict[str, list[Example]] = {}
    for example in examples:
        by_question.setdefault(example.question_id, []).append(example)
    batches = []
    for question_id in sorted(by_question):
        group = by_question[question_id]
        order = rng.permutation(len(group))
        for start in range(0, len(group), batch_size):
            batches.append([group[i] for i in order[start:start + batch_size]])
    return [batches[i] for i in rng.permutation(len(batches))]
