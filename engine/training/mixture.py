"""The training data of a run: one survey, or several mixed into one set of examples.

    focusgroup train --surveys gss2018 non-voters food-world-cup --out DIR
    focusgroup train --surveys all --held-out-surveys gss2018 --out DIR

Each survey keeps what it has alone: its own 8:1:1 respondent split
(`engine.surveys.split`) and its `[held_out] default` questions, which never reach the
examples; a survey named in `held_out_surveys` is not loaded at all. So that the large
surveys do not drown the small ones, a survey's train examples are capped, with the run's
seed, first per question (`max_examples_per_question`, drawn within each question) and then
per survey (`max_examples_per_survey`, drawn from what the question caps kept, so each
question keeps its share); `max_examples` then caps the total. Validation examples come from
each survey's validation split, `eval_examples` shared equally among the surveys and drawn
from a few of each survey's questions (`validation_draw`).

With a single survey and no caps this is exactly the one-survey run it always was: the same
draws from the same seeds, and the manifest's `survey` and `held_out_questions`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine.errors import FocusgroupError
from engine.surveys import list_surveys, load_survey
from engine.surveys.model import Survey
from engine.surveys.split import held_out_questions
from engine.training.config import ALL_SURVEYS, TrainConfig

VALIDATION_PER_QUESTION = 16
from engine.training.examples import Example, build_examples, by_question, subsample


def resolve_surveys(config: TrainConfig) -> TrainConfig:
    """`config` with `surveys` spelled out ("all": every listed survey whose data is present
    and readable), so that the run's hyperparameters, and a resumed run's, name each survey.
    Reads the survey specs only, not their data. Unknown ids, surveys without data, held-out
    surveys not among `surveys` and a list with nothing left to train on are refused."""
    if not config.multi_survey:
        return config
    entries = list_surveys(config.data_dir)
    usable = [entry.id for entry in entries if entry.data_present and not entry.error]
    if config.surveys == (ALL_SURVEYS,):
        if not usable:
            raise FocusgroupError("--surveys all found no survey with data; see `focusgroup surveys`.")
        surveys = tuple(usable)
    else:
        known = {entry.id: entry for entry in entries}
        for survey_id in config.surveys:
            entry = known.get(survey_id)
            if entry is None:
                raise FocusgroupError(f"--surveys names {survey_id!r}, which is not a survey here; surveys with "
                                      f"data: {', '.join(usable) or 'none'} (or all).")
            if survey_id not in usable:
                reason = entry.error or "its data file is missing"
                raise FocusgroupError(f"--surveys names {survey_id!r}, which cannot be trained on: {reason}.")
        surveys = config.surveys
    outside = [survey_id for survey_id in config.held_out_surveys if survey_id not in surveys]
    if outside:
        raise FocusgroupError(f"--held-out-surveys names {outside[0]!r}, which is not among --surveys "
                              f"({', '.join(surveys)}).")
    if set(surveys) <= set(config.held_out_surveys):
        raise FocusgroupError("Every survey in --surveys is held out, so nothing is left to train on; "
                              "hold out fewer surveys.")
    return dataclasses.replace(config, surveys=surveys)


def cap_examples(examples: list[Example], per_question: int | None, per_survey: int | None,
                 rng: np.random.Generator) -> list[Example]:
    """At most `per_question` examples of each question, then at most `per_survey` of what
    is left of each survey, drawn without replacement (questions and surveys in sorted order,
    so the draws depend on the seed only); the kept examples stay in their original order."""
    by_key: dict[tuple[str, str], list[int]] = {}
    for position, example in enumerate(examples):
        by_key.setdefault(example.question_key, []).append(position)
    kept = sorted(p for key in sorted(by_key) for p in subsample(by_key[key], per_question, rng))
    by_survey: dict[str, list[int]] = {}
    for position in kept:
        by_survey.setdefault(examples[position].survey_id, []).append(position)
    kept = sorted(p for survey_id in sorted(by_survey) for p in subsample(by_survey[survey_id], per_survey, rng))
    return [examples[position] for position in kept]


def validation_draw(examples: list[Example], share: int, per_question: int | None,
                    rng: np.random.Generator) -> list[Example]:
    """At most `share` of one survey's validation examples, from at most
    ceil(share / per_question) of its questions (drawn when it has more; None: from all).

    Each question is a batch of its own, whose prompt prefix runs once per evaluation: 512
    examples spread over the 190 questions of seven surveys were 149 batches of 3, and one
    evaluation took as long as 13 training steps of 32 (measured with the default model);
    VALIDATION_PER_QUESTION (16) makes it 35 batches. A single-survey run keeps the
    uniform draw it always had (None)."""
    groups = by_question(examples)
    wanted = len(groups) if per_question is None else -(-share // per_question)
    if len(groups) > wanted:
        keys = sorted(groups)
        chosen = {keys[i] for i in rng.choice(len(keys), size=wanted, replace=False)}
        examples = [example for example in examples if example.question_key in chosen]
    return subsample(examples, share, rng)


@dataclass
class TrainingData:
    """The surveys trained on (by id), each one's held-out questions, and the examples."""

    surveys: dict[str, Survey]
    held_out: dict[str, tuple[str, ...]]
    held_out_surveys: tuple[str, ...]
    train_examples: list[Example]
    validation_examples: list[Example]
    multi_survey: bool

    def question(self, example: Example):
        return self.surveys[example.survey_id].question(example.question_id)

    def manifest_fields(self) -> dict:
        """What the manifest says about the data: `survey` and `held_out_questions` for one
        survey (as always); `surveys` with per-survey counts and `held_out_surveys` for several;
        and the numbers of options of the questions trained on (`option_counts`)."""
        counts = {"n_train_examples": len(self.train_examples),
                  "n_validation_examples": len(self.validation_examples),
                  # read by engine.option_counts to warn of a scale length never trained on
                  "option_counts": sorted({len(self.question(e).options) for e in self.train_examples})}
        if not self.multi_survey:
            (survey_id,) = self.surveys
            return {"survey": survey_id, "held_out_questions": list(self.held_out[survey_id]), **counts}
        listed = [{"id": survey_id, "held_out_questions": list(self.held_out[survey_id]),
                   "n_train_examples": sum(e.survey_id == survey_id for e in self.train_examples),
                   "n_validation_examples": sum(e.survey_id == survey_id for e in self.validation_examples)}
                  for survey_id in self.surveys]
        return {"surveys": listed, "held_out_surveys": list(self.held_out_surveys), **counts}


