"""What `focusgroup simulate` asks, and what the model never trained on.

    focusgroup simulate --question natenrgy --slice partyid="strong democrat"
    focusgroup simulate --ask "How likely would you be to buy an electric car in the next 3 years?" \\
        --options "Very likely" "Somewhat likely" "Not very likely" "Not at all likely" [--scale ordinal|nominal] \\
        [--positive first|last]

The question is either one of the survey's (`--question ID`) or a new one that no respondent
answered (`--ask TEXT --options A B ...`), never both. A new question takes the same engine
path as the dashboard's new product question: a `Question` with id NEW_QUESTION_ID whose
options are valued 1..k in the order given, ordinal unless `--scale nominal`, its favourable
end the first option unless `--positive last` (`engine.surveys.model.Question`). With no real
answers there is no real distribution, noise floor or baseline, so a pilot cannot be drawn
from the survey (`--pilot-size`); a pilot CSV of answers collected elsewhere (`--pilot FILE`)
works.

`training_warnings` says, in sentences for the table and the JSON `warnings` list, when the
model never trained on the survey or the question: the bare model, an adapter whose
manifest does not list the survey, a question held out of the adapter's training, and any
new question (`engine.models.unseen_questions`); and when the adapter never trained on a
question with as many options (`engine.option_counts`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.errors import FocusgroupError, capped
from engine.surveys.model import DEFAULT_POSITIVE, POSITIVE_ENDS, Option, Question, Survey
from engine.surveys.spec import MAX_OPTIONS

NEW_QUESTION_ID = "new_question"  # the dashboard's id for a new product question
NEW_QUESTION_SCALES = ("ordinal", "nominal")
DEFAULT_SCALE = "ordinal"
UNSEEN_ADVICE = ("its overall level on answers it never trained on can be far off; treat the simulated "
                 "distribution as a hypothesis (`focusgroup evaluate` measures trained and held-out questions "
                 "side by side).")


def add_question_options(parser: argparse.ArgumentParser) -> None:
    """--question, or --ask with --options, --scale and --positive (checked in `asked_question`)."""
    group = parser.add_argument_group("the question (--question ID, or a new one with --ask TEXT --options ...)")
    group.add_argument("--question", metavar="ID", help="question id (see `focusgroup questions`)")
    group.add_argument("--ask", metavar="TEXT",
                       help="ask a new question that is not in the survey (no real answers to compare with)")
    group.add_argument("--options", nargs="+", metavar="OPTION",
                       help="the new question's answer options, in order (at least two)")
    group.add_argument("--scale", choices=NEW_QUESTION_SCALES,
                       help=f"the new question's options are in order (ordinal) or not (nominal) "
                            f"(default: {DEFAULT_SCALE})")
    group.add_argument("--positive", choices=POSITIVE_ENDS,
                       help=f"the favourable end (top box) of an ordinal new question's options "
                            f"(default: {DEFAULT_POSITIVE})")


def new_question(text: str, options: list[str], scale: str = DEFAULT_SCALE,
                 positive: str | None = None) -> Question:
    """The `Question` for `--ask TEXT --options ...`, built as the dashboard builds a new
    product question: id NEW_QUESTION_ID, option i coded str(i) with value i + 1, labels and
    text stripped, `positive` DEFAULT_POSITIVE when None. Refuses a blank text, fewer than
    two options, a blank or repeated (ignoring case and surrounding spaces) option, more
    than MAX_OPTIONS, a scale other than ordinal or nominal, and any `positive` on a
    nominal scale (it has no favourable end)."""
    if not text.strip():
        raise FocusgroupError("--ask is blank; write the question to ask, e.g. --ask \"How likely would you be "
                              "to buy it?\".")
    labels = [label.strip() for label in options]
    for position, label in enumerate(labels, start=1):
        if not label:
            raise FocusgroupError(f"Option {position} of --options is blank; write its label or remove it.")
    seen: dict[str, str] = {}
    for label in labels:
        if label.casefold() in seen:
            first = seen[label.casefold()]
            also = "" if first == label else f" (as {capped(label)!r})"
            raise FocusgroupError(f"--options repeats {capped(first)!r}{also}; give every option its own label.")
        seen[label.casefold()] = label
    if len(labels) < 2:
        shown = f" ({capped(labels[0])!r})" if labels else ""
        raise FocusgroupError(f"--options has {len(labels)} option{shown}; a question needs at least two distinct "
                              "answer options, e.g. --options Yes No.")
    if len(labels) > MAX_OPTIONS:
        raise FocusgroupError(f"--options has {len(labels)} options; at most {MAX_OPTIONS} can be asked (A-Z).")
    if scale not in NEW_QUESTION_SCALES:
        raise FocusgroupError(f"--scale {scale!r} is not a scale for a new question; use "
                              f"{' or '.join(NEW_QUESTION_SCALES)}.")
    if scale == "nominal" and positive is not None:
        raise FocusgroupError("--positive names the favourable end of ordered options, and --scale nominal has "
                              "none; drop --positive or use --scale ordinal.")
    return Question(id=NEW_QUESTION_ID, text=text.strip(), type=scale,
                    options=tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(labels)),
                    positive=positive or DEFAULT_POSITIVE)


def check_question_choice(args: argparse.Namespace) -> None:
    """Exactly one of --question and --ask; --options, --scale and --positive only with --ask;
    no --pilot-size with --ask, since no respondent answered a new question."""
    if args.ask is not None and args.question is not None:
        raise FocusgroupError("--ask and --question contradict each other; pass --question ID for a survey "
                              "question or --ask TEXT --options ... for a new one.")
    if args.ask is None and args.question is None:
        raise FocusgroupError("No question to simulate; pass --question ID (see `focusgroup questions`) or "
                              "--ask TEXT --options A B ... for a new question.")
    if args.ask is None:
        extra = [name for name, value in (("--options", args.options), ("--scale", args.scale),
                                          ("--positive", args.positive)) if value is not None]
        if extra:
            raise FocusgroupError(f"{extra[0]} describes a new question asked with --ask; drop it, or ask the new "
                                  "question with --ask TEXT.")
        return
    if not args.options:
        raise FocusgroupError("--ask needs the answer options: add --options \"Very likely\" \"Somewhat likely\" "
                              "\"Not very likely\" \"Not at all likely\" (at least two).")
    if getattr(args, "pilot_size", None) is not None:
        raise FocusgroupError("--pilot-size draws real respondents' answers, and no respondent answered a new "
                              "question (--ask); pass --pilot FILE with answers collected elsewhere, or drop "
                              "--pilot-size.")


def asked_question(args: argparse.Namespace, survey: Survey) -> Question:
    """The question `focusgroup simulate` asks: the survey's --question, or the --ask one."""
    check_question_choice(args)
    if args.ask is None:
        return survey.question(args.question)
    return new_question(args.ask, args.options, args.scale or DEFAULT_SCALE, args.positive)


