"""Baselines: what a researcher can predict without any language model.

A simulated focus group is only interesting if it beats these. For one question, each
baseline is fitted on the train respondents and predicts an [n, k] matrix of option
probabilities for the requested (usually test) respondents. Two kinds, kept apart because
they answer different questions:

Without the question's answers (what a researcher has for a brand-new question):

* uniform: 1/k for every option;
* scale_prior: how the survey's *other* questions on the same scale were answered
  (`ScalePrior`), the fair yardstick for a question the model never saw.

With the question's answers (fitted on the train respondents who answered it):

* marginal: the survey-weighted train answer distribution, the same for everyone;
* logistic: multinomial logistic regression on one-hot demographics;
* gradient_boosting: histogram gradient-boosted trees on the same features;
* svr: support vector regression of the option's scale value (scale questions only). Its
  raw prediction c is kept as `point_predictions` (individual RMSE and MAE score it). Its
  probabilities are a Gaussian N(c, sigma^2) discretised onto the options: with the option
  values sorted, v_1 < ... < v_k, and the edges e_j = (v_j + v_{j+1}) / 2 between
  neighbours, option j gets Phi((e_j - c) / sigma) - Phi((e_{j-1} - c) / sigma), with
  e_0 = -inf and e_k = +inf (the end options take the tails), floored at
  PROBABILITY_FLOOR and renormalised. sigma is the survey-weighted root-mean-square
  residual of the same SVR predicted out of fold (SVR_FOLDS seeded folds of the train
  answers, each predicted by an SVR fitted on the others with the same sample weights), so
  the spread is what the regression gets wrong on answers it did not see. A one-hot
  distribution on the nearest option, the obvious alternative, gives a wrong nearest
  option probability ~0 and a log loss far worse than uniform's.

Score the results with `engine.metrics.individual_metrics`. Run the checks with
`python -m pytest -q tests/test_baselines.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from scipy.special import ndtr
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits

from engine.errors import FocusgroupError
from engine.metrics import PROBABILITY_FLOOR, answer_distribution
from engine.slices import slice_index
from engine.surveys.model import MISSING, Survey

# Strongest first within each kind; reports list the no-data kind before the data-fitted one.
NO_DATA_BASELINES = ("scale_prior", "uniform")
DATA_BASELINES = ("marginal", "logistic", "gradient_boosting", "svr")
BASELINES = ("uniform", "scale_prior", "marginal", "logistic", "gradient_boosting", "svr")
CLASSICAL = ("logistic", "gradient_boosting", "svr")
# Below this many train answers a fitted model is noise; only the trivial baselines run.
MIN_TRAIN_ANSWERS = 20
# Folds of the train answers that measure SVR's residual spread out of fold.
SVR_FOLDS = 5


@dataclass
class BaselinePrediction:
    """One baseline's predictions for the requested respondents, rows in index order.

    A group's predicted distribution is the weighted mean of its members' rows, except for
    a baseline with `group_distribution` (scale_prior), which defines its own slice
    version: `group_distribution(filters)` gives the distribution for the slice `filters`
    (None or {} = everyone)."""

    name: str
    probabilities: np.ndarray  # [n_test, k], rows sum to 1
    point_predictions: np.ndarray | None = None  # [n_test] scale values (svr only)
    group_distribution: Callable[[Mapping | None], np.ndarray] | None = None


def same_scale_questions(survey: Survey, question_id: str) -> tuple[str, ...]:
    """The other questions of `survey` whose answers stand in for a new question's.

    The rule: the questions with the same option labels in the same order (compared
    ignoring case and surrounding spaces), i.e. the same scale; only when there is none,
    the questions with the same number of options and the same type (ordinal / nominal /
    numeric), whose k-th option is taken to mean the same as the question's k-th. Every
    other question of the survey is a candidate, held-out ones included: a researcher
    adding a question has the answers to all the others, never to this one.
    """
    question = survey.question(question_id)
    others = [other for other in survey.questions if other.id != question.id]

    def folded(labels):
        return [label.strip().casefold() for label in labels]

    same_labels = tuple(other.id for other in others if folded(other.labels) == folded(question.labels))
    if same_labels:
        return same_labels
    return tuple(other.id for other in others
                 if len(other.options) == len(question.options) and other.type == question.type)


@dataclass(frozen=True)
class ScalePrior:
    """The scale_prior baseline of one question: the survey's answers to its same-scale
    questions (`same_scale_questions`) on the train split, averaged over any group.

    With w the survey weights and Q running over the same-scale questions that have a
    train answer of positive weight:

    - dist_Q(G)[j] = sum_{i in G} w_i [a_iQ = j] / sum_{i in G} w_i [a_iQ answered], the
      weighted answer shares of Q among the train respondents in group G; where nobody in
      G answered Q (or their weights sum to 0), dist_Q(train) stands in;
    - population: mean over Q of dist_Q(train), each question counted once;
    - slice S: mean over Q of dist_Q(train respondents in S);
    - respondent r (for individual scores): mean over the demographic fields f on which r's
      value v is known of the slice version for {f: v}; the population version when no
      value is known. Joint cells (age x sex x ...) are mostly empty at survey sizes,
      single-field slices are what `engine.evaluate` scores, and averaging them uses
      every field without fitting anything.

    When no question shares the scale, every version is uniform (1/k).
    """

    survey: Survey
    k: int
    sources: tuple[str, ...]
    train_index: pd.Index
    weighted_answers: np.ndarray  # [n_train, n_sources, k]: w_i where a_iQ = j, else 0

    def _distribution(self, members: np.ndarray) -> np.ndarray:
        """Mean over sources of each one's distribution among the train rows in `members`."""
        if not self.sources:
            return np.full(self.k, 1.0 / self.k)
        whole = self.weighted_answers.sum(axis=0)
        whole = whole / whole.sum(axis=1, keepdims=True)
        counts = self.weighted_answers[members].sum(axis=0)
        totals = counts.sum(axis=1, keepdims=True)
        per_question = np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), whole)
        return per_question.mean(axis=0)

    def population(self) -> np.ndarray:
        return self._distribution(np.ones(len(self.train_index), dtype=bool))

    def for_slice(self, filters: Mapping | None = None) -> np.ndarray:
        """The slice version for `filters` (field -> accepted values); None is everyone."""
        if not filters:
            return self.population()
        members = self.train_index.isin(slice_index(self.survey, filters, within=self.train_index))
        return self._distribution(members)

    def for_respondents(self, index: pd.Index) -> np.ndarray:
        """The [n, k] individual predictions for the respondents in `index`."""
        demographics = self.survey.demographics.loc[index]
        train_demographics = self.survey.demographics.loc[self.train_index]
        total = np.zeros((len(index), self.k))
        known = np.zeros(len(index))
        for demographic in self.survey.fields:
            column, train_column = demographics[demographic.name], train_demographics[demographic.name]
            for value in demographic.values:
                rows = (column == value).to_numpy(dtype=bool)
                if rows.any():  # the slice version for {field: value}, without a pandas query per value
                    total[rows] += self._distribution((train_column == value).to_numpy(dtype=bool))
                    known[rows] += 1
        unknown = known == 0
        total[unknown] = self.population()
        known[unknown] = 1
        return total / known[:, None]


