"""Simulating a slice: persona answer distributions, the slice's distribution, its fidelity.

`simulate` is the one call behind `focusgroup simulate` and the dashboard's main page:

1. the slice's respondents become personas (all of them, or N drawn with a seed);
2. one forward pass per persona gives option logits (`engine.scoring`, cached);
3. at temperature T each persona's distribution is softmax(logits / T), and the simulated
   distribution of the slice is their survey-weighted mean;
4. the real slice distribution (`engine.real_answers`), its sampling-noise floor, and the
   classical baselines fitted without the slice's answers (`engine.slice_baselines`) give
   the numbers to read the simulation against. The real distribution is always the whole
   slice's, even when N personas are drawn (with survey weights, N drawn respondents'
   answers can differ a lot from their slice's), unless `real_from_drawn`; the per-persona
   scores (individual metrics) need each persona's own answer, so they stay on the drawn
   personas;
5. with `gaps=True`, everyone in the survey answers too (a seeded draw of GAP_PERSONAS
   from a larger survey; the simulation itself when its slice is everyone), so the slice
   gaps of every field (`engine.gaps`: does the model tell the slices apart as the real
   respondents do?) and their alarm come with it. That is one more pass over the survey's
   personas per question and stimulus, which the logit cache then keeps; the command line
   asks for it unless --no-gaps;
6. `context` turns each persona into a twin that carries the respondent's answers to other
   questions (`engine.twins`); the fitted baselines are given the same answers.

The returned `Simulation` keeps the logits, so `simulation.at(T)` re-reads every number
at a new temperature without running the model.

The baselines that read the question's answers are fitted on the respondents outside the
slice, as the model never sees the slice's answers; for everyone, out of fold, with the
marginal (everyone's own distribution) kept apart as the reference (`engine.slice_baselines`).
Run the checks with `.venv/bin/python -m pytest -q tests/test_simulate.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.gaps import GapReport, population_gaps, typical_spread
from engine.metrics import (
    POPULATION_METRICS,
    answer_distribution,
    apply_temperature,
    check_temperature,
    individual_metrics,
    noise_floor,
    population_metrics,
)
from engine.generate import MAX_NEW_TOKENS, generate_answers
from engine.models import LoadedModel
from engine.personas import personas_for, slice_personas
from engine.real_answers import is_in_survey, real_answers, scorable
from engine.scoring import Progress, option_logits
from engine.slice_baselines import out_of_fold_baselines, score_baselines, slice_baselines
from engine.slices import Slice, describe_slice, slice_index
from engine.surveys.model import MISSING, Question, Survey
from engine.twins import describe_context
from engine.validation import MAX_SAMPLES, check_range, check_seed

GAP_PERSONAS = 1000


def slice_distribution(probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The (weighted) mean of per-persona distributions: the simulated slice's answers."""
    return np.average(probabilities, axis=0, weights=weights)


@dataclass
class Snapshot:
    """Every number of a simulation at one temperature. `metrics` compare the simulated
    distribution with the real one (None without one); `individual` scores each drawn persona
    against its own answer (None when no persona answered). `baselines` are the competitors,
    `reference` the baselines that are no competitor (everyone's marginal, for everyone)."""

    temperature: float
    simulated: np.ndarray
    metrics: dict | None
    individual: dict | None
    baselines: dict[str, dict]
    gaps: GapReport | None = None
    reference: dict[str, dict] = field(default_factory=dict)


