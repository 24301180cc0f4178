"""The distribution term: KL(slice's real answers || its personas' mean prediction), by hand."""

import math

import numpy as np
import pytest
import torch

from engine.metrics import answer_distribution
from engine.surveys.split import split_index
from engine.training.config import TrainConfig
from engine.training.distribution import SliceTargets, distribution_loss
from engine.training.examples import Batch, SliceDraw, build_examples
from engine.training.loss import answer_loss
from engine.training.trainer import batch_loss


def test_kl_of_the_personas_mean_on_hand_computed_numbers():
    # Persona 1 puts 0.25 and 0.25 on the two options (half its mass elsewhere): 0.5 / 0.5
    # among the options; persona 2 puts 0.45 and 0.05: 0.9 / 0.1. Their mean is 0.7 / 0.3.
    logprobs = torch.log(torch.tensor([[0.25, 0.25], [0.45, 0.05]]))
    kl = distribution_loss(logprobs, torch.tensor([1.0, 1.0]), torch.tensor([0.6, 0.4]))
    assert float(kl) == pytest.approx(0.6 * math.log(0.6 / 0.7) + 0.4 * math.log(0.4 / 0.3), rel=1e-5)


def test_survey_weights_weigh_the_personas_mean():
    # Weights 3 and 1: q = 0.75 x (0.5, 0.5) + 0.25 x (0.9, 0.1) = (0.6, 0.4), which is p.
    logprobs = torch.log(torch.tensor([[0.25, 0.25], [0.45, 0.05]]))
    kl = distribution_loss(logprobs, torch.tensor([3.0, 1.0]), torch.tensor([0.6, 0.4]))
    assert float(kl) == pytest.approx(0.0, abs=1e-6)


def test_options_nobody_chose_add_nothing():
    logprobs = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    kl = distribution_loss(logprobs, torch.tensor([1.0]), torch.tensor([1.0, 0.0, 0.0]))
    assert float(kl) == pytest.approx(-math.log(0.5), rel=1e-5)


def test_the_step_loss_adds_the_weighted_kl_of_the_slice_rows(gss):
    examples = tuple(build_examples(gss, "train", 0, ())[:2])
    drawn = SliceDraw("sex = Female", ("p1", "p2"), (1.0, 1.0), (0.2, 0.5, 0.3))
    rows = torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]))
    config = TrainConfig(out="unused", distribution_loss_weight=0.5)
    loss, parts = batch_loss(lambda batch: rows, {gss.id: gss}, Batch(examples, None, drawn), config)
    targets = torch.tensor([example.target for example in examples])
    answer, _ = answer_loss(rows[:2], targets, torch.tensor(gss.question(examples[0].question_id).values),
                            config.numeric_loss_weight, config.numeric_loss_width)
    q = np.array([[0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]).mean(axis=0)
    kl = sum(p * math.log(p / qj) for p, qj in zip((0.2, 0.5, 0.3), q))
    assert parts["distribution"] == pytest.approx(kl, rel=1e-5)
    assert float(loss) == pytest.approx(float(answer) + 0.5 * kl, rel=1e-5)


def test_slice_targets_are_weighted_train_split_distributions_of_trained_questions(data_dir):
    from engine.surveys import load_survey

    survey = load_survey("non-voters", data_dir)  # a weighted survey
    held_out = {survey.id: ("Q8_3", "Q3_4")}
    targets = SliceTargets({survey.id: survey}, held_out, 0, min_respondents=30)
    assert not {question for _, question in targets.slices} & {"Q8_3", "Q3_4"}
    field = survey.fields[0]
    value = field.values[0]
    train = split_index(survey, "train", 0)
    members = train[(survey.demographics.loc[train, field.name] == value).to_numpy()
                    & (survey.answers.loc[train, "Q2_1"] != -1).to_numpy()]
    expected = answer_distribution(survey.answers.loc[members, "Q2_1"].to_numpy(),
                                   len(survey.question("Q2_1").options), survey.weight_array(members))
    found = {description: target for description, _, _, target in targets.slices[(survey.id, "Q2_1")]}
    np.testing.assert_allclose(found[f"{field.name} = {value}"], expected)
    assert not np.allclose(expected, answer_distribution(survey.answers.loc[members, "Q2_1"].to_numpy(),
                                                         len(survey.question("Q2_1").options)))
    drawn = targets.draw(survey.id, "Q2_1", 16, np.random.default_rng(0))
    assert len(drawn.personas) == len(drawn.weights) == 16 and sum(drawn.target) == pytest.approx(1.0)
    assert targets.draw(survey.id, "Q8_3", 16, np.random.default_rng(0)) is None


def test_slices_smaller_than_the_minimum_are_not_targets(gss):
    targets = SliceTargets({gss.id: gss}, {gss.id: ()}, 0, min_respondents=10_000)
    assert targets.slices == {}
