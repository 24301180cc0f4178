"""Personas and prompts: the one owner of the prompt format.

A respondent's demographics become a persona; the persona is asked one survey question and
told to reply with one option letter. Everything that reads answers from a model goes
through `render_prompt` and `answer_token_ids`, and `tests/test_prompts.py` pins the exact
rendered string, so the format cannot drift silently (bump PROMPT_VERSION when it changes:
cached logits are keyed by it).

Decisions recorded here:
- The question comes before the persona. Every persona asked the same question then
  shares the whole prompt up to the persona, so the engine runs that shared prefix through
  the model once and only the short persona part per respondent (`engine.scoring`).
  The prefix ends on a newline, so tokenizing prefix and persona separately gives the same
  tokens as tokenizing the whole prompt (a test checks this).
- Options are labelled A, B, C... The assistant's reply starts right after the chat
  template's "assistant" line, so its first token is "A" with no leading space; " A" is a
  different token, and some models prefer it. The answer probability of an option is read
  from both variants, combined with log-sum-exp (as OpinionQA checks both).
- The persona is one line of values ("30-44; Female; White; ...") under a header that names
  the fields once ("You are this person (age; sex; race; ...):"). The header belongs to
  the shared prefix, so each respondent costs only the tokens of their own values: about
  35 tokens instead of 55 with a "Field: value" line each, which is what makes logit
  read-out many times faster than generating text. Unknown values read "unknown".
- The optional stimulus (an ad, a concept description, a message) is shown before the
  question: the paper's intervention slot and a market researcher's concept test.
- A twin (`engine.twins`) is a persona that carries some of the respondent's own answers to
  other questions of the survey, one line each under the demographic line:
  `Earlier, asked "<question text>", they answered "<option label>".` They belong to the
  persona part, so the shared prefix is unchanged and each twin costs its own lines only.
  Where a context question begins with the asked question's wording (a battery's shared
  preamble of 8 words or more), that part is shown as "..." (GSS: 80 tokens a line become 10).
  A persona without context answers renders exactly as before (version 3 added the lines).
- Options may be shown in another order (`option_order`, a permutation: `option_order[i]`
  is the original option shown under the i-th letter). Training draws one
  (`random_option_order`) so that the model cannot learn that "A" tends to be the answer;
  inference shows the identity order, whose text is the pinned one (no PROMPT_VERSION
  change). Letters always run A, B, C... down the list; only the labels move, and whoever
  reads the letters' scores maps position i back to option `option_order[i]`
  (`engine.scoring.option_token_groups`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.surveys.model import DemographicField, Question

PROMPT_VERSION = "3"
OPTION_LETTERS = string.ascii_uppercase

SYSTEM_PROMPT = (
    "You are taking part in a survey. Act as the person described at the end of the "
    "message and answer exactly as they would. Do not break character."
)
REPLY_INSTRUCTION = "Please reply with just the option letter."
UNKNOWN_VALUE = "unknown"
ELIDED_WORDS = 8


def option_letters(question: Question) -> list[str]:
    """The label shown before each option: A, B, C..."""
    if len(question.options) > len(OPTION_LETTERS):
        raise FocusgroupError(
            f"Question {question.id!r} has {len(question.options)} options; at most "
            f"{len(OPTION_LETTERS)} can be shown to the model."
        )
    return list(OPTION_LETTERS[: len(question.options)])


def shown_order(question: Question, option_order: tuple[int, ...] | None) -> tuple[int, ...]:
    """The options in the order shown (identity for None); refuses anything but a permutation."""
    count = len(question.options)
    if option_order is None:
        return tuple(range(count))
    order = tuple(int(index) for index in option_order)
    if sorted(order) != list(range(count)):
        raise ValueError(f"option_order {option_order} is not a permutation of {count} options")
    return order


def random_option_order(question: Question, rng: np.random.Generator) -> tuple[int, ...]:
    """A training order: any permutation for a nominal question (its order means nothing);
    for an ordinal or numeric one the scale as it is or reversed, with equal chances, so the
    options stay a scale and only its direction moves (off-scale options keep their place)."""
    count = len(question.options)
    if not question.is_scale:
        return tuple(int(index) for index in rng.permutation(count))
    ascending = tuple(range(count))
    if rng.random() >= 0.5:
        return ascending
    # Reversed: the scale's options swap ends; off-scale ones ("Don't know") stay where listed.
    on_scale = [index for index in ascending if not question.options[index].off_scale]
    flipped = iter(on_scale[::-1])
    return tuple(next(flipped) if not question.options[index].off_scale else index for index in ascending)


def render_persona(fields: tuple[DemographicField, ...], row: pd.Series) -> str:
    """The respondent's values in field order, "; "-separated, "unknown" where missing."""
    values = []
    for field in fields:
        value = row.get(field.name)
        values.append(UNKNOWN_VALUE if value is None or pd.isna(value) else str(value))
    return "; ".join(values)