def training_warnings(adapter: str | Path | None, survey: Survey, question: Question) -> list[str]:
    """Sentences on what the model never trained on, empty when it trained on this survey
    question: the bare model (no adapter), an adapter whose manifest does not list the survey
    (or has none), the question held out of the adapter's training, or a new question; and,
    besides any of those, an adapter that never trained on a question with this many options
    (`engine.option_counts`)."""
    from engine.option_counts import option_count_warning

    warnings = (unseen_warning(adapter, survey, question), option_count_warning(adapter, question))
    return [warning for warning in warnings if warning]


def unseen_warning(adapter: str | Path | None, survey: Survey, question: Question) -> str | None:
    """The sentence of `training_warnings` on the survey and the question, None when the
    adapter trained on both."""
    from engine.models import adapter_manifest, trained_surveys, unseen_questions

    if adapter is None:
        return (f"The model was not fine-tuned on {survey.id} (no adapter): it answers from pretraining "
                f"alone, and {UNSEEN_ADVICE}")
    name = Path(adapter).name
    if survey.id not in trained_surveys(adapter_manifest(adapter)):
        return f"The adapter {name} was not trained on {survey.id} (its manifest does not list it), so {UNSEEN_ADVICE}"
    if not any(known == question for known in survey.questions):
        return f"The adapter {name} trained on {survey.id} but never on this new question, so {UNSEEN_ADVICE}"
    if question.id in unseen_questions(adapter, survey):
        return f"{question.id} was held out of the adapter {name}'s training on {survey.id}, so {UNSEEN_ADVICE}"
    return None


__all__ = ["NEW_QUESTION_ID", "add_question_options", "asked_question", "check_question_choice", "new_question",
           "training_warnings"]
