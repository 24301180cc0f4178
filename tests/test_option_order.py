"""Options shown in another order: the prompt moves the labels, the scores come back in the survey's order."""

import numpy as np
import pytest
import torch

from engine.prompts import answer_token_ids, random_option_order, render_prompt, shown_order
from engine.scoring import option_token_groups, split_model, tokenize_prompts, batch_option_logprobs
from engine.surveys.model import Option, Question
from engine.training.config import TrainConfig
from engine.training.examples import build_examples, step_batch

FOUR = Question("pet", "Which pet?", "nominal", tuple(Option((str(i),), label, float(i))
                                                     for i, label in enumerate(["Cat", "Dog", "Fish", "Bird"])))


def test_the_identity_order_renders_the_default_prompt(tiny, gss):
    question = gss.question("natspac")
    default = render_prompt(tiny.tokenizer, question, gss.fields, "a; b")
    assert render_prompt(tiny.tokenizer, question, gss.fields, "a; b", option_order=(0, 1, 2)) == default


def test_a_reversed_order_lists_the_labels_bottom_up_under_the_same_letters(tiny, gss):
    prompt = render_prompt(tiny.tokenizer, gss.question("natspac"), gss.fields, "a; b", option_order=(2, 1, 0))
    assert "A. Too much\nB. About right\nC. Too little\nPlease reply" in prompt.prefix


def test_an_order_that_is_not_a_permutation_is_refused(gss):
    with pytest.raises(ValueError, match="permutation"):
        shown_order(gss.question("natspac"), (0, 0, 1))
    with pytest.raises(ValueError, match="permutation"):
        shown_order(gss.question("natspac"), (0, 1))


def test_each_option_reads_the_tokens_of_the_letter_it_is_shown_under(tiny):
    # Fish (2) shown as A, Cat (0) as B, Bird (3) as C, Dog (1) as D.
    by_letter = answer_token_ids(tiny.tokenizer, FOUR)
    flat, sizes = option_token_groups(tiny.tokenizer, FOUR, "cpu", option_order=(2, 0, 3, 1))
    groups = [ids.tolist() for ids in torch.split(flat, sizes)]
    assert groups == [by_letter[1], by_letter[3], by_letter[0], by_letter[2]]


def test_scores_of_a_permuted_prompt_come_back_in_the_survey_order(tiny, gss):
    """Option j's score is the probability of the letter it was shown under, read from a plain
    forward pass over the prompt rendered in that order."""
    question, order = gss.question("natspac"), (2, 0, 1)
    personas = ["30-44; Male", "18-29; Female; White"]
    tokenizer, model = tiny.tokenizer, tiny.model
    decoder, head = split_model(model)
    prefix_ids, suffixes = tokenize_prompts(tokenizer, question, gss.fields, personas, None, order)
    with torch.no_grad():
        cache = decoder(input_ids=prefix_ids, use_cache=True).cache
        scores = batch_option_logprobs(decoder, head, cache, suffixes,
                                       option_token_groups(tokenizer, question, "cpu", order), tokenizer.pad_token_id)
    by_letter = answer_token_ids(tokenizer, question)
    for row, persona in enumerate(personas):
        text = render_prompt(tokenizer, question, gss.fields, persona, option_order=order).text
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
        for position, option in enumerate(order):
            expected = float(logprobs[by_letter[position]].logsumexp(0))
            assert float(scores[row, option]) == pytest.approx(expected, abs=2e-4)
    identity = [by_letter[j] for j in range(3)]
    assert identity != [by_letter[order.index(j)] for j in range(3)]  # the order did move the letters


def test_scales_are_only_reversed_and_nominal_options_shuffled(gss):
    rng = np.random.default_rng(0)
    scale_orders = {random_option_order(gss.question("natspac"), rng) for _ in range(40)}
    assert scale_orders == {(0, 1, 2), (2, 1, 0)}
    nominal_orders = [random_option_order(FOUR, rng) for _ in range(200)]
    assert all(sorted(order) == [0, 1, 2, 3] for order in nominal_orders)
    assert len(set(nominal_orders)) == 24  # every permutation turns up
    first_shown = np.bincount([order[0] for order in nominal_orders], minlength=4)
    assert first_shown.min() > 25  # each option is shown as A about a quarter of the time


def test_a_step_draws_its_order_from_the_seed_and_the_step_alone(gss):
    examples = build_examples(gss, "train", 0, ())[:4]
    question = gss.question(examples[0].question_id)

    def order(seed, step):
        return step_batch(examples, question, TrainConfig(out="x", seed=seed, option_order="random"), None, None,
                          step).option_order

    assert order(0, 7) == order(0, 7)  # a resumed run sees the same order at the same step
    assert len({order(0, step) for step in range(20)}) == 2
    assert [order(0, step) for step in range(20)] != [order(1, step) for step in range(20)]
    assert step_batch(examples, question, TrainConfig(out="x"), None, None, 7).option_order is None  # the default


def test_a_reversed_scale_keeps_its_off_scale_options_in_place():
    options = tuple(Option((str(i),), label, float(i + 1), off_scale=label == "Don't know")
                    for i, label in enumerate(["Very", "Somewhat", "Not at all", "Don't know"]))
    question = Question("q", "How likely?", "ordinal", options)
    orders = {random_option_order(question, np.random.default_rng(seed)) for seed in range(20)}
    assert orders == {(0, 1, 2, 3), (2, 1, 0, 3)}