@dataclass
class Simulation:
    """A simulated slice: logits per persona plus what is needed to score them at any T."""

    survey: Survey
    question: Question
    filters: Slice
    index: pd.Index
    logits: np.ndarray
    weights: np.ndarray
    answers: np.ndarray | None
    stimulus: str | None
    model_name: str
    seed: int
    real: np.ndarray | None = None
    noise: dict | None = None
    baselines: dict[str, dict] = field(default_factory=dict)
    baseline_scores: dict[str, dict] = field(default_factory=dict)
    baseline_fit: dict[str, str] = field(default_factory=dict)  # name -> how it was fitted (`engine.slice_baselines`)
    reference_scores: dict[str, dict] = field(default_factory=dict)  # the reference's scores, not a competitor
    # Everyone answering the same question, for the slice gaps (`simulate(..., gaps=True)`);
    # the simulation itself when its slice is everyone.
    population: Simulation | None = field(default=None, repr=False, compare=False)
    typical_gap_spread: tuple[float | None, int] | None = None  # a new question's gap reference
    context: tuple[str, ...] = ()  # the twins' context questions (`engine.twins`)
    n_real: int = 0  # respondents whose answers make `real`
    real_from: str | None = None  # whose answers `real` is: "slice" (all of it) or "drawn personas"
    n_slice: int | None = None  # respondents in the slice (the personas unless N were drawn)

    @property
    def n_personas(self) -> int:
        return len(self.index)

    @property
    def in_survey(self) -> bool:
        """False for a new question, which no respondent answered."""
        return is_in_survey(self.survey, self.question)

    def probabilities(self, temperature: float) -> np.ndarray:
        return apply_temperature(self.logits, temperature)

    def at(self, temperature: float) -> Snapshot:
        """All numbers at temperature T, from the stored logits (no model call)."""
        probabilities = self.probabilities(temperature)
        simulated = slice_distribution(probabilities, self.weights)
        metrics = individual = None
        values = self.question.values if self.question.is_scale else None
        if self.real is not None:
            metrics = population_metrics(self.real, simulated, values)
        if scorable(self.answers, self.weights):
            individual = individual_metrics(probabilities, self.answers, values, self.weights)
        gaps = None if self.population is None else population_gaps(self.population, temperature,
                                                                     self.typical_gap_spread)
        return Snapshot(temperature, simulated, metrics, individual, self.baseline_scores, gaps,
                        self.reference_scores)

    def sample(self, n: int, temperature: float, rng: np.random.Generator) -> pd.DataFrame:
        """n simulated respondents: a persona drawn by weight, then an answer from its distribution.
        At most MAX_SAMPLES, since every one becomes a row in memory and in the output."""
        check_range(n, "The number of samples (--samples)", 0, MAX_SAMPLES)
        probabilities = self.probabilities(temperature)
        chosen = rng.choice(len(self.index), size=n, p=self.weights / self.weights.sum())
        cumulative = probabilities[chosen].cumsum(axis=1)
        answers = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(max=len(self.question.options) - 1)
        return pd.DataFrame({
            "respondent": self.index[chosen],
            "answer": [self.question.labels[a] for a in answers],
        })

    def to_dict(self, temperature: float) -> dict:
        """The JSON-ready summary printed by `focusgroup simulate --format json`."""
        snapshot = self.at(temperature)
        labels = self.question.labels
        return {
            "mode": "logits",
            "survey": self.survey.id,
            "question": self.question.id,
            "question_text": self.question.text,
            "stimulus": self.stimulus,
            "slice": {name: list(values) for name, values in self.filters.items()},
            "slice_description": describe_slice(self.filters),
            "model": self.model_name,
            "in_survey": self.in_survey,
            "n_personas": self.n_personas,
            "n_slice": self.n_slice,
            "n_real": self.n_real,
            "real_from": self.real_from,
            "temperature": temperature,
            "seed": self.seed,
            "options": labels,
            "simulated": dict(zip(labels, snapshot.simulated.round(6).tolist())),
            "real": None if self.real is None else dict(zip(labels, self.real.round(6).tolist())),
            "metrics": snapshot.metrics,
            "individual": snapshot.individual,
            "noise_floor": self.noise,
            "baselines": snapshot.baselines,
            "baseline_fit": self.baseline_fit,
            "reference": snapshot.reference,
            "off_scale": self.question.off_scale_labels,
            "context": list(self.context),
            "context_description": describe_context(self.context),
            "gaps": None if snapshot.gaps is None else snapshot.gaps.to_dict(),
            "provenance": self.survey.provenance,
        }


def check_request(question: Question, temperature: float, seed: int) -> None:
    """What both readings refuse before any work: a blank question, a bad temperature or seed."""
    if not question.text.strip():
        raise FocusgroupError(f"Question {question.id!r} has no text; write the question to ask.")
    check_temperature(temperature)
    check_seed(seed)


def simulate(
    loaded: LoadedModel,
    survey: Survey,
    question: str | Question,
    filters: Slice | None = None,
    temperature: float = 1.0,
    stimulus: str | None = None,
    n_personas: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    with_baselines: bool = True,
    gaps: bool = False,
    context: Sequence[str] = (),
    real_from_drawn: bool = False,
) -> Simulation:
    """Simulate one question for one slice. A `Question` not in the survey (a new product
    question) is simulated alone: there is no real distribution to compare with. With
    `gaps`, everyone answers too, for the slice gaps of `simulation.at(T).gaps`. `context`
    (question ids, `engine.twins.choose_context`) makes the personas twins, and the fitted
    baselines see the same answers.

    With `n_personas` drawn, the real distribution, its noise floor and every population
    metric against it (the model's and the baselines') are the whole slice's real answers,
    and `n_real` counts them; `real_from_drawn` reads them from the drawn personas alone.
    Individual metrics (the model's and the baselines') score each drawn persona against its
    own answer, so they are always over the drawn personas that answered (None when none did)."""
    filters = filters or {}
    if isinstance(question, str):
        question = survey.question(question)
    check_request(question, temperature, seed)
    is_survey_question = is_in_survey(survey, question)

    # Phase 1: who is in the slice.
    rng = np.random.default_rng(seed)
    context = tuple(context)
    if question.id in context:
        raise FocusgroupError(f"Question {question.id!r} is the one being asked; it cannot be its own context.")
    index, weights, personas = slice_personas(loaded, survey, question, filters, n_personas, stimulus, rng,
                                              context=context)

    # Phase 2: the model, once per persona (cached).
    logits = option_logits(loaded, question, survey.fields, personas, stimulus, progress=progress)
    simulation = Simulation(
        survey=survey, question=question, filters=filters, index=index, logits=logits, weights=weights,
        answers=None, stimulus=stimulus, model_name=loaded.config.name, seed=seed, context=context,
        n_slice=len(slice_index(survey, filters)),
    )
    real = None
    if is_survey_question:
        answers = survey.answers.loc[index, question.id].to_numpy()
        simulation.answers = answers if (answers != MISSING).any() else None
        real = real_answers(survey, question, filters, index, weights, real_from_drawn, simulation.n_slice)
    if real is not None:
        # Phase 3: the real distribution, its noise floor, and the baselines.
        values = question.values if question.is_scale else None
        simulation.real, simulation.n_real, simulation.real_from = real.distribution, real.n, real.source
        simulation.noise = noise_floor(real.distribution, real.effective_n, values, rng)
        if with_baselines:
            fitted = slice_baselines(survey, question, filters, index, seed, context)
            simulation.baselines, simulation.baseline_fit = fitted.predictions, fitted.fit
            simulation.baseline_scores, simulation.reference_scores = (
                score_baselines(slots, real.distribution, weights, simulation.answers, values)
                for slots in (fitted.predictions, fitted.reference))

    # Phase 4: everyone, for the slice gaps.
    if gaps:
        simulation.population = everyone_for_gaps(loaded, simulation, progress, with_baselines)
        if simulation.population.answers is None:
            simulation.typical_gap_spread = typical_spread(survey, question)
    return simulation