def fit_scale_prior(survey: Survey, question_id: str, train_index: pd.Index) -> ScalePrior:
    """The scale_prior of `question_id` from the train respondents in `train_index`; it
    never reads the question's own answers."""
    question = survey.question(question_id)
    k = len(question.options)
    weights = survey.weight_array(train_index)
    sources, blocks = [], []
    for other in same_scale_questions(survey, question.id):
        answers = survey.answers.loc[train_index, other].to_numpy().astype(int)
        one_hot = (answers[:, None] == np.arange(k)[None, :]) * weights[:, None]
        if one_hot.sum() > 0:
            sources.append(other)
            blocks.append(one_hot)
    weighted = np.stack(blocks, axis=1) if blocks else np.zeros((len(train_index), 0, k))
    return ScalePrior(survey, k, tuple(sources), train_index, weighted)


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


def context_features(survey: Survey, index: pd.Index, context: Sequence[str]) -> np.ndarray:
    """One-hot answers to the `context` questions for `index` (one column per option plus
    one for "did not answer" per question): what a twin shows the model, for the baselines."""
    blocks = []
    for question_id in context:
        k = len(survey.question(question_id).options)
        answers = survey.answers.loc[index, question_id].to_numpy().astype(int)
        block = np.zeros((len(index), k + 1))
        block[np.arange(len(index)), np.where(answers >= 0, answers, k)] = 1.0
        blocks.append(block)
    return np.hstack(blocks) if blocks else np.zeros((len(index), 0))


def _floored(probabilities: np.ndarray) -> np.ndarray:
    """Rows floored at PROBABILITY_FLOOR and renormalised, so no option is exactly 0."""
    probabilities = np.maximum(probabilities, PROBABILITY_FLOOR)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def _full_probabilities(classes: np.ndarray, probabilities: np.ndarray, k: int) -> np.ndarray:
    """Place a classifier's columns (only the classes seen in training) onto all k options,
    then floor and renormalise so an unseen option keeps a tiny, finite probability."""
    full = np.zeros((probabilities.shape[0], k))
    full[:, classes.astype(int)] = probabilities
    return _floored(full)