def context_line(question: Question, answer: int, asked: Question | None = None) -> str:
    """One earlier answer of a twin: the question's text and the label of option `answer`.
    Wording the asked question's text begins with too (a battery's shared preamble, at least
    ELIDED_WORDS words) is already in the prompt, so it is shown as "..." with the rest."""
    words = question.text.split()
    if asked is not None:
        shared = 0
        for mine, theirs in zip(words, asked.text.split()):
            if mine != theirs:
                break
            shared += 1
        if ELIDED_WORDS <= shared < len(words):
            words = ["..."] + words[shared:]
    return f'Earlier, asked "{" ".join(words)}", they answered "{question.labels[answer]}".'


def render_twin(persona: str, context: list[str]) -> str:
    """A persona line followed by its context lines (`context_line`); the bare persona
    when there are none."""
    return "\n".join([persona, *context])


def persona_header(fields: tuple[DemographicField, ...]) -> str:
    """The line that names the persona's fields: "You are this person (age; sex; ...):"."""
    return f"You are this person ({'; '.join(field.label.lower() for field in fields)}):"


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt split where personas begin: `prefix + persona_part` is the whole text."""

    prefix: str
    persona_part: str

    @property
    def text(self) -> str:
        return self.prefix + self.persona_part


def question_block(question: Question, stimulus: str | None = None,
                   option_order: tuple[int, ...] | None = None) -> str:
    """The question with its lettered options (in `option_order`) and the reply instruction."""
    parts = []
    if stimulus and stimulus.strip():
        parts.append(f"First, read this:\n\"{stimulus.strip()}\"\n")
    parts.append(f"Question: {question.text.strip()}")
    labels = question.labels
    for letter, index in zip(option_letters(question), shown_order(question, option_order)):
        parts.append(f"{letter}. {labels[index]}")
    parts.append(REPLY_INSTRUCTION)
    return "\n".join(parts)


PERSONA_SLOT = "\x00persona\x00"


def render_prompt(
    tokenizer, question: Question, fields: tuple[DemographicField, ...], persona: str, stimulus: str | None = None,
    option_order: tuple[int, ...] | None = None,
) -> Prompt:
    """The full prompt for one persona (`render_persona`) and question, through the model's
    chat template. Models without a chat template get the same messages as plain
    "System:/User:/Assistant:" turns. `option_order` (default: as the survey lists them)
    is the order the options are shown in.
    """
    user = f"{question_block(question, stimulus, option_order)}\n\n{persona_header(fields)}\n{PERSONA_SLOT}"
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = f"System: {SYSTEM_PROMPT}\n\nUser: {user}\n\nAssistant:"
    prefix, _, rest = text.partition(PERSONA_SLOT)
    return Prompt(prefix=prefix, persona_part=persona + rest)


def check_prompt_fits(
    tokenizer, context_length: int | None, question: Question, fields: tuple[DemographicField, ...],
    personas: list[str], stimulus: str | None = None, reply_tokens: int = 0,
) -> None:
    """Refuse a prompt (with the longest persona, plus `reply_tokens` to generate) that is
    longer than the model's context: past it a model reads positions it never learned and
    answers without a word of warning. A context_length of None (unknown) is not checked."""
    if context_length is None or not personas:
        return
    longest = max(personas, key=len)
    text = render_prompt(tokenizer, question, fields, longest, stimulus).text
    needed = len(tokenizer(text, add_special_tokens=False).input_ids) + reply_tokens
    if needed > context_length:
        raise FocusgroupError(
            f"The prompt for question {question.id!r} needs {needed:,} tokens, but the model reads at most "
            f"{context_length:,}; shorten the stimulus or the question."
        )


def answer_token_ids(tokenizer, question: Question) -> list[list[int]]:
    """For each option, the token ids that start an answer with its letter ("A" and " A").

    Raises FocusgroupError when a letter is not a single token for this tokenizer, since
    its probability could then not be read from one forward pass.
    """
    ids = []
    for letter in option_letters(question):
        variants = []
        for text in (letter, " " + letter):
            tokens = tokenizer.encode(text, add_special_tokens=False)
            if len(tokens) == 1 and tokens[0] not in variants:
                variants.append(tokens[0])
        if not variants:
            raise FocusgroupError(
                f"The model's tokenizer has no single token for the option letter {letter!r}; "
                "choose a model with a byte-pair or sentencepiece vocabulary (Llama, Mistral, Qwen)."
            )
        ids.append(variants)
    return ids


def parse_answer(text: str, question: Question) -> int | None:
    """The option index named by a generated reply ("B", "B.", " b) About right"), or None.

    The first letter-like token of the reply decides; a capital option letter run into more
    capitals or punctuation ("BB2", "AC.B": fine-tuned models never stop after the letter)
    counts as that letter, but not one that starts a word ("About"). A reply that starts by
    repeating an option label verbatim counts too.
    """
    letters = option_letters(question)
    stripped = text.strip()
    if not stripped:
        return None
    first = stripped.split()[0].strip(".):,*\"'").upper()
    if first in letters:
        return letters.index(first)
    lead, after = stripped[0], stripped[1:2]
    if lead in letters and not after.islower():
        return letters.index(lead)
    lowered = stripped.casefold()
    for index, label in enumerate(question.labels):
        if lowered.startswith(label.casefold()):
            return index
    return None
