"""Pilots on a survey: draw one from the respondents, or read one from a CSV, and estimate a
simulated slice's shares from pilot, model and both (`engine.pilot`).

A pilot is real answers to one question from a few people with the survey's demographic
fields. `draw_pilot` takes N of the respondents who answered (seeded), so the estimates can
be checked against everyone else's real answers. `read_pilot` reads a CSV with one column per
demographic field (the names `focusgroup questions` lists, readable values matched ignoring
case, blank for unknown), an `answer` column (an option's label) and optionally `weight`;
anything else (an unknown column or value, a missing answer, a negative weight) is refused
with a message naming it, and nothing is written.

`pilot_estimates(loaded, simulation, pilot, T)` scores the pilot's personas in the
simulation's slice and reads the four estimates for the slice: the unlabelled personas are
the slice's simulated personas outside the pilot, and the estimand is their share of each
option.

    pilot = draw_pilot(survey, "natenvir", size=100, seed=0)
    report = pilot_estimates(loaded, simulate(loaded, survey, "natenvir", filters), pilot)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.pilot import METHODS, Estimate, slice_estimates, worth_sentence
from engine.prompts import render_persona
from engine.scoring import option_logits
from engine.metrics import answer_distribution, apply_temperature
from engine.slices import describe_slice
from engine.surveys.model import MISSING, Question, Survey
from engine.twins import twin_personas
from engine.validation import check_range

MAX_PILOT_BYTES = 20_000_000
ANSWER_COLUMN, WEIGHT_COLUMN = "answer", "weight"


@dataclass(frozen=True, eq=False)
class Pilot:
    """Real answers to `question_id`: the pilot's demographics (the survey's fields, as
    labels), option indices and weights; `respondents` are survey ids when drawn from it."""

    question_id: str
    demographics: pd.DataFrame
    answers: np.ndarray
    weights: np.ndarray
    source: str
    respondents: pd.Index | None = None

    def __len__(self) -> int:
        return len(self.answers)

    def in_slice(self, filters) -> np.ndarray:
        """Which pilot rows are in the slice."""
        mask = np.ones(len(self), dtype=bool)
        for name, values in filters.items():
            mask &= self.demographics[name].isin(values).to_numpy()
        return mask


def draw_pilot(survey: Survey, question: str | Question, size: int, seed: int) -> Pilot:
    """N respondents who answered the question, drawn without replacement with `seed`."""
    question = survey.question(question) if isinstance(question, str) else question
    answered = survey.answers.index[survey.answers[question.id].to_numpy() != MISSING]
    check_range(size, "The pilot size (--pilot-size)", 2, len(answered) - 1)
    chosen = answered[np.sort(np.random.default_rng(seed).choice(len(answered), size=size, replace=False))]
    return Pilot(question.id, survey.demographics.loc[chosen], survey.answers.loc[chosen, question.id].to_numpy(),
                 survey.weight_array(chosen), f"{size} respondents drawn with seed {seed}", chosen)


def read_pilot(source: str | Path | bytes, survey: Survey, question: Question, name: str = "the pilot") -> Pilot:
    """A pilot CSV (module docstring) for `question`, validated against the survey's fields."""
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        name = str(path)
        if not path.is_file():
            raise FocusgroupError(f"Pilot file {path} does not exist; pass a CSV of pilot answers.")
        source = path.read_bytes()
    if len(source) > MAX_PILOT_BYTES:
        raise FocusgroupError(f"{name} is over {MAX_PILOT_BYTES // 1_000_000} MB; a pilot is a few hundred rows.")
    try:
        table = pd.read_csv(io.BytesIO(source), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise FocusgroupError(f"{name} is not a readable CSV ({str(error).splitlines()[0][:160]}).") from None
    columns = {column.strip().casefold(): column for column in table.columns}
    fields = {field.name.casefold(): field for field in survey.fields}
    unknown = [column for key, column in columns.items() if key not in fields and key not in (ANSWER_COLUMN,
                                                                                                WEIGHT_COLUMN)]
    if unknown:
        raise FocusgroupError(f"{name} has column {unknown[0]!r}, which is not a field of {survey.id!r}; columns "
                              f"are {', '.join(f.name for f in survey.fields)}, {ANSWER_COLUMN} and (optionally) "
                              f"{WEIGHT_COLUMN}.")
    if ANSWER_COLUMN not in columns:
        raise FocusgroupError(f"{name} has no {ANSWER_COLUMN!r} column: add one holding each person's answer "
                              f"({'; '.join(question.labels)}).")
    if table.empty:
        raise FocusgroupError(f"{name} has no rows; a pilot needs at least two answers.")
    demographics = pd.DataFrame(index=pd.RangeIndex(len(table)))
    for key, field in fields.items():
        cells = table[columns[key]].str.strip() if key in columns else pd.Series("", index=table.index)
        by_folded = {value.casefold(): value for value in field.values}
        bad = [cell for cell in cells if cell and cell.casefold() not in by_folded]
        if bad:
            raise FocusgroupError(f"{name}: field {field.name!r} has no value {bad[0]!r}; values are: "
                                  f"{'; '.join(field.values)} (blank for unknown).")
        labels = [by_folded[cell.casefold()] if cell else None for cell in cells]
        demographics[field.name] = pd.Categorical(labels, categories=list(field.values), ordered=True)
    by_label = {label.casefold(): i for i, label in enumerate(question.labels)}
    cells = table[columns[ANSWER_COLUMN]].str.strip()
    bad = [(row + 2, cell) for row, cell in enumerate(cells) if cell.casefold() not in by_label]
    if bad:
        raise FocusgroupError(f"{name}, line {bad[0][0]}: answer {bad[0][1]!r} is not an option of "
                              f"{question.id!r}; options are: {'; '.join(question.labels)}.")
    answers = np.array([by_label[cell.casefold()] for cell in cells])
    weights = np.ones(len(table))
    if WEIGHT_COLUMN in columns:
        weights = pd.to_numeric(table[columns[WEIGHT_COLUMN]].str.strip(), errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise FocusgroupError(f"{name}: every {WEIGHT_COLUMN!r} must be a number, zero or positive, and not all "
                                  "zero.")
    return Pilot(question.id, demographics, answers, weights, f"{len(table)} answers from {name}")


def choose_pilot(survey: Survey, question: Question, seed: int, size: int | None = None,
                 source: str | Path | bytes | None = None, name: str = "the pilot") -> Pilot:
    """The pilot a user asked for: `size` respondents drawn with `seed`, or the CSV
    `source` (a path, or an upload's bytes called `name`)."""
    if source is not None:
        return read_pilot(source, survey, question, name)
    return draw_pilot(survey, question, size, seed)


@dataclass(frozen=True)
class PilotReport:
    """A slice's four estimates (`engine.pilot`), the pilot's size in the slice, and the
    real shares of the unlabelled respondents where the survey has them."""

    slice_name: str
    labels: tuple[str, ...]
    pilot_size: int
    pilot_in_slice: int
    n_unlabelled: int
    estimates: dict[str, Estimate]
    truth: np.ndarray | None
    source: str

    @property
    def sentence(self) -> str:
        pilot = self.estimates.get("pilot")
        return worth_sentence(self.pilot_in_slice, self.estimates.get("ppi"), self.slice_name,
                              None if pilot is None else pilot.effective_n)

    def to_dict(self) -> dict:
        return {"source": self.source, "pilot_size": self.pilot_size, "pilot_in_slice": self.pilot_in_slice,
                "n_unlabelled": self.n_unlabelled, "sentence": self.sentence,
                "estimates": {method: self.estimates[method].as_json(self.labels) if method in self.estimates
                              else None for method in METHODS},
                "truth": None if self.truth is None else dict(zip(self.labels, self.truth.round(6).tolist()))}


def pilot_estimates(loaded, simulation, pilot: Pilot, temperature: float = 1.0) -> PilotReport:
    """The four estimates for the simulated slice, at temperature T (module docstring)."""
    question, survey = simulation.question, simulation.survey
    if pilot.question_id != question.id:
        raise FocusgroupError(f"The pilot answers {pilot.question_id!r}, not the question asked ({question.id!r}).")
    inside = pilot.in_slice(simulation.filters)
    slice_name = describe_slice(simulation.filters)
    unlabelled = np.ones(len(simulation.index), dtype=bool)
    if pilot.respondents is not None:
        unlabelled = ~simulation.index.isin(pilot.respondents)
    if not unlabelled.any():
        raise FocusgroupError(f"Every simulated persona of {slice_name} is in the pilot; simulate more personas.")
    if pilot.respondents is not None:
        personas = twin_personas(survey, pilot.respondents[inside], simulation.context, question)
    else:
        personas = [render_persona(survey.fields, row) for _, row in pilot.demographics[inside].iterrows()]
    pilot_probabilities = apply_temperature(
        option_logits(loaded, question, survey.fields, personas, simulation.stimulus), temperature,
    ) if personas else np.zeros((0, len(question.options)))
    estimates = slice_estimates(pilot.answers[inside], pilot_probabilities,
                                simulation.probabilities(temperature)[unlabelled], pilot.weights[inside],
                                simulation.weights[unlabelled])
    return PilotReport(slice_name, tuple(question.labels), len(pilot), int(inside.sum()), int(unlabelled.sum()),
                       estimates, unlabelled_truth(simulation, unlabelled), pilot.source)


def unlabelled_truth(simulation, unlabelled: np.ndarray) -> np.ndarray | None:
    """The real weighted shares of the unlabelled respondents who answered, if any."""
    if simulation.answers is None:
        return None
    answers, weights = simulation.answers[unlabelled], simulation.weights[unlabelled]
    answered = answers != MISSING
    if not answered.any() or weights[answered].sum() <= 0:
        return None
    return answer_distribution(answers, len(simulation.question.options), weights)


__all__ = ["Pilot", "PilotReport", "draw_pilot", "read_pilot", "choose_pilot", "pilot_estimates"]
