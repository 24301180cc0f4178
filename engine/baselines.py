"""Classical baselines: what demographics alone predict, without any language model.

A simulated focus group is only interesting if it beats these. For one question, each
baseline is fitted on the train respondents who answered it and predicts an [n, k]
matrix of option probabilities for the requested (usually test) respondents:

* uniform: 1/k for every option;
* marginal: the survey-weighted train answer distribution, the same for everyone;
* logistic: multinomial logistic regression on one-hot demographics;
* gradient_boosting: histogram gradient-boosted trees on the same features;
* svr: support vector regression of the option's scale value (scale questions only);
  its raw prediction is kept as `point_predictions`, its probabilities are the one-hot
  nearest option.

Score the results with `engine.metrics.individual_metrics`. Run the checks with
`python -m pytest -q tests/test_baselines.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits

from engine.errors import FocusgroupError
from engine.metrics import PROBABILITY_FLOOR, answer_distribution
from engine.surveys.model import MISSING, Survey

BASELINES = ("uniform", "marginal", "logistic", "gradient_boosting", "svr")
CLASSICAL = ("logistic", "gradient_boosting", "svr")
# Below this many train answers a fitted model is noise; only the trivial baselines run.
MIN_TRAIN_ANSWERS = 20


@dataclass
class BaselinePrediction:
    """One baseline's predictions for the requested respondents, rows in index order."""

    name: str
    probabilities: np.ndarray  # [n_test, k], rows sum to 1
    point_predictions: np.ndarray | None = None  # [n_test] scale values (svr only)


def demographic_features(survey: Survey, index: pd.Index) -> np.ndarray:
    """One-hot demographics for `index`: one column per category of every field, plus one
    "missing" column per field.

    Columns come from the fields' category lists, not from the rows present, so any two
    indices of the same survey give the same columns in the same order.
    """
    blocks = []
    for column in survey.demographics.columns:
        series = survey.demographics.loc[index, column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            categories = list(series.cat.categories)
            codes = series.cat.codes.to_numpy()  # -1 where missing
        else:
            categories = sorted(survey.demographics[column].dropna().unique().tolist(), key=str)
            lookup = {category: position for position, category in enumerate(categories)}
            codes = np.array([lookup.get(value, -1) for value in series], dtype=int)
        block = np.zeros((len(index), len(categories) + 1))
        block[np.arange(len(index)), np.where(codes >= 0, codes, len(categories))] = 1.0
        blocks.append(block)
    return np.hstack(blocks) if blocks else np.zeros((len(index), 0))


def _full_probabilities(classes: np.ndarray, probabilities: np.ndarray, k: int) -> np.ndarray:
    """Place a classifier's columns (only the classes seen in training) onto all k options,
    then floor and renormalise so an unseen option keeps a tiny, finite probability."""
    full = np.zeros((probabilities.shape[0], k))
    full[:, classes.astype(int)] = probabilities
    full = np.maximum(full, PROBABILITY_FLOOR)
    return full / full.sum(axis=1, keepdims=True)


def fit_baselines(
    survey: Survey,
    question_id: str,
    train_index: pd.Index,
    test_index: pd.Index,
    seed: int = 0,
    names=BASELINES,
) -> dict[str, BaselinePrediction]:
    """Fit the named baselines on train respondents who answered `question_id` and predict
    for every respondent in `test_index`.

    Survey weights (normalised to mean 1) are used as sample weights throughout. `svr`
    is skipped for nominal questions; when train holds fewer than MIN_TRAIN_ANSWERS
    answers, or only one distinct answer, only uniform and marginal are returned.
    """
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise FocusgroupError(f"Unknown baseline(s) {unknown}; use any of {', '.join(BASELINES)}.")
    question = survey.question(question_id)
    k = len(question.options)
    n_test = len(test_index)

    # Phase 1: the train respondents who answered, with their weights.
    train_answers = survey.answers.loc[train_index, question.id].to_numpy().astype(int)
    answered = train_answers != MISSING
    if not answered.any():
        raise FocusgroupError(
            f"No train respondent answered {question.id!r}; choose another question or split."
        )
    y = train_answers[answered]
    weights = survey.weight_array(train_index)[answered]
    weights = weights / weights.mean()
    fit_models = len(y) >= MIN_TRAIN_ANSWERS and len(np.unique(y)) > 1

    predictions: dict[str, BaselinePrediction] = {}

    # Phase 2: the trivial baselines, which need no features.
    if "uniform" in names:
        predictions["uniform"] = BaselinePrediction("uniform", np.full((n_test, k), 1.0 / k))
    if "marginal" in names:
        marginal = answer_distribution(y, k, weights)
        predictions["marginal"] = BaselinePrediction("marginal", np.tile(marginal, (n_test, 1)))
    if not fit_models:
        return predictions

    # Phase 3: models on one-hot demographics.
    x_train = demographic_features(survey, train_index)[answered]
    x_test = demographic_features(survey, test_index)
    if "logistic" in names:
        model = LogisticRegression(max_iter=1000, C=1.0)
        model.fit(x_train, y, sample_weight=weights)
        predictions["logistic"] = BaselinePrediction(
            "logistic", _full_probabilities(model.classes_, model.predict_proba(x_test), k)
        )
    if "gradient_boosting" in names:
        # Small and without early stopping: under a second on 2,000 rows, deterministic.
        # One OpenMP thread: on a busy machine more threads spin-wait and run 5-10x slower.
        model = HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20,
            l2_regularization=1.0, early_stopping=False, random_state=seed,
        )
        with threadpool_limits(limits=1, user_api="openmp"):
            model.fit(x_train, y, sample_weight=weights)
            probabilities = model.predict_proba(x_test)
        predictions["gradient_boosting"] = BaselinePrediction(
            "gradient_boosting", _full_probabilities(model.classes_, probabilities, k)
        )
    if "svr" in names and question.is_scale:
        values = question.values
        target = values[y]
        # Standardise the target: SVR's epsilon tube is absolute, scales differ (1-3, 0-100).
        centre, spread = target.mean(), target.std() or 1.0
        model = SVR(C=1.0, epsilon=0.1)
        model.fit(x_train, (target - centre) / spread, sample_weight=weights)
        point = model.predict(x_test) * spread + centre
        nearest = np.abs(point[:, None] - values[None, :]).argmin(axis=1)
        one_hot = np.zeros((n_test, k))
        one_hot[np.arange(n_test), nearest] = 1.0
        predictions["svr"] = BaselinePrediction("svr", one_hot, point_predictions=point)
    return predictions


def best_classical(predictions: dict, metric_by_name: dict[str, float]) -> str:
    """The name of the classical baseline (logistic / gradient_boosting / svr) present in
    `predictions` with the lowest score in `metric_by_name` (lower is better; None scores
    are skipped). Raises FocusgroupError when none qualifies."""
    scored = [
        name for name in CLASSICAL
        if name in predictions and metric_by_name.get(name) is not None
    ]
    if not scored:
        raise FocusgroupError(
            "No classical baseline was fitted and scored; the question may have too few train answers."
        )
    return min(scored, key=lambda name: metric_by_name[name])
