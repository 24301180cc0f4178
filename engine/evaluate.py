"""Held-out evaluation: how faithful the model is, per question and per slice, beside baselines.

For each question, on the respondents of one split (the test split by default):

- population fidelity on the whole split and on every single-field slice ("sex = Female")
  with at least `min_slice` answers: KL, JS, Wasserstein and TV between the real and
  simulated distributions, each beside its sampling-noise floor;
- individual fidelity: accuracy, log loss, RMSE and MAE against each person's answer;
- the same numbers for every baseline, fitted on the train split of the same seed;
- the slice gaps (`engine.gaps`): each single-field slice's top box (or mean, or option
  shares) minus the split's, simulated beside real and logistic, with their correlation,
  spread ratio and the alarm when the model barely tells the slices apart.

Means are reported over all questions and separately over trained and held-out questions
(the survey's named held-out set), so a fine-tuned model's generalisation is visible. Each
summary names its `no_data_baselines` (uniform, scale_prior: what a researcher has for a
new question) apart from its `data_baselines` (marginal and the classical models, which
have seen the question's train answers); on held-out questions the first are the fair
comparison, the second the bar to reach.

    focusgroup evaluate --survey gss2018 --split test --format json
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.baselines import DATA_BASELINES, NO_DATA_BASELINES, fit_baselines
from engine.errors import FocusgroupError
from engine.gaps import slice_gaps, summarize_gaps
from engine.metrics import (
    POPULATION_METRICS,
    answer_distribution,
    apply_temperature,
    check_temperature,
    effective_sample_size,
    individual_metrics,
    noise_floor,
    population_metrics,
)
from engine.models import LoadedModel
from engine.prompts import check_prompt_fits
from engine.scoring import Progress, option_logits
from engine.simulate import slice_distribution
from engine.slices import describe_slice, single_field_slices, slice_index
from engine.surveys.model import MISSING, Survey
from engine.surveys.split import DEFAULT_SEED, held_out_questions, split_index
from engine.twins import AUTO, MAX_CONTEXT, choose_context, twin_personas
from engine.validation import check_range, check_seed

INDIVIDUAL_METRICS = ("accuracy", "log_loss", "rmse", "mae")


@dataclass(frozen=True)
class EvaluationConfig:
    """What to evaluate.

    split: respondents to evaluate on ("test", "validation", "train" or "all").
    questions: question ids, or None for every question of the survey.
    temperature: softmax temperature applied to the option logits (0 = argmax).
    split_seed: seed of the 8:1:1 respondent split (must match the one used in training).
    min_slice: smallest number of answers for a single-field slice to be scored.
    held_out_set: the survey's named set of questions never used in training.
    context_k: personas are twins carrying their answers to the `context_k` questions worded
        most like each asked one (`engine.twins`, `auto`), chosen among the questions outside
        the held-out set; the fitted baselines see the same answers. 0: demographics only.
    """

    split: str = "test"
    questions: tuple[str, ...] | None = None
    temperature: float = 1.0
    split_seed: int = DEFAULT_SEED
    min_slice: int = 30
    held_out_set: str = "default"
    context_k: int = 0

    def __post_init__(self):
        check_temperature(self.temperature)
        check_range(self.context_k, "The number of context answers (--context-k)", low=0, high=MAX_CONTEXT)
        check_seed(self.split_seed, "The split seed")
        check_range(self.min_slice, "The smallest slice (--min-slice)", low=2)


def mean_of(records: list[dict], keys) -> dict:
    """Key-wise mean over dicts, skipping None values (None when nothing is left)."""
    result = {}
    for key in keys:
        values = [record[key] for record in records if record.get(key) is not None]
        result[key] = float(np.mean(values)) if values else None
    return result


def population_block(real, model_probabilities, baseline_distributions, weights, values, rng) -> dict:
    """Population metrics of the model and each baseline (name -> its predicted distribution
    for the group) on one group, with its noise floor."""
    simulated = slice_distribution(model_probabilities, weights)
    return {
        "n": len(weights),
        "real": real.round(6).tolist(),
        "simulated": simulated.round(6).tolist(),
        "model": population_metrics(real, simulated, values),
        "baselines": {
            name: population_metrics(real, distribution, values)
            for name, distribution in baseline_distributions.items()
        },
        "noise_floor": noise_floor(real, effective_sample_size(weights), values, rng),
    }


def requested_questions(survey: Survey, config: EvaluationConfig) -> list[str]:
    """The ids of the questions to evaluate (all of the survey's when none are named)."""
    ids = list(config.questions) if config.questions else [q.id for q in survey.questions]
    return [survey.question(q).id for q in ids]


def answered_in_split(survey: Survey, question_id: str, config: EvaluationConfig):
    """Respondents of the evaluated split who answered, their answers and their weights."""
    index = split_index(survey, config.split, config.split_seed)
    answers = survey.answers.loc[index, question_id].to_numpy()
    index, answers = index[answers != MISSING], answers[answers != MISSING]
    if len(index) == 0:
        raise FocusgroupError(f"No {config.split} respondent answered {question_id!r}.")
    return index, answers, survey.weight_array(index)


def slice_masks(survey: Survey, index, min_slice: int) -> list[tuple[dict, np.ndarray]]:
    """Each single-field slice with at least `min_slice` members of `index`, as a boolean mask."""
    return [(filters, np.isin(index, slice_index(survey, filters, within=index)))
            for filters in single_field_slices(survey, index, min_slice)]


def group_distributions(baselines: dict, members, weights, filters) -> dict:
    """Each baseline's predicted distribution for one group (`members` of the split, the
    slice `filters`): its own group version where it has one (scale_prior's slice
    version), else the weighted mean of its members' predictions."""
    return {
        name: (prediction.group_distribution(filters) if prediction.group_distribution is not None
               else slice_distribution(prediction.probabilities[members], weights[members]))
        for name, prediction in baselines.items()
    }


def evaluation_personas(survey: Survey, question, index, config: EvaluationConfig) -> tuple[tuple[str, ...], list]:
    """The context questions of `question` (none unless `config.context_k`) and the personas
    of `index`, twins when there is a context."""
    context = choose_context(survey, question, AUTO, config.context_k,
                             excluded=held_out_questions(survey, config.held_out_set)) if config.context_k else ()
    return context, twin_personas(survey, index, context, question)


def evaluate_question(loaded, survey: Survey, question_id: str, config: EvaluationConfig, progress=None) -> dict:
    question = survey.question(question_id)
    values = question.values if question.is_scale else None
    k = len(question.options)
    rng = np.random.default_rng(config.split_seed)

    # Phase 1: respondents of the split who answered.
    index, answers, weights = answered_in_split(survey, question.id, config)

    # Phase 2: the model's distributions and the baselines' predictions (twins: both see the
    # same context answers).
    context, personas = evaluation_personas(survey, question, index, config)
    check_prompt_fits(loaded.tokenizer, loaded.context_length, question, survey.fields, personas)
    logits = option_logits(loaded, question, survey.fields, personas, progress=progress)
    probabilities = apply_temperature(logits, config.temperature)
    train = split_index(survey, "train", config.split_seed)
    baselines = fit_baselines(survey, question.id, train, index, seed=config.split_seed, context=context)

    # Phase 3: whole split, then every single-field slice.
    real = answer_distribution(answers, k, weights)
    everyone = np.ones(len(index), dtype=bool)
    overall = population_block(real, probabilities, group_distributions(baselines, everyone, weights, None),
                               weights, values, rng)
    individual = {
        "model": individual_metrics(probabilities, answers, values, weights),
        "baselines": {
            name: individual_metrics(b.probabilities, answers, values, weights, b.point_predictions)
            for name, b in baselines.items()
        },
    }
    slices = []
    for filters, members in slice_masks(survey, index, config.min_slice):
        block = population_block(
            answer_distribution(answers[members], k, weights[members]), probabilities[members],
            group_distributions(baselines, members, weights, filters), weights[members], values, rng,
        )
        slices.append({"slice": describe_slice(filters), **block})
    logistic = baselines["logistic"].probabilities if "logistic" in baselines else None
    gaps = slice_gaps(survey, question, index, probabilities, weights, answers, logistic, config.min_slice)
    return {
        "id": question.id,
        "type": question.type,
        "options": question.labels,
        "context": list(context),
        "population": overall,
        "individual": individual,
        "slices": slices,
        "gaps": gaps.to_dict(),
    }


def summarize(questions: list[dict]) -> dict:
    """Means over questions (whole split), over question x slice pairs, and of individual
    scores; `no_data_baselines` and `data_baselines` name the baselines present of each kind
    (keys of every `baselines` mapping), so a report can show them apart."""
    if not questions:
        return {}
    names = sorted({name for q in questions for name in q["population"]["baselines"]})
    slice_blocks = [block for q in questions for block in q["slices"]]

    def population_means(blocks):
        return {
            "model": mean_of([b["model"] for b in blocks], POPULATION_METRICS),
            "noise_floor": mean_of([b["noise_floor"] for b in blocks], POPULATION_METRICS),
            "baselines": {
                name: mean_of([b["baselines"][name] for b in blocks if name in b["baselines"]], POPULATION_METRICS)
                for name in names
            },
        }

    return {
        "n_questions": len(questions),
        "n_slices": len(slice_blocks),
        "gaps": summarize_gaps([q["gaps"] for q in questions if q.get("gaps")]),
        "no_data_baselines": [name for name in NO_DATA_BASELINES if name in names],
        "data_baselines": [name for name in DATA_BASELINES if name in names],
        "population": population_means([q["population"] for q in questions]),
        "slices": population_means(slice_blocks),
        "individual": {
            "model": mean_of([q["individual"]["model"] for q in questions], INDIVIDUAL_METRICS),
            "baselines": {
                name: mean_of([q["individual"]["baselines"][name] for q in questions
                               if name in q["individual"]["baselines"]], INDIVIDUAL_METRICS)
                for name in names
            },
        },
    }


def coverage_summary(result: dict, unseen: set[str]) -> dict[str, dict]:
    """`summarize` of an evaluation's questions, split by whether the model trained on their
    answers ("trained") or not ("unseen", see `engine.models.unseen_questions`); empty groups
    are left out."""
    groups = {
        "trained": [q for q in result["questions"] if q["id"] not in unseen],
        "unseen": [q for q in result["questions"] if q["id"] in unseen],
    }
    return {name: summarize(questions) for name, questions in groups.items() if questions}


def evaluate(
    loaded: LoadedModel, survey: Survey, config: EvaluationConfig | None = None, progress: Progress | None = None,
    on_question=None,
) -> dict:
    """Evaluate every requested question; `on_question(i, n, question_id)` reports progress."""
    config = config or EvaluationConfig()
    question_ids = requested_questions(survey, config)
    held_out = set(held_out_questions(survey, config.held_out_set))
    results = []
    for position, question_id in enumerate(question_ids):
        if on_question is not None:
            on_question(position, len(question_ids), question_id)
        result = evaluate_question(loaded, survey, question_id, config, progress)
        result["held_out"] = question_id in held_out
        results.append(result)
    return {
        "survey": survey.id,
        "model": loaded.config.name,
        "split": config.split,
        "split_seed": config.split_seed,
        "temperature": config.temperature,
        "min_slice": config.min_slice,
        "context_k": config.context_k,
        "held_out_questions": sorted(held_out),
        "questions": results,
        "summary": {
            "all": summarize(results),
            "trained": summarize([r for r in results if not r["held_out"]]),
            "held_out": summarize([r for r in results if r["held_out"]]),
        },
        "provenance": survey.provenance,
    }


def temperature_curve(
    loaded: LoadedModel, survey: Survey, temperatures, config: EvaluationConfig | None = None,
    progress: Progress | None = None,
) -> list[dict]:
    """Population and individual fidelity across temperatures, from one set of logits.

    For each temperature: the mean JS distance over question x single-field slices, the mean
    whole-split JS, and the mean individual log loss and RMSE (scale questions). Logits are
    computed once per question; each temperature only re-applies the softmax.
    """
    config = config or EvaluationConfig()
    per_question = []
    for question_id in requested_questions(survey, config):
        question = survey.question(question_id)
        index, answers, weights = answered_in_split(survey, question.id, config)
        logits = option_logits(loaded, question, survey.fields, evaluation_personas(survey, question, index, config)[1],
                               progress=progress)
        slices = [members for _, members in slice_masks(survey, index, config.min_slice)]
        per_question.append((question, answers, weights, logits, slices))

    rows = []
    for temperature in temperatures:
        slice_js, split_js, log_losses, rmses = [], [], [], []
        for question, answers, weights, logits, slices in per_question:
            k = len(question.options)
            values = question.values if question.is_scale else None
            probabilities = apply_temperature(logits, temperature)
            split_js.append(population_metrics(answer_distribution(answers, k, weights),
                                               slice_distribution(probabilities, weights), values)["js"])
            for members in slices:
                real = answer_distribution(answers[members], k, weights[members])
                simulated = slice_distribution(probabilities[members], weights[members])
                slice_js.append(population_metrics(real, simulated, values)["js"])
            individual = individual_metrics(probabilities, answers, values, weights)
            log_losses.append(individual["log_loss"])
            if individual["rmse"] is not None:
                rmses.append(individual["rmse"])
        rows.append({
            "temperature": float(temperature),
            "slice_js": float(np.mean(slice_js)) if slice_js else None,
            "split_js": float(np.mean(split_js)),
            "log_loss": float(np.mean(log_losses)),
            "rmse": float(np.mean(rmses)) if rmses else None,
        })
    return rows
