"""How much a pilot gains from the model: repeated pilot draws on questions the model never
trained on, each method scored against the real answers of everyone outside the pilot.

For each question (default: the survey's held-out set) the model scores every respondent
who answered it once (a seeded draw of `max_respondents` from a larger survey); then, for
each pilot size N and repeat r, N of them are drawn as the pilot (seed (seed, N, r)) and
every single-field slice with at least `min_slice` respondents outside the pilot gets the
four estimates of `engine.pilot`, its personas outside the pilot being the unlabelled data.
The truth is the slice's real weighted shares outside the pilot: a finite remainder whose
own answers are a sample too, which the intervals of `engine.pilot` allow for (their
variance carries 1/n + 1/m). Per pilot size and method:

- `js`: mean Jensen-Shannon distance between estimated and true shares over question x
  slice x repeat (slices with fewer than MIN_PILOT pilot answers are skipped for every method);
- `coverage`: the share of 95% intervals (per option) that contain the true share;
- `width`: their mean width;
- `effective_n_ratio`: mean of PPI's effective sample size over the pilot alone's (its Kish
  size; both in equally weighted answers, `engine.pilot`): 1 is "worth nothing more than
  the pilot", whether the pilot is weighted or not.

    from engine.pilot_evaluate import PilotEvaluationConfig, evaluate_pilots
    report = evaluate_pilots(loaded, survey, PilotEvaluationConfig(pilot_sizes=(100,), repeats=20))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.metrics import answer_distribution, apply_temperature, check_temperature, js_distance
from engine.pilot import METHODS, MIN_PILOT, slice_estimates
from engine.scoring import Progress, option_logits
from engine.slices import describe_slice, single_field_slices
from engine.surveys.model import MISSING, Survey
from engine.surveys.split import held_out_questions
from engine.twins import twin_personas
from engine.validation import check_range, check_seed

INTERVAL_METHODS = ("pilot", "ppi")


@dataclass(frozen=True)
class PilotEvaluationConfig:
    """pilot_sizes: pilot sizes N to draw; repeats: draws per size; questions: ids, or None
    for the survey's held-out set; max_respondents: respondents scored per question (a
    seeded draw when more answered); min_slice: smallest slice outside the pilot."""

    pilot_sizes: tuple[int, ...] = (100,)
    repeats: int = 20
    questions: tuple[str, ...] | None = None
    max_respondents: int = 2000
    min_slice: int = 30
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_temperature(self.temperature)
        check_seed(self.seed)
        check_range(self.repeats, "The number of repeats (--repeats)", 1, 1000)
        check_range(self.max_respondents, "The respondents per question", 10)
        check_range(self.min_slice, "The smallest slice (--min-slice)", 2)
        if not self.pilot_sizes:
            raise ValueError("at least one pilot size")
        for size in self.pilot_sizes:
            check_range(size, "The pilot size (--pilot-size)", 2, self.max_respondents - 1)


def scored_respondents(loaded, survey: Survey, question, config: PilotEvaluationConfig, progress: Progress | None):
    """Who answered (a seeded draw of at most max_respondents), their answers, weights and
    the model's probabilities at the config's temperature."""
    answered = survey.answers.index[survey.answers[question.id].to_numpy() != MISSING]
    if len(answered) > config.max_respondents:
        chosen = np.random.default_rng(config.seed).choice(len(answered), config.max_respondents, replace=False)
        answered = answered[np.sort(chosen)]
    personas = twin_personas(survey, answered, (), question)
    logits = option_logits(loaded, question, survey.fields, personas, None, progress=progress)
    return (answered, survey.answers.loc[answered, question.id].to_numpy(), survey.weight_array(answered),
            apply_temperature(logits, config.temperature))


def question_records(survey: Survey, question, scored, config: PilotEvaluationConfig) -> list[dict]:
    """One record per (pilot size, repeat, slice): each method's distance to the truth and
    its intervals' coverage and width."""
    index, answers, weights, probabilities = scored
    k = len(question.options)
    demographics = survey.demographics.loc[index]
    records = []
    for size in config.pilot_sizes:
        if size >= len(index):
            continue
        for repeat in range(config.repeats):
            rng = np.random.default_rng((config.seed, size, repeat))
            in_pilot = np.zeros(len(index), dtype=bool)
            in_pilot[rng.choice(len(index), size=size, replace=False)] = True
            for filters in single_field_slices(survey, index[~in_pilot], config.min_slice):
                (name, (value,)), = filters.items()
                members = (demographics[name] == value).to_numpy()
                labelled, unlabelled = members & in_pilot, members & ~in_pilot
                if labelled.sum() < MIN_PILOT or weights[labelled].sum() <= 0 or weights[unlabelled].sum() <= 0:
                    continue
                truth = answer_distribution(answers[unlabelled], k, weights[unlabelled])
                estimates = slice_estimates(answers[labelled], probabilities[labelled], probabilities[unlabelled],
                                            weights[labelled], weights[unlabelled])
                record = {"question": question.id, "slice": describe_slice(filters), "pilot_size": size,
                          "repeat": repeat, "pilot_in_slice": int(labelled.sum())}
                for method, estimate in estimates.items():
                    record[f"{method}_js"] = js_distance(truth, estimate.shares)
                    if estimate.low is not None:
                        inside = (estimate.low <= truth + 1e-12) & (truth <= estimate.high + 1e-12)
                        record[f"{method}_covered"] = int(inside.sum())
                        record[f"{method}_intervals"] = k
                        record[f"{method}_width"] = float((estimate.high - estimate.low).mean())
                effective, alone = estimates["ppi"].effective_n, estimates["pilot"].effective_n
                record["ppi_effective_n_ratio"] = None if effective is None else effective / alone
                records.append(record)
    return records


