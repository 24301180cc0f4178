"""Do slices differ? The slice gaps of one question: simulated beside real and the logistic baseline.

For a question and a demographic field with values v, the gap of the slice S_v is

    gap_v = s(S_v) - s(everyone)

where s(G) scores the survey-weighted answer distribution of a group G:

* top_box (ordinal, numeric): the share of the top box, the on-scale option at the
  question's `positive` end (`Question.positive_index`), among all of G's answers: an
  off-scale answer ("Don't know") counts in the denominator, as "% very likely" does;
* mean (ordinal, numeric): the mean option value over G's answers on the scale
  (`engine.metrics.expected_values`, off-scale options left out);
* share (nominal): each option's share, so one gap per option.

The simulated distribution of a group is the weighted mean of its members' persona
distributions (as `engine.simulate` forms a slice), the real one that of their answers,
the logistic baseline's that of its out-of-fold predictions. Every single-field slice
("sex = Female") with at least `min_slice` members counts; for a survey question only the
respondents who answered it are members, so simulated and real gaps describe the same people.

Two summaries per measure, over all the gaps of all fields (and options):

* gap correlation: Pearson r between simulated and real gaps, unweighted (every slice
  counts once, whatever its size); None ("undefined") with fewer than three gaps or when
  either side has no spread, e.g. a model that answers every slice alike;
* spread ratio: SD(simulated gaps) / SD(real gaps), population SDs; 1 when the model
  separates the slices as much as reality does, about 0 when it answers them alike.

The sensitivity alarm: when SD(simulated gaps) of the first measure (top box, or the
shares) is under GAP_ALARM_RATIO (a quarter) of a reference spread, ALARM is shown
wherever the simulation is. The reference is SD(real gaps) for a survey question; for a
new question, with no real answers, `typical_spread`: the median SD of the real gaps over
the survey's own questions of the same type. Real gaps carry sampling noise, which
inflates their SD a little; `min_slice` keeps the smallest, noisiest slices out.

    from engine.gaps import slice_gaps
    report = slice_gaps(survey, question, index, probabilities, weights, answers)
    report.alarm, report.primary.correlation, report.to_dict()

Pure numpy/pandas on arrays the caller has: `population_gaps` reads a simulation of
everyone (`engine.simulate.simulate(..., gaps=True)` makes one); `engine.evaluate` passes
its split. Checked by hand in `python -m pytest -q tests/test_gaps.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.metrics import answer_distribution, apply_temperature, expected_values
from engine.surveys.model import MISSING, Question, Survey

GAP_ALARM_RATIO = 0.25
ALARM = "the model barely distinguishes these slices: treat slice differences as unknown"
MIN_GAP_SLICE = 30  # as evaluate's default smallest slice
NO_SPREAD = 1e-12  # an SD below this is no spread at all (floating-point rounding of equal numbers)
SOURCES = ("simulated", "real", "logistic")


@dataclass(frozen=True)
class GapRow:
    """One slice's gap on one measure (and, for shares, one option); None where a source is absent."""

    field: str
    value: str
    option: str | None
    n: int
    simulated: float
    real: float | None
    logistic: float | None


@dataclass(frozen=True)
class GapTable:
    """Every slice gap of one measure, everyone's scores and the summaries."""

    measure: str
    everyone: dict[str, list[float] | None]
    rows: tuple[GapRow, ...]
    simulated_sd: float | None
    real_sd: float | None
    logistic_sd: float | None
    correlation: float | None
    spread_ratio: float | None
    logistic_correlation: float | None
    logistic_spread_ratio: float | None

    def gaps(self, source: str) -> np.ndarray:
        return np.array([np.nan if getattr(row, source) is None else getattr(row, source) for row in self.rows])

    def to_dict(self) -> dict:
        return {
            "measure": self.measure,
            "everyone": {source: None if scores is None else [round(score, 6) for score in scores]
                         for source, scores in self.everyone.items()},
            "rows": [{"field": row.field, "value": row.value, "option": row.option, "n": row.n,
                      **{source: None if getattr(row, source) is None else round(getattr(row, source), 6)
                         for source in SOURCES}} for row in self.rows],
            "summary": {"simulated_sd": self.simulated_sd, "real_sd": self.real_sd, "logistic_sd": self.logistic_sd,
                        "correlation": self.correlation, "spread_ratio": self.spread_ratio,
                        "logistic_correlation": self.logistic_correlation,
                        "logistic_spread_ratio": self.logistic_spread_ratio},
        }


@dataclass(frozen=True)
class GapReport:
    """The slice gaps of one question, per measure (the first decides the alarm)."""

    question: str
    type: str
    positive: str | None
    off_scale: tuple[str, ...]
    min_slice: int
    tables: dict[str, GapTable]
    reference_sd: float | None
    reference: str
    alarm: bool

    @property
    def primary(self) -> GapTable:
        return next(iter(self.tables.values()))

    @property
    def message(self) -> str | None:
        return ALARM if self.alarm else None

    def to_dict(self) -> dict:
        """JSON-ready: what `focusgroup simulate --format json` prints under "gaps"."""
        return {
            "question": self.question, "type": self.type, "measure": self.primary.measure,
            "positive": self.positive, "off_scale": list(self.off_scale), "min_slice": self.min_slice,
            "alarm": self.alarm, "message": self.message, "reference_sd": self.reference_sd,
            "reference": self.reference, "alarm_ratio": GAP_ALARM_RATIO,
            "tables": {measure: table.to_dict() for measure, table in self.tables.items()},
        }


