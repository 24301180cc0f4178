"""Banner tables: several questions cut by several demographic fields, in one run.

The market researcher's daily view (what Q and Displayr call a banner or crosstab): for each
question, rows are its options (plus, for a scale, the top box and the mean score) and
columns are "Total" then every value of each chosen field; each cell holds the simulated
share beside the real one, each column its base (n), and a flag marks a cell whose slice
differs from the rest of the base beyond sampling noise.

    from engine.banner import BannerConfig, banner
    result = banner(loaded, survey, BannerConfig(questions=("natspac", "natenrgy"), fields=("age", "sex")))
    result.cells                      # tidy: one row per question x column x row (CELL_COLUMNS)
    result.table("natspac")           # wide: rows x (field, value, measure), base row first
    result.at(0.7).cells              # another temperature, no model call

How it is computed:

1. each question is simulated once for everyone in the base (`--slice`, or the whole survey;
   `engine.simulate.simulate`, so the logit cache serves it) and each column is a subset of
   those personas: its simulated shares are the survey-weighted mean of its personas'
   distributions (`slice_distribution`), its real shares the weighted shares of its
   respondents' answers (`answer_distribution`); the top box and mean score are
   `engine.gaps.group_score`'s, so the top box is the on-scale option at the spec's
   `positive` end. The Total column is the base itself. With `personas` drawn, the simulated
   side rests on the drawn personas and the real side stays every respondent of the base
   (as in `simulate`);
2. significance, for the simulated and the real side separately: the column's respondents
   against the rest of the base (everyone in the base outside the column), two-sided at
   `alpha` (95% by default). Shares and the top box: the pooled two-proportion z-test;
   the mean score: a z-test of two means with each group's variance over the scale. Every
   n in a test is Kish's effective sample size of the group's weights (for the mean, times
   the group's share on the scale), so weighting widens the noise as it should. The
   simulated side is read as if each persona gave one answer drawn from its distribution:
   a sample of the same size as the real one. A cell is flagged ▲ (higher than the rest) or
   ▼ (lower) when p < alpha; a column or rest with fewer than `min_base` respondents
   (personas, on the simulated side) is not tested. Slice vs rest has the sign of slice vs
   Total, since the Total is a weighted mean of the two.

Pure numpy/pandas after the simulation; checked in `python -m pytest -q tests/test_banner.py`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.gaps import group_score
from engine.metrics import answer_distribution, check_temperature, effective_sample_size
from engine.models import LoadedModel
from engine.scoring import Progress
from engine.simulate import Simulation, is_in_survey, simulate, slice_distribution
from engine.slices import Slice, describe_slice, slice_index
from engine.surveys.model import MISSING, Question, Survey
from engine.validation import check_range, check_seed

TOTAL = "Total"  # the value of the Total column; its field is ""
BASE_ROW = "Base (n)"
MEAN_ROW = "Mean score"
UP, DOWN = "▲", "▼"
KINDS = ("option", "top_box", "mean")
MEASURES = ("simulated", "simulated_flag", "real", "real_flag")
CELL_COLUMNS = ("question", "row", "kind", "field", "value", "n_personas", "n_real", "simulated", "real",
                "simulated_p", "real_p", "simulated_flag", "real_flag")


@dataclass(frozen=True)
class BannerConfig:
    """What to cross: the questions (survey ids), the fields whose values become columns.

    filters: the base, a slice (`engine.slices`) every column is cut from (default: everyone).
    temperature: softmax temperature of the persona distributions (0 = each one's argmax).
    stimulus: text shown before every question (ad copy, a concept), or None.
    personas: draw this many personas from the base with `seed` (default: all of them); the
      real side always reads every respondent of the base.
    alpha: two-sided significance level of the flags (0.05: 95%).
    min_base: columns (or rests) with fewer respondents than this are not tested.
    """

    questions: tuple[str, ...]
    fields: tuple[str, ...]
    filters: Slice = field(default_factory=dict)
    temperature: float = 1.0
    stimulus: str | None = None
    personas: int | None = None
    seed: int = 0
    alpha: float = 0.05
    min_base: int = 30

    def __post_init__(self):
        object.__setattr__(self, "questions", tuple(self.questions))
        object.__setattr__(self, "fields", tuple(self.fields))
        if not self.questions:
            raise FocusgroupError("A banner needs at least one question (--questions).")
        if not self.fields:
            raise FocusgroupError("A banner needs at least one demographic field for its columns (--fields).")
        for name, items in (("question", self.questions), ("field", self.fields)):
            repeated = sorted({item for item in items if items.count(item) > 1})
            if repeated:
                raise FocusgroupError(f"The banner names the {name} {repeated[0]!r} twice; name each once.")
        check_temperature(self.temperature)
        check_seed(self.seed)
        if self.personas is not None:
            check_range(self.personas, "The number of personas (--personas)", low=1)
        if not 0 < self.alpha < 1:
            raise FocusgroupError(f"The significance level alpha must be between 0 and 1, got {self.alpha}.")
        check_range(self.min_base, "The smallest tested base (min_base)", low=2)


@dataclass(frozen=True)
class Group:
    """One side (simulated or real) of one group of respondents: its distribution (None
    when it has nobody with a positive weight), head count and Kish effective size."""

    distribution: np.ndarray | None
    n: int
    effective_n: float


def weighted_group(distribution_of: Callable[[np.ndarray], np.ndarray], weights: np.ndarray,
                   members: np.ndarray) -> Group:
    """The group of `members` (a mask), from a function mask -> weighted distribution."""
    n = int(members.sum())
    if n == 0 or weights[members].sum() <= 0:
        return Group(None, n, 0.0)
    return Group(distribution_of(members), n, effective_sample_size(weights[members]))


def two_proportion_p(share: float, n: float, rest_share: float, rest_n: float) -> float:
    """Two-sided p-value of the pooled two-proportion z-test of H0: both shares are equal.

    z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p = (n1 p1 + n2 p2) / (n1 + n2), the
    n's effective sample sizes; p = erfc(|z| / sqrt 2). Equal shares with no spread (both 0
    or both 1) give 1."""
    pooled = (n * share + rest_n * rest_share) / (n + rest_n)
    error = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / rest_n))
    if error == 0:
        return 1.0
    return math.erfc(abs(share - rest_share) / error / math.sqrt(2))


def two_mean_p(mean: float, variance: float, n: float, rest_mean: float, rest_variance: float,
               rest_n: float) -> float:
    """Two-sided p-value of the z-test of H0: both means are equal, z = (m1 - m2) /
    sqrt(v1/n1 + v2/n2) (unpooled variances, the n's effective sizes). With no spread on
    either side, equal means give 1 and different ones 0."""
    error = math.sqrt(variance / n + rest_variance / rest_n)
    if error == 0:
        return 1.0 if mean == rest_mean else 0.0
    return math.erfc(abs(mean - rest_mean) / error / math.sqrt(2))


def scale_spread(distribution: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """The mean and variance over the scale of one distribution (off-scale options left
    out, the rest renormalised), and the share of it on the scale."""
    on_scale = ~np.isnan(values)
    kept = distribution[on_scale]
    share = float(kept.sum())
    if share <= 0:
        return float("nan"), 0.0
    mean = float(kept @ values[on_scale] / share)
    return float(kept @ (values[on_scale] - mean) ** 2 / share), share


def difference_p(question: Question, kind: str, option: int | None, inside: Group, rest: Group) -> float:
    """The p-value of one row's difference between a group and the rest (see the module)."""
    if kind == "mean":
        variance, share = scale_spread(inside.distribution, question.values)
        rest_variance, rest_share = scale_spread(rest.distribution, question.values)
        if share <= 0 or rest_share <= 0:
            return float("nan")
        return two_mean_p(float(group_score(inside.distribution, question, "mean")[0]), variance,
                          inside.effective_n * share, float(group_score(rest.distribution, question, "mean")[0]),
                          rest_variance, rest.effective_n * rest_share)
    index = question.positive_index if kind == "top_box" else option
    return two_proportion_p(float(inside.distribution[index]), inside.effective_n,
                            float(rest.distribution[index]), rest.effective_n)


def flag(difference: float, p: float, alpha: float) -> str:
    """▲ or ▼ where the difference is significant at `alpha`, else ""."""
    if not np.isfinite(p) or p >= alpha:
        return ""
    return UP if difference > 0 else DOWN


def question_rows(question: Question) -> list[tuple[str, str, int | None]]:
    """(row label, kind, option index) of a question's banner rows: every option, then for a
    scale the top box (the option at its positive end) and the mean score."""
    rows = [(label, "option", j) for j, label in enumerate(question.labels)]
    if question.is_scale:
        rows += [(f"Top box: {question.labels[question.positive_index]}", "top_box", None), (MEAN_ROW, "mean", None)]
    return rows


def row_score(question: Question, kind: str, option: int | None, group: Group) -> float:
    if group.distribution is None:
        return float("nan")
    if kind == "option":
        return float(group.distribution[option])
    return float(group_score(group.distribution, question, "top_box" if kind == "top_box" else "mean")[0])


def side_cells(question: Question, inside: Group, rest: Group | None, alpha: float, min_base: int
               ) -> list[tuple[float, float, str]]:
    """(score, p-value, flag) of each row for one side of one column; rest None: untested."""
    tested = (rest is not None and inside.distribution is not None and rest.distribution is not None
              and min(inside.n, rest.n) >= min_base)
    cells = []
    for _, kind, option in question_rows(question):
        score = row_score(question, kind, option, inside)
        p = difference_p(question, kind, option, inside, rest) if tested else float("nan")
        cells.append((score, p, flag(score - row_score(question, kind, option, rest), p, alpha) if tested else ""))
    return cells


@dataclass(frozen=True)
class Side:
    """One side of a question's banner: the rows whose distributions it reads, their
    demographics (for the column masks), weights, and a function mask -> distribution."""

    demographics: pd.DataFrame
    weights: np.ndarray
    distribution_of: Callable[[np.ndarray], np.ndarray]

    def groups(self, field_name: str, value: str) -> tuple[Group, Group | None]:
        """The column's group and the rest of the base (None for the Total column)."""
        if not field_name:
            return weighted_group(self.distribution_of, self.weights, np.ones(len(self.weights), dtype=bool)), None
        members = (self.demographics[field_name] == value).to_numpy(dtype=bool)
        return (weighted_group(self.distribution_of, self.weights, members),
                weighted_group(self.distribution_of, self.weights, ~members))


def simulated_side(simulation: Simulation, temperature: float) -> Side:
    probabilities = simulation.probabilities(temperature)
    weights = simulation.weights
    return Side(simulation.survey.demographics.loc[simulation.index], weights,
                lambda members: slice_distribution(probabilities[members], weights[members]))


def real_side(survey: Survey, question: Question, filters: Slice) -> Side | None:
    """Every respondent of the base who answered (None when nobody did, or for a new question)."""
    if not is_in_survey(survey, question):
        return None
    index = slice_index(survey, filters)
    answers = survey.answers.loc[index, question.id].to_numpy().astype(int)
    answered = answers != MISSING
    if not answered.any():
        return None
    index, answers = index[answered], answers[answered]
    weights = survey.weight_array(index)
    k = len(question.options)
    return Side(survey.demographics.loc[index], weights,
                lambda members: answer_distribution(answers[members], k, weights[members]))


def banner_columns(survey: Survey, fields: tuple[str, ...]) -> list[tuple[str, str]]:
    """(field, value) of every column: the Total ("", TOTAL), then each value of each field."""
    return [("", TOTAL)] + [(name, value) for name in fields for value in survey.field(name).values]


def question_cells(simulation: Simulation, real: Side | None, columns: list[tuple[str, str]],
                   config: BannerConfig) -> list[dict]:
    """The tidy records of one question's banner at `config.temperature`."""
    question = simulation.question
    simulated = simulated_side(simulation, config.temperature)
    records = []
    for field_name, value in columns:
        inside, rest = simulated.groups(field_name, value)
        simulated_cells = side_cells(question, inside, rest, config.alpha, config.min_base)
        if real is None:
            real_group, real_cells = Group(None, 0, 0.0), [(float("nan"), float("nan"), "")] * len(simulated_cells)
        else:
            real_group, real_rest = real.groups(field_name, value)
            real_cells = side_cells(question, real_group, real_rest, config.alpha, config.min_base)
        for (row, kind, _), (sim, sim_p, sim_flag), (real_score, real_p, real_flag) in zip(
                question_rows(question), simulated_cells, real_cells):
            records.append({"question": question.id, "row": row, "kind": kind, "field": field_name, "value": value,
                            "n_personas": inside.n, "n_real": real_group.n, "simulated": sim, "real": real_score,
                            "simulated_p": sim_p, "real_p": real_p, "simulated_flag": sim_flag,
                            "real_flag": real_flag})
    return records


@dataclass(frozen=True, eq=False)
class Banner:
    """A banner run: the simulations (one per question, everyone in the base) and every
    cell at `config.temperature` (`cells`, columns CELL_COLUMNS).

    `cells` rows: question id; row (option label, "Top box: <label>" or MEAN_ROW); kind
    (KINDS); field ("" for the Total) and value (TOTAL or the field's value); n_personas
    (personas in the column) and n_real (respondents who answered); simulated and real
    (share, or the mean score; NaN where nobody answered); simulated_p and real_p (the
    test's p-value, NaN where untested); simulated_flag and real_flag ("▲", "▼" or "").
    """

    survey: Survey
    config: BannerConfig
    simulations: dict[str, Simulation] = field(repr=False)
    reals: dict[str, Side | None] = field(repr=False)
    model_name: str
    adapter: str | None
    created: str  # when the banner was run, ISO 8601 to the second
    cells: pd.DataFrame = field(repr=False)

    @property
    def questions(self) -> list[Question]:
        return [simulation.question for simulation in self.simulations.values()]

    @property
    def columns(self) -> list[tuple[str, str]]:
        return banner_columns(self.survey, self.config.fields)

    @property
    def significance(self) -> str:
        return significance_note(self.config)

    def at(self, temperature: float) -> Banner:
        """The same banner at temperature T, from the stored logits (no model call)."""
        config = dataclasses.replace(self.config, temperature=temperature)
        return dataclasses.replace(self, config=config, cells=banner_cells(self.simulations, self.reals, self.columns,
                                                                           config))

    def table(self, question_id: str) -> pd.DataFrame:
        """One question wide: rows BASE_ROW then its rows, columns (field, value, measure)
        for measure in MEASURES. The base row holds n_personas under "simulated" and n_real
        under "real"."""
        cells = self.cells[self.cells["question"] == self.survey.question(question_id).id]
        if cells.empty:
            raise FocusgroupError(f"Question {question_id!r} is not in this banner; it has "
                                  f"{', '.join(self.simulations)}.")
        rows = list(dict.fromkeys(cells["row"]))
        columns = pd.MultiIndex.from_tuples([(name, value, measure) for name, value in self.columns
                                             for measure in MEASURES], names=("field", "value", "measure"))
        table = pd.DataFrame(index=pd.Index([BASE_ROW, *rows], name="row"), columns=columns, dtype=object)
        for record in cells.itertuples(index=False):
            for measure in MEASURES:
                table.loc[record.row, (record.field, record.value, measure)] = getattr(record, measure)
            table.loc[BASE_ROW, (record.field, record.value, "simulated")] = record.n_personas
            table.loc[BASE_ROW, (record.field, record.value, "real")] = record.n_real
        table.loc[BASE_ROW, [column for column in columns if column[2].endswith("_flag")]] = ""
        return table

    def to_dict(self) -> dict:
        """JSON-ready: what `focusgroup banner --format json` prints."""
        return {
            "survey": self.survey.id, "survey_title": self.survey.title, "model": self.model_name,
            "adapter": self.adapter, "temperature": self.config.temperature, "stimulus": self.config.stimulus,
            "base": describe_slice(self.config.filters), "fields": list(self.config.fields),
            "personas": self.config.personas, "seed": self.config.seed, "alpha": self.config.alpha,
            "min_base": self.config.min_base, "created": self.created, "significance": self.significance,
            "questions": [{"id": question.id, "text": question.text, "type": question.type,
                           "positive": question.positive if question.is_scale else None,
                           "cells": self.cells[self.cells["question"] == question.id].to_dict(orient="records")}
                          for question in self.questions],
            "provenance": self.survey.provenance,
        }


def significance_note(config: BannerConfig) -> str:
    """How the flags were computed, in one paragraph (the table's legend, the workbook's notes)."""
    level = f"{1 - config.alpha:.0%}"
    return (f"{UP}/{DOWN}: the column is higher/lower than the rest of the base at {level} (two-sided), for the "
            "simulated and the real shares separately. Shares and top box: pooled two-proportion z-test; mean "
            "score: z-test of two means. Sample sizes are Kish effective sizes of the survey weights; the simulated "
            "side is read as one answer per persona. Columns or rests with fewer than "
            f"{config.min_base} respondents are not tested.")


def banner_cells(simulations: dict[str, Simulation], reals: dict[str, Side | None], columns: list[tuple[str, str]],
                 config: BannerConfig) -> pd.DataFrame:
    records = [record for question_id, simulation in simulations.items()
               for record in question_cells(simulation, reals[question_id], columns, config)]
    return pd.DataFrame.from_records(records, columns=list(CELL_COLUMNS))


def resolve_config(survey: Survey, config: BannerConfig) -> BannerConfig:
    """The config with the survey's own spelling of every question id and field name;
    an unknown one is refused with the survey's list (call it before loading a model)."""
    return dataclasses.replace(config, questions=tuple(survey.question(name).id for name in config.questions),
                               fields=tuple(survey.field(name).name for name in config.fields))


def banner(loaded: LoadedModel, survey: Survey, config: BannerConfig, progress: Progress | None = None) -> Banner:
    """Run the banner: each question simulated once for everyone in the base, then every
    column read from those personas. `progress(done, total)` counts personas over all the
    questions (one report per batch; personas the logit cache holds count as done at once)."""
    # Phase 1: check every name before any model work.
    config = resolve_config(survey, config)
    questions = [survey.question(question_id) for question_id in config.questions]

    # Phase 2: the model, once per question for everyone in the base (cached). Scoring
    # reports over the personas the logit cache lacks; the bar counts every persona.
    base = len(slice_index(survey, config.filters))
    per_question = base if config.personas is None else min(base, config.personas)
    simulations: dict[str, Simulation] = {}
    for position, question in enumerate(questions):
        def overall(done: int, total: int, position=position) -> None:
            progress(position * per_question + round(per_question * done / max(total, 1)),
                     len(questions) * per_question)

        simulations[question.id] = simulate(loaded, survey, question, config.filters, config.temperature,
                                            config.stimulus, config.personas, config.seed,
                                            None if progress is None else overall, with_baselines=False)

    # Phase 3: every column from subsets of those personas, and the real answers beside.
    return assemble_banner(survey, config, simulations, loaded.config.name, loaded.config.adapter)


def assemble_banner(survey: Survey, config: BannerConfig, simulations: dict[str, Simulation], model_name: str,
                    adapter: str | None = None) -> Banner:
    """The banner of simulations already run (question id -> a `Simulation` of everyone in
    `config.filters`, in the config's order): the real answers of the base beside them and
    every cell at `config.temperature`. No model call; `banner` ends here."""
    config = resolve_config(survey, config)
    reals = {question_id: real_side(survey, simulation.question, config.filters)
             for question_id, simulation in simulations.items()}
    return Banner(survey=survey, config=config, simulations=simulations, reals=reals, model_name=model_name,
                  adapter=adapter, created=datetime.now().astimezone().isoformat(timespec="seconds"),
                  cells=banner_cells(simulations, reals, banner_columns(survey, config.fields), config))


__all__ = ["Banner", "BannerConfig", "banner", "assemble_banner", "resolve_config", "two_proportion_p", "two_mean_p",
           "question_rows", "significance_note", "TOTAL", "BASE_ROW", "CELL_COLUMNS", "MEASURES", "UP", "DOWN"]