def summarize_pilots(records: list[dict], pilot_sizes) -> dict:
    """Per pilot size and method: mean JS, interval coverage and width, effective-size ratio."""
    summary = {}
    for size in pilot_sizes:
        rows = [record for record in records if record["pilot_size"] == size]
        block = {"n_estimates": len(rows)}
        for method in METHODS:
            values = [row[f"{method}_js"] for row in rows if f"{method}_js" in row]
            entry = {"js": float(np.mean(values)) if values else None}
            if method in INTERVAL_METHODS:
                covered = sum(row.get(f"{method}_covered", 0) for row in rows)
                intervals = sum(row.get(f"{method}_intervals", 0) for row in rows)
                widths = [row[f"{method}_width"] for row in rows if f"{method}_width" in row]
                entry.update(coverage=covered / intervals if intervals else None,
                             width=float(np.mean(widths)) if widths else None)
            if method == "ppi":
                ratios = [row["ppi_effective_n_ratio"] for row in rows if row["ppi_effective_n_ratio"] is not None]
                entry["effective_n_ratio"] = float(np.mean(ratios)) if ratios else None
            block[method] = entry
        summary[str(size)] = block
    return summary


def evaluate_pilots(loaded, survey: Survey, config: PilotEvaluationConfig,
                    progress: Progress | None = None) -> dict:
    """The repeated-pilot evaluation of the module docstring, as a JSON-ready dict."""
    ids = config.questions if config.questions is not None else held_out_questions(survey)
    records = []
    for question_id in ids:
        question = survey.question(question_id)
        scored = scored_respondents(loaded, survey, question, config, progress)
        records += question_records(survey, question, scored, config)
    return {"survey": survey.id, "model": loaded.config.name, "questions": list(ids),
            "pilot_sizes": list(config.pilot_sizes), "repeats": config.repeats, "temperature": config.temperature,
            "summary": summarize_pilots(records, config.pilot_sizes), "records": records}


__all__ = ["PilotEvaluationConfig", "evaluate_pilots", "summarize_pilots", "question_records"]