def gaussian_option_probabilities(centres: np.ndarray, sigma: float, values: np.ndarray) -> np.ndarray:
    """The [n, k] discretised Gaussian of the module docstring: row i is N(centres[i],
    sigma^2) integrated over each option's interval of the scale (edges halfway between
    neighbouring option values, the end options open-ended), floored and renormalised.
    `values` are the options' scale values in option order, in any direction."""
    centres, values = np.asarray(centres, dtype=float), np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ascending = values[order]
    edges = (ascending[1:] + ascending[:-1]) / 2
    sigma = max(float(sigma), 1e-9)  # a perfect fit: all the mass on the option whose interval holds c
    below = ndtr((edges[None, :] - centres[:, None]) / sigma)  # [n, k - 1]: P(value <= edge)
    cumulative = np.hstack([np.zeros((len(centres), 1)), below, np.ones((len(centres), 1))])
    probabilities = np.empty((len(centres), len(values)))
    probabilities[:, order] = np.diff(cumulative, axis=1)
    return _floored(probabilities)


def _fit_svr(x: np.ndarray, target: np.ndarray, weights: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """An SVR of the scale value, fitted on `x`; returns features -> predicted scale values."""
    # Standardise the target: SVR's epsilon tube is absolute, scales differ (1-3, 0-100).
    centre, spread = target.mean(), target.std() or 1.0
    model = SVR(C=1.0, epsilon=0.1)
    model.fit(x, (target - centre) / spread, sample_weight=weights)
    return lambda features: model.predict(features) * spread + centre


def svr_residual_sd(x: np.ndarray, target: np.ndarray, weights: np.ndarray, seed: int,
                    folds: int = SVR_FOLDS) -> float:
    """sqrt(sum_i w_i (t_i - t^_i)^2 / sum_i w_i): the weighted root-mean-square residual of
    the SVR predicted out of fold, t^_i from an SVR fitted (with the same weights) on the
    other `folds` - 1 seeded folds."""
    fold = np.random.default_rng(seed).permutation(len(target)) % folds
    residuals = np.empty(len(target))
    for held in range(folds):
        out = fold == held
        residuals[out] = target[out] - _fit_svr(x[~out], target[~out], weights[~out])(x[out])
    return float(np.sqrt(np.average(np.square(residuals), weights=weights)))


def fit_baselines(
    survey: Survey,
    question_id: str,
    train_index: pd.Index,
    test_index: pd.Index,
    seed: int = 0,
    names=BASELINES,
    context: Sequence[str] = (),
) -> dict[str, BaselinePrediction]:
    """Fit the named baselines on the train respondents in `train_index` and predict for
    every respondent in `test_index`.

    The data-fitted baselines use the train respondents who answered `question_id`, the
    scale_prior their answers to the other same-scale questions. Survey weights (normalised
    to mean 1) are used as sample weights throughout. `svr` is skipped for nominal
    questions and for those with off-scale options (no value to regress on); when train
    holds fewer than MIN_TRAIN_ANSWERS answers, or only one distinct answer, only uniform,
    scale_prior and marginal are returned. `context` (question ids, see `engine.twins`) adds
    the respondents' answers to those questions to the features of the fitted models, so
    they see what a twin shows the model; it must not hold the question itself.
    """
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise FocusgroupError(f"Unknown baseline(s) {unknown}; use any of {', '.join(BASELINES)}.")
    question = survey.question(question_id)
    if question.id in context:
        raise FocusgroupError(f"Question {question.id!r} cannot be a feature of its own baselines.")
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

    # Phase 2: the baselines that need no features.
    if "uniform" in names:
        predictions["uniform"] = BaselinePrediction("uniform", np.full((n_test, k), 1.0 / k))
    if "scale_prior" in names:
        prior = fit_scale_prior(survey, question.id, train_index)
        predictions["scale_prior"] = BaselinePrediction(
            "scale_prior", prior.for_respondents(test_index), group_distribution=prior.for_slice
        )
    if "marginal" in names:
        marginal = answer_distribution(y, k, weights)
        predictions["marginal"] = BaselinePrediction("marginal", np.tile(marginal, (n_test, 1)))
    if not fit_models:
        return predictions

    # Phase 3: models on one-hot demographics (and context answers).
    x_train = np.hstack([demographic_features(survey, train_index), context_features(survey, train_index, context)])
    x_train = x_train[answered]
    x_test = np.hstack([demographic_features(survey, test_index), context_features(survey, test_index, context)])
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
    if "svr" in names and question.is_scale and not question.off_scale_labels:
        values = question.values
        target = values[y]
        point = _fit_svr(x_train, target, weights)(x_test)
        sigma = svr_residual_sd(x_train, target, weights, seed)
        predictions["svr"] = BaselinePrediction(
            "svr", gaussian_option_probabilities(point, sigma, values), point_predictions=point
        )
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