def load_training_data(config: TrainConfig, rng: np.random.Generator,
                       validation_rng: np.random.Generator) -> TrainingData:
    """Load the surveys (`config` as `resolve_surveys` returns it) and draw the train
    examples with `rng`, the validation examples with `validation_rng`."""
    names = [config.survey] if not config.multi_survey else \
        [survey_id for survey_id in config.surveys if survey_id not in config.held_out_surveys]
    surveys: dict[str, Survey] = {}
    held_out: dict[str, tuple[str, ...]] = {}
    for name in names:
        survey = load_survey(name, config.data_dir)
        surveys[survey.id] = survey
        chosen = config.held_out_questions
        held_out[survey.id] = tuple(survey.question(q).id for q in chosen) if chosen is not None \
            else held_out_questions(survey)

    train_examples = [e for survey in surveys.values()
                      for e in build_examples(survey, "train", config.split_seed, held_out[survey.id])]
    train_examples = cap_examples(train_examples, config.max_examples_per_question, config.max_examples_per_survey,
                                  rng)
    train_examples = subsample(train_examples, config.max_examples, rng)
    share = max(1, config.eval_examples // len(surveys))
    per_question = VALIDATION_PER_QUESTION if config.multi_survey else None
    validation_examples = [e for survey in surveys.values() for e in validation_draw(
        build_examples(survey, "validation", config.split_seed, held_out[survey.id]), share, per_question,
        validation_rng)]
    return TrainingData(surveys, held_out, config.held_out_surveys if config.multi_survey else (),
                        train_examples, validation_examples, config.multi_survey)