def everyone_for_gaps(loaded: LoadedModel, simulation: Simulation, progress: Progress | None,
                      with_baselines: bool) -> Simulation:
    """Every respondent of the survey (a draw of GAP_PERSONAS from a larger one: enough for
    single-field slices of 30, and the extra pass stays short) answering the simulation's
    question and stimulus (the simulation itself when it already is that), with the logistic baseline out of fold when
    baselines are wanted: the population whose slices the gaps compare."""
    survey, question = simulation.survey, simulation.question
    population = simulation
    wanted = min(survey.n_respondents, GAP_PERSONAS)
    if simulation.filters or simulation.n_personas < wanted:
        drawn = None if wanted == survey.n_respondents else wanted
        # The gaps read each drawn persona's own answer, so the population's real stays its own.
        population = simulate(loaded, survey, question, {}, 1.0, simulation.stimulus, drawn, simulation.seed,
                              progress, with_baselines=False, context=simulation.context, real_from_drawn=True)
    if with_baselines and population.answers is not None and "logistic" not in population.baselines:
        population.baselines = {**population.baselines, **out_of_fold_baselines(
            survey, question, population.index, simulation.seed, ("logistic",), simulation.context)}
    return population


def simulate_by_generation(
    loaded: LoadedModel,
    survey: Survey,
    question: str | Question,
    filters: Slice | None = None,
    temperature: float = 1.0,
    stimulus: str | None = None,
    n_personas: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    real_from_drawn: bool = False,
) -> dict:
    """The paper's reading, for comparison: one generated reply per persona, parsed.

    The simulated distribution is the weighted histogram of the replies that named a valid
    option; `parse_success_rate` says how many did. Each temperature needs a new run. The
    real distribution and its noise floor are the whole slice's, or the drawn personas'
    with `real_from_drawn`, as in `simulate`; a new question has none.
    """
    filters = filters or {}
    if isinstance(question, str):
        question = survey.question(question)
    check_request(question, temperature, seed)
    rng = np.random.default_rng(seed)
    index, weights, personas = slice_personas(loaded, survey, question, filters, n_personas, stimulus, rng,
                                              MAX_NEW_TOKENS)
    generated = generate_answers(loaded, question, survey.fields, personas, temperature, stimulus, seed=seed,
                                 progress=progress)
    parsed = generated.answers != MISSING
    n_slice = len(slice_index(survey, filters))
    real = (real_answers(survey, question, filters, index, weights, real_from_drawn, n_slice)
            if is_in_survey(survey, question) else None)
    values = question.values if question.is_scale else None
    labels = question.labels
    simulated = metrics = noise = None
    if parsed.any():
        simulated = answer_distribution(generated.answers, len(labels), weights)
    if real is not None:
        noise = noise_floor(real.distribution, real.effective_n, values, rng)
        if simulated is not None:
            metrics = population_metrics(real.distribution, simulated, values)
    return {
        "mode": "generate",
        "survey": survey.id,
        "question": question.id,
        "question_text": question.text,
        "stimulus": stimulus,
        "slice": {name: list(v) for name, v in filters.items()},
        "slice_description": describe_slice(filters),
        "model": loaded.config.name,
        "in_survey": is_in_survey(survey, question),
        "n_personas": len(index),
        "n_slice": n_slice,
        "n_real": 0 if real is None else real.n,
        "real_from": None if real is None else real.source,
        "temperature": temperature,
        "seed": seed,
        "options": labels,
        "parse_success_rate": generated.success_rate,
        "simulated": None if simulated is None else dict(zip(labels, simulated.round(6).tolist())),
        "real": None if real is None else dict(zip(labels, real.distribution.round(6).tolist())),
        "metrics": metrics,
        "noise_floor": noise,
        "provenance": survey.provenance,
    }


__all__ = ["Simulation", "Snapshot", "simulate", "simulate_by_generation", "personas_for", "slice_distribution",
           "POPULATION_METRICS"]
