"""The baselines a simulated slice is read against, fitted without the slice's own answers.

`simulate` (`engine.simulate`) puts the model's distance to the real slice beside the
baselines of `engine.baselines`. The model answers each persona without seeing that
persona's answer, and (for a held-out question) without any of the slice's, so a fair
baseline must not see them either: one fitted on 80% of the slice (out of fold within it)
can reproduce the slice's answers and beat the noise floor by construction. For a slice:

- marginal, logistic, gradient_boosting and svr, which read the question's answers, are
  fitted on every respondent OUTSIDE the slice (`OUTSIDE`) and predict the slice's personas;
- scale_prior never reads the question's answers, only the other questions' of its scale,
  which a researcher has for the slice too; it stays out of fold (`OUT_OF_FOLD`: the personas
  cut into BASELINE_FOLDS seeded folds, each predicted from every other respondent);
- uniform fits nothing (`NOT_FITTED`).

When nobody outside the slice answered (the slice is everyone, or everyone who answered),
there is no outside to fit on: every baseline is predicted out of fold over everyone. The
marginal fitted on everyone is then the slice's own real distribution, so it is not a
competitor but the `reference` (`REFERENCE`; distance 0 when the real side is the whole
slice), kept apart from the baselines that `best_classical` and the tables rank.

`SliceBaselines.fit` records, per baseline, which of these it was. Checked by
`tests/test_baselines.py` (on a survey whose slice answers differently from everyone else)
and `tests/test_simulate.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.baselines import BASELINES, BaselinePrediction, fit_baselines
from engine.metrics import individual_metrics, population_metrics
from engine.real_answers import scorable
from engine.slices import Slice, slice_index
from engine.surveys.model import Question, Survey

BASELINE_FOLDS = 5
OUTSIDE = "outside the slice"
OUT_OF_FOLD = f"out of fold ({BASELINE_FOLDS}-fold) over everyone"
NOT_FITTED = "not fitted (1/k for every option)"
REFERENCE = "everyone, the slice's own answers: the reference, not a competitor"
# Blind to the question's answers, so fitting on the slice's other answers is fair.
BLIND_BASELINES = ("scale_prior",)

Slot = dict[str, np.ndarray | None]  # "probabilities" [n, k] and SVR's "points" [n] (else None)


@dataclass
class SliceBaselines:
    """The baselines' predictions for a slice's personas (name -> `Slot`, rows in persona
    order), how each was fitted (`fit`, name -> one of the labels above, the reference's
    included), and the reference that is no competitor (the marginal, for everyone)."""

    predictions: dict[str, Slot]
    fit: dict[str, str]
    reference: dict[str, Slot] = field(default_factory=dict)


def as_slots(predictions: dict[str, BaselinePrediction]) -> dict[str, Slot]:
    """`fit_baselines` predictions as slots."""
    return {name: {"probabilities": prediction.probabilities, "points": prediction.point_predictions}
            for name, prediction in predictions.items()}


def out_of_fold_baselines(
    survey: Survey, question: Question, index: pd.Index, seed: int, names=BASELINES, context: Sequence[str] = ()
) -> dict[str, Slot]:
    """Baseline predictions for `index`, each fold predicted by models fitted on everyone else,
    on demographics and the answers to the `context` questions."""
    folds = np.random.default_rng(seed).permutation(len(index)) % BASELINE_FOLDS
    everyone = survey.demographics.index
    k = len(question.options)
    result: dict[str, Slot] = {}
    fitted_folds: dict[str, int] = {}
    non_empty = 0
    for fold in range(BASELINE_FOLDS):
        members = index[folds == fold]
        if len(members) == 0:
            continue
        non_empty += 1
        predictions = fit_baselines(survey, question.id, everyone.difference(members), members, seed, names, context)
        for name, prediction in predictions.items():
            slot = result.setdefault(name, {"probabilities": np.zeros((len(index), k)), "points": None})
            slot["probabilities"][folds == fold] = prediction.probabilities
            if prediction.point_predictions is not None:
                if slot["points"] is None:
                    slot["points"] = np.full(len(index), np.nan)
                slot["points"][folds == fold] = prediction.point_predictions
            fitted_folds[name] = fitted_folds.get(name, 0) + 1
    # A baseline that could not be fitted in every fold (too few answers) is not comparable.
    return {name: slot for name, slot in result.items() if fitted_folds[name] == non_empty}


def slice_baselines(survey: Survey, question: Question, filters: Slice, index: pd.Index, seed: int,
                    context: Sequence[str] = ()) -> SliceBaselines:
    """The baselines for the personas `index` of the slice `filters`, fitted as the module
    docstring says: outside the slice where anyone outside it answered (with a positive
    weight), else out of fold over everyone with the marginal as the reference."""
    everyone = survey.demographics.index
    outside = everyone.difference(slice_index(survey, filters))
    if scorable(survey.answers.loc[outside, question.id].to_numpy(), survey.weight_array(outside)):
        fitted = as_slots(fit_baselines(survey, question.id, outside, index, seed,
                                        [name for name in BASELINES if name not in BLIND_BASELINES], context))
        blind = out_of_fold_baselines(survey, question, index, seed, BLIND_BASELINES, context)
        merged = {**fitted, **blind}
        predictions = {name: merged[name] for name in BASELINES if name in merged}  # the usual order
        fit = {name: OUT_OF_FOLD if name in BLIND_BASELINES else OUTSIDE for name in predictions}
        reference = {}
    else:
        predictions = out_of_fold_baselines(survey, question, index, seed, context=context)
        predictions.pop("marginal", None)
        fit = dict.fromkeys(predictions, OUT_OF_FOLD)
        reference = as_slots(fit_baselines(survey, question.id, everyone, index, seed, ("marginal",)))
        fit.update(dict.fromkeys(reference, REFERENCE))
    if "uniform" in fit:
        fit["uniform"] = NOT_FITTED
    return SliceBaselines(predictions, fit, reference)


def score_baselines(slots: dict[str, Slot], real: np.ndarray, weights: np.ndarray, answers: np.ndarray | None,
                    values: np.ndarray | None) -> dict[str, dict]:
    """Population metrics of each baseline's distribution over the personas (the weighted
    mean of its rows) against the `real` one, and its individual metrics on the personas'
    own `answers` (when any answered)."""
    scores = {}
    for name, slot in slots.items():
        distribution = np.average(slot["probabilities"], axis=0, weights=weights)
        scores[name] = population_metrics(real, distribution, values)
        if scorable(answers, weights):
            scores[name].update({key: value for key, value in individual_metrics(
                slot["probabilities"], answers, values, weights, slot["points"],
            ).items() if key != "n"})
    return scores


__all__ = ["BASELINE_FOLDS", "NOT_FITTED", "OUTSIDE", "OUT_OF_FOLD", "REFERENCE", "SliceBaselines",
           "out_of_fold_baselines", "score_baselines", "slice_baselines"]