def measures_of(question: Question) -> tuple[str, ...]:
    """The scores a question's gaps are read on; the first decides the alarm."""
    return ("top_box", "mean") if question.is_scale else ("share",)


def group_score(distribution: np.ndarray, question: Question, measure: str) -> np.ndarray:
    """s(G) of one answer distribution, as a vector (one number, or one per option for shares)."""
    distribution = np.asarray(distribution, dtype=float)
    if measure == "top_box":
        return distribution[[question.positive_index]]
    if measure == "mean":
        return np.atleast_1d(expected_values(distribution, question.values)).astype(float)
    if measure == "share":
        return distribution
    raise FocusgroupError(f"Unknown gap measure {measure!r}; use top_box, mean or share.")


def spread(gaps) -> float | None:
    """The population SD of the finite gaps; None with fewer than two."""
    gaps = np.asarray(gaps, dtype=float)
    gaps = gaps[np.isfinite(gaps)]
    return float(np.std(gaps)) if gaps.size >= 2 else None


def gap_correlation(simulated, real) -> float | None:
    """Pearson r over the pairs where both gaps are finite; None ("undefined") with fewer
    than three pairs or when either side has no spread."""
    simulated, real = np.asarray(simulated, dtype=float), np.asarray(real, dtype=float)
    both = np.isfinite(simulated) & np.isfinite(real)
    simulated, real = simulated[both], real[both]
    if simulated.size < 3 or np.std(simulated) < NO_SPREAD or np.std(real) < NO_SPREAD:
        return None
    return float(np.corrcoef(simulated, real)[0, 1])


def spread_ratio(simulated, real) -> float | None:
    """SD(simulated gaps) / SD(real gaps); None when the real gaps have no spread."""
    real_sd, simulated_sd = spread(real), spread(simulated)
    if real_sd is None or simulated_sd is None or real_sd < NO_SPREAD:
        return None
    return simulated_sd / real_sd


def field_slices(survey: Survey, index: pd.Index, weights: np.ndarray, min_slice: int
                 ) -> list[tuple[str, str, np.ndarray]]:
    """(field, value, member mask over `index`) of every single-field slice with at least
    `min_slice` members and a positive total weight, in field and value order."""
    demographics = survey.demographics.loc[index]
    slices = []
    for demographic in survey.fields:
        column = demographics[demographic.name].to_numpy(dtype=object)
        for value in demographic.values:
            members = column == value
            if members.sum() >= min_slice and weights[members].sum() > 0:
                slices.append((demographic.name, value, members))
    return slices


