"""The prompt format: pinned text, token boundaries, answer tokens and reply parsing."""

import pytest

from engine.errors import FocusgroupError
from engine.prompts import answer_token_ids, parse_answer, render_persona, render_prompt
from engine.surveys.model import Option, Question

PINNED = (
    "<|im_start|>system\nYou are taking part in a survey. Act as the person described at the end of the "
    "message and answer exactly as they would. Do not break character.<|im_end|>\n<|im_start|>user\n"
    "First, read this:\n\"Mars by 2040.\"\n\n"
    "Question: We are faced with many problems in this country, none of which can be solved easily or "
    "inexpensively. I'm going to name some of these problems, and for each one I'd like you to tell me "
    "whether you think we're spending too much money on it, too little money, or about the right amount. "
    "Are we spending too much, too little, or about the right amount on the space exploration program?\n"
    "A. Too little\nB. About right\nC. Too much\nPlease reply with just the option letter.\n\n"
    "You are this person (age; sex; race; education; income; party; views; lives in; work):\n"
    "30-44; Male; White; Junior college; unknown; Not very strong Republican; Conservative; "
    "Unincorporated medium-city area; Temporarily not working<|im_end|>\n<|im_start|>assistant\n"
)


def test_rendered_prompt_is_pinned(tiny, gss):
    persona = render_persona(gss.fields, gss.demographics.loc["1"])
    prompt = render_prompt(tiny.tokenizer, gss.question("natspac"), gss.fields, persona, stimulus="Mars by 2040.")
    assert prompt.text == PINNED


def test_prefix_and_persona_tokenize_like_the_whole_prompt(tiny, gss):
    tokenizer = tiny.tokenizer
    for respondent in ["1", "2", "17"]:
        persona = render_persona(gss.fields, gss.demographics.loc[respondent])
        prompt = render_prompt(tokenizer, gss.question("natenrgy"), gss.fields, persona)
        whole = tokenizer(prompt.text, add_special_tokens=False).input_ids
        parts = (tokenizer(prompt.prefix, add_special_tokens=False).input_ids
                 + tokenizer(prompt.persona_part, add_special_tokens=False).input_ids)
        assert parts == whole


def test_prefix_does_not_depend_on_the_persona(tiny, gss):
    question = gss.question("natenrgy")
    first = render_prompt(tiny.tokenizer, question, gss.fields, "a; b")
    second = render_prompt(tiny.tokenizer, question, gss.fields, "c; d")
    assert first.prefix == second.prefix and first.persona_part != second.persona_part


def test_missing_demographics_read_unknown(gss):
    row = gss.demographics.loc["1"].copy()
    row["sex"] = None
    assert render_persona(gss.fields, row).split("; ")[1] == "unknown"


def test_option_letters_are_single_tokens_with_and_without_a_space(tiny, gss):
    ids = answer_token_ids(tiny.tokenizer, gss.question("natenrgy"))
    assert len(ids) == 3
    assert ids[0] == [tiny.tokenizer.encode("A")[0], tiny.tokenizer.encode(" A")[0]]
    assert len({token for variants in ids for token in variants}) == 6


def test_more_than_26_options_is_refused(tiny):
    options = tuple(Option((str(i),), f"option {i}", float(i)) for i in range(27))
    with pytest.raises(FocusgroupError, match="at most 26"):
        answer_token_ids(tiny.tokenizer, Question("big", "Pick one", "nominal", options))


@pytest.mark.parametrize("reply,expected", [
    ("B", 1), (" b.", 1), ("C) Too much", 2), ("About right", 1), ("too little, clearly", 0),
    ("", None), ("I would say", None), ("D", None),
    ("BB2B  C/B", 1), ("AC.B.A", 0), ("AABC A B. A", 0), ("Absolutely", None), ("Dear A", None),
])
def test_parse_answer_reads_the_first_valid_option(gss, reply, expected):
    assert parse_answer(reply, gss.question("natenrgy")) == expected
