"""engine.evaluate's report: baselines that never saw a question's answers kept apart from
those fitted on them, and scale_prior scored with its own slice version.

A fixed-logit model (every option equally likely) stands in for the language model, so the
numbers are the baselines' and the wiring's, not a network's.

Run: python -m pytest -q tests/test_evaluate.py
"""

from types import SimpleNamespace

import numpy as np
import pytest

import engine.evaluate as evaluate_module
from engine.baselines import fit_scale_prior
from engine.evaluate import EvaluationConfig, evaluate, slice_masks
from engine.metrics import answer_distribution, population_metrics
from engine.slices import describe_slice
from engine.surveys.split import split_index

QUESTIONS = ("natenrgy", "natspac")  # natenrgy is in gss2018's held-out set


@pytest.fixture(scope="module")
def result(gss):
    def equal_logits(loaded, question, fields, personas, **options):
        return np.zeros((len(personas), len(question.options)))

    loaded = SimpleNamespace(config=SimpleNamespace(name="equal logits"), tokenizer=None, context_length=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate_module, "option_logits", equal_logits)
        patch.setattr(evaluate_module, "check_prompt_fits", lambda *args, **kwargs: None)
        return evaluate(loaded, gss, EvaluationConfig(questions=QUESTIONS, min_slice=40))


def test_group_summaries_name_the_baselines_without_and_with_the_questions_answers(result):
    for group in ("all", "trained", "held_out"):
        summary = result["summary"][group]
        assert summary["no_data_baselines"] == ["scale_prior", "uniform"]
        assert summary["data_baselines"] == ["marginal", "logistic", "gradient_boosting", "svr"]
        named = summary["no_data_baselines"] + summary["data_baselines"]
        assert set(summary["slices"]["baselines"]) == set(named) == set(summary["individual"]["baselines"])
    assert result["summary"]["held_out"]["n_questions"] == 1


def test_scale_prior_is_scored_with_its_population_and_slice_versions(result, gss):
    question = gss.question("natenrgy")
    scored = next(q for q in result["questions"] if q["id"] == question.id)
    prior = fit_scale_prior(gss, question.id, split_index(gss, "train"))
    index = split_index(gss, "test")
    index = index[gss.answers.loc[index, question.id].to_numpy() >= 0]
    answers, weights = gss.answers.loc[index, question.id].to_numpy(), gss.weight_array(index)
    real = answer_distribution(answers, len(question.options), weights)
    assert scored["population"]["baselines"]["scale_prior"] == population_metrics(
        real, prior.population(), question.values)

    slices = slice_masks(gss, index, 40)
    assert [describe_slice(filters) for filters, _ in slices] == [block["slice"] for block in scored["slices"]]
    for (filters, members), block in zip(slices, scored["slices"]):
        real = answer_distribution(answers[members], len(question.options), weights[members])
        assert block["baselines"]["scale_prior"] == population_metrics(real, prior.for_slice(filters), question.values)


def test_a_model_with_equal_logits_scores_exactly_as_the_uniform_baseline(result):
    for question in result["questions"]:
        for block in [question["population"], *question["slices"]]:
            assert block["model"] == pytest.approx(block["baselines"]["uniform"])
        assert question["individual"]["model"] == pytest.approx(question["individual"]["baselines"]["uniform"])