def _scores(distribution_of: Callable[[np.ndarray], np.ndarray], slices, n: int, question: Question,
            measure: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Everyone's score and each slice's gap, from a function mask -> group distribution."""
    everyone = group_score(distribution_of(np.ones(n, dtype=bool)), question, measure)
    return everyone, [group_score(distribution_of(members), question, measure) - everyone
                      for _, _, members in slices]


def gap_table(question: Question, measure: str, slices, sources: dict[str, Callable | None], n: int) -> GapTable:
    """The table of one measure from each source's mask -> distribution function (None: absent)."""
    scored = {name: None if function is None else _scores(function, slices, n, question, measure)
              for name, function in sources.items()}
    options = question.labels if measure == "share" else [None]
    rows = []
    for position, (field_name, value, members) in enumerate(slices):
        for j, option in enumerate(options):
            gaps = {name: None if found is None else float(found[1][position][j]) for name, found in scored.items()}
            rows.append(GapRow(field_name, value, option, int(members.sum()), **gaps))
    flat = {name: None if found is None else np.array([gap for gaps in found[1] for gap in gaps])
            for name, found in scored.items()}
    simulated, real, logistic = flat["simulated"], flat["real"], flat["logistic"]
    return GapTable(
        measure=measure,
        everyone={name: None if found is None else found[0].tolist() for name, found in scored.items()},
        rows=tuple(rows),
        simulated_sd=spread(simulated),
        real_sd=None if real is None else spread(real),
        logistic_sd=None if logistic is None else spread(logistic),
        correlation=None if real is None else gap_correlation(simulated, real),
        spread_ratio=None if real is None else spread_ratio(simulated, real),
        logistic_correlation=None if real is None or logistic is None else gap_correlation(logistic, real),
        logistic_spread_ratio=None if real is None or logistic is None else spread_ratio(logistic, real),
    )


def real_spread(survey: Survey, question: Question, min_slice: int = MIN_GAP_SLICE) -> float | None:
    """SD of the real gaps of a survey question on its first measure, over everyone who answered."""
    answers = survey.answer_codes(question.id).astype(int)
    answered = answers != MISSING
    if not answered.any():
        return None
    index, answers = survey.demographics.index[answered], answers[answered]
    weights = survey.weight_array(index)
    slices = field_slices(survey, index, weights, min_slice)
    if not slices:
        return None
    k = len(question.options)
    _, gaps = _scores(lambda members: answer_distribution(answers[members], k, weights[members]), slices,
                      len(index), question, measures_of(question)[0])
    return spread(np.concatenate(gaps))


def typical_spread(survey: Survey, question: Question, min_slice: int = MIN_GAP_SLICE) -> tuple[float | None, int]:
    """The survey's typical real gap spread for a question of this type: the median, over the
    survey's other questions of the same type, of SD(real gaps) on the first measure (top box
    or shares), with how many questions it is over; (None, 0) when none has real gaps."""
    spreads = [real_spread(survey, other, min_slice) for other in survey.questions
               if other.type == question.type and other.id != question.id]
    spreads = [value for value in spreads if value is not None]
    return (float(np.median(spreads)) if spreads else None), len(spreads)


def slice_gaps(
    survey: Survey,
    question: Question,
    index: pd.Index,
    probabilities: np.ndarray,
    weights: np.ndarray,
    answers: np.ndarray | None = None,
    logistic: np.ndarray | None = None,
    min_slice: int = MIN_GAP_SLICE,
    typical: tuple[float | None, int] | None = None,
) -> GapReport:
    """The slice gaps of `question` over the respondents in `index`.

    `probabilities` [n, k] are their simulated (persona) distributions, `weights` [n] their
    survey weights, `answers` [n] their real answers (None for a new question; rows answered
    -1 are left out), `logistic` [n, k] the logistic baseline's out-of-fold predictions (or
    None). `typical` is `typical_spread`'s result, computed from the survey when a new
    question needs it and it is not given.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if answers is not None:
        answers = np.asarray(answers).astype(int)
        answered = answers != MISSING
        index, probabilities, weights = index[answered], probabilities[answered], weights[answered]
        answers = answers[answered]
        logistic = None if logistic is None else np.asarray(logistic, dtype=float)[answered]
        if not answered.any():
            answers = logistic = None
    k, n = len(question.options), len(index)
    slices = field_slices(survey, index, weights, min_slice) if n and weights.sum() > 0 else []

    def mean_of(rows: np.ndarray):
        return lambda members: np.average(rows[members], axis=0, weights=weights[members])

    sources = {
        "simulated": mean_of(probabilities),
        "real": None if answers is None else lambda members: answer_distribution(answers[members], k,
                                                                                weights[members]),
        "logistic": None if logistic is None else mean_of(logistic),
    }
    tables = {measure: gap_table(question, measure, slices, sources, n) if slices else
              GapTable(measure, {name: None for name in SOURCES}, (), None, None, None, None, None, None, None)
              for measure in measures_of(question)}
    primary = next(iter(tables.values()))
    if answers is not None:
        reference_sd, reference = primary.real_sd, "the real gaps"
    else:
        typical_sd, count = typical if typical is not None else typical_spread(survey, question, min_slice)
        reference_sd = typical_sd
        reference = (f"the median real gap spread of the survey's {count} other {question.type} questions"
                     if typical_sd is not None else "none: no real answers to compare with")
    alarm = (reference_sd is not None and reference_sd >= NO_SPREAD and primary.simulated_sd is not None
             and primary.simulated_sd < GAP_ALARM_RATIO * reference_sd)
    positive = None if question.positive_index is None else question.labels[question.positive_index]
    return GapReport(question.id, question.type, positive, tuple(question.off_scale_labels), min_slice, tables,
                     reference_sd, reference, bool(alarm))


def population_gaps(population, temperature: float, typical: tuple[float | None, int] | None = None,
                    min_slice: int = MIN_GAP_SLICE) -> GapReport:
    """The slice gaps at temperature T of a `Simulation` of everyone (no slice: every
    respondent, or a seeded draw of them, a persona), from its stored logits, real answers
    and logistic baseline."""
    if population.filters:
        raise FocusgroupError("Slice gaps need a simulation of everyone, not of one slice: simulate with no slice.")
    logistic = population.baselines.get("logistic", {}).get("probabilities")
    return slice_gaps(population.survey, population.question, population.index,
                      apply_temperature(population.logits, temperature), population.weights, population.answers,
                      logistic, min_slice, typical)


def summarize_gaps(reports: list[dict]) -> dict:
    """Over several questions' `GapReport.to_dict()`s: the mean gap correlation and the
    median spread ratio of the first measure (where defined), and the questions alarmed."""
    summaries = [report["tables"][report["measure"]]["summary"] for report in reports]
    correlations = [s["correlation"] for s in summaries if s["correlation"] is not None]
    ratios = [s["spread_ratio"] for s in summaries if s["spread_ratio"] is not None]
    return {
        "n_questions": len(reports),
        "mean_correlation": float(np.mean(correlations)) if correlations else None,
        "median_spread_ratio": float(np.median(ratios)) if ratios else None,
        "alarms": [report["question"] for report in reports if report["alarm"]],
    }
