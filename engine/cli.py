"""The `focusgroup` command line: a thin client of the engine.

    focusgroup surveys [--data-dir D] [--format json]
    focusgroup questions --survey gss2018
    focusgroup simulate --survey gss2018 --question natenrgy --slice partyid="strong democrat"
    focusgroup simulate --ask "Would you buy it?" --options Yes Maybe No
    focusgroup evaluate --survey gss2018 --split test --format json
    focusgroup train --survey gss2018 --method lora --out adapters/gss2018
    focusgroup benchmark scoring --format json

Every user mistake ends with one line on stderr naming the problem and the fix, and exit
status 2 (`main` lists the other statuses); long work shows a progress bar on stderr, so
stdout stays clean for --format json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from engine.ask_command import add_question_options, asked_question, training_warnings
from engine.atomic import finite_json
from engine.errors import FocusgroupError, one_line
from engine.pilot_command import (
    add_pilot_evaluation_options,
    add_pilot_options,
    check_pilot_mode,
    pilot_block,
    pilot_evaluation,
    pilot_evaluation_table,
    pilot_table,
)
from engine.banner_command import add_banner_parser, run_banner
from engine.import_command import add_import_parser, run_import
from engine.parallel import silence_followers
from engine.train_command import add_train_parser, run_train
from engine.validation import check_options

FORMATS = ("table", "json")


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder of survey exports and specs (default: FOCUSGROUP_DATA_DIR, "
                                           "else ../shared/surveys when present)")


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="default",
                       help="`default` (embedded SmolLM2-135M-Instruct), `tiny` (random, for tests) "
                            "or a local Hugging Face model folder")
    group.add_argument("--adapter", help="a peft adapter folder to apply on top of the model (default: the "
                                         "adapter shipped for the survey, when the model is the default one)")
    group.add_argument("--base", action="store_true", help="use the bare model, without any adapter")
    group.add_argument("--load-in-4bit", action="store_true", help="load the base weights as 4-bit NF4")
    group.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    group.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16 (default: auto)")
    group.add_argument("--backend", default="transformers", choices=("transformers", "vllm"),
                       help="what scores personas; vllm runs in .venv-vllm (bash scripts/setup_vllm.sh)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="focusgroup",
        description="A simulated focus group: a language model answers real survey questions as the "
                    "respondents of a demographic slice, beside what the real respondents said.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    surveys = commands.add_parser("surveys", help="list the surveys available")
    add_data_dir(surveys)
    add_format(surveys)

    questions = commands.add_parser("questions", help="list a survey's questions and demographic fields")
    questions.add_argument("--survey", default="gss2018", help="survey id or spec file (default: gss2018)")
    add_data_dir(questions)
    add_format(questions)

    simulate = commands.add_parser("simulate", help="simulate one question for one demographic slice")
    simulate.add_argument("--survey", default="gss2018", help="survey id or spec file (default: gss2018)")
    add_question_options(simulate)
    simulate.add_argument("--slice", action="append", default=[], metavar="FIELD=VALUE[,VALUE]",
                          help="keep respondents whose FIELD is one of the values (a value in double quotes is "
                               "taken whole); repeat for more fields")
    simulate.add_argument("--temperature", type=float, default=1.0,
                          help="0 = each persona's most likely answer, 1 = the model's own distribution")
    simulate.add_argument("--stimulus", help="text shown before the question (ad copy, concept, message)")
    simulate.add_argument("--personas", type=int, metavar="N", help="draw N personas from the slice (default: all); "
                          "the real distribution and its noise floor stay the whole slice's")
    simulate.add_argument("--real-from-drawn", action="store_true",
                          help="with --personas, read the real distribution from the drawn personas' answers only")
    simulate.add_argument("--seed", type=int, default=0, help="seed for persona draws and the noise floor")
    simulate.add_argument("--no-baselines", action="store_true", help="skip the classical baselines")
    simulate.add_argument("--no-gaps", action="store_true", help="skip the slice gaps (everyone answering too)")
    simulate.add_argument("--context-questions", nargs="+", metavar="Q",
                          help="twins: each persona carries its answers to these questions, or `auto` for the "
                               "--context-k questions worded most like the asked one")
    simulate.add_argument("--context-k", type=int,
                          help="how many context answers (default: 5 with auto, else all named)")
    simulate.add_argument("--mode", choices=("logits", "generate"), default="logits",
                          help="logits: exact distributions from one forward pass (default); generate: "
                               "sample one reply per persona and parse it (the slower comparison)")
    simulate.add_argument("--samples", type=int, default=0,
                          help="also list this many simulated respondents drawn with --seed (json)")
    add_pilot_options(simulate)
    add_model_options(simulate)
    add_data_dir(simulate)
    add_format(simulate)

    evaluate = commands.add_parser("evaluate", help="fidelity per question and slice on held-out respondents")
    evaluate.add_argument("--survey", default="gss2018", help="survey id or spec file (default: gss2018)")
    evaluate.add_argument("--split", default="test", help="test, validation, train or all (default: test)")
    evaluate.add_argument("--questions", nargs="+", help="question ids (default: all)")
    evaluate.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default: 1)")
    evaluate.add_argument("--split-seed", type=int, default=0, help="seed of the 8:1:1 respondent split")
    evaluate.add_argument("--min-slice", type=int, default=30, help="smallest slice scored (default: 30)")
    evaluate.add_argument("--context-k", type=int, default=0,
                          help="twins: each persona carries its answers to the K questions worded most like the "
                               "asked one, outside the held-out set (default: 0, demographics only)")
    add_pilot_evaluation_options(evaluate)
    add_model_options(evaluate)
    add_data_dir(evaluate)
    add_format(evaluate)

    train = add_train_parser(commands)
    add_data_dir(train)
    add_data_dir(add_import_parser(commands))
    add_banner_parser(commands)

    benchmark = commands.add_parser("benchmark", help="time the engine")
    benchmark_kinds = benchmark.add_subparsers(dest="kind", required=True, metavar="KIND")
    scoring = benchmark_kinds.add_parser("scoring", help="logit read-out against generate-and-parse")
    scoring.add_argument("--survey", default="gss2018")
    scoring.add_argument("--question", default="natenrgy")
    scoring.add_argument("--personas", type=int, default=256, help="personas timed per method (default: 256)")
    scoring.add_argument("--temperature", type=float, default=1.0)
    scoring.add_argument("--batch-size", type=int, default=32, help="personas per forward pass (default: 32)")
    add_model_options(scoring)
    add_data_dir(scoring)
    add_format(scoring)
    return parser


# -- helpers -----------------------------------------------------------------------------

def model_config(args):
    """The model the user asked for. With the default model and no --adapter, the adapter
    shipped for this survey is used; --base asks for the bare model."""
    from engine.models import ModelConfig, shipped_adapter

    if args.base and args.adapter:
        raise FocusgroupError("--base and --adapter contradict each other; pass one of them.")
    adapter = args.adapter
    if adapter is None and not args.base and args.model == "default":
        shipped = shipped_adapter(getattr(args, "survey_id", None) or args.survey)
        adapter = None if shipped is None else str(shipped)
    return ModelConfig(base=args.model, adapter=adapter, load_in_4bit=args.load_in_4bit,
                       device=args.device, dtype=args.dtype, backend=args.backend)


def progress_bar(description: str):
    """A tqdm bar on stderr, driven by the engine's (done, total) callback; created on the
    first report, so a command that fails early prints only its error."""
    from tqdm import tqdm

    bars = []

    def update(done: int, total: int) -> None:
        if not bars or bars[-1].disable:
            if done >= total:
                return  # nothing to wait for: the answers came from the logit cache
            bars.append(tqdm(total=total, desc=description, unit="persona", file=sys.stderr, leave=False,
                             dynamic_ncols=True))
        bar = bars[-1]
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def print_json(data) -> None:
    print(json.dumps(finite_json(data), indent=2, ensure_ascii=False))


# -- commands ----------------------------------------------------------------------------

def run_surveys(args) -> None:
    from engine.surveys import list_surveys, load_survey

    rows = []
    for entry in list_surveys(args.data_dir):
        row = {"id": entry.id, "title": entry.title, "data_present": entry.data_present,
               "spec": str(entry.spec_path), "respondents": None, "questions": None, "fields": None,
               "error": entry.error}
        if entry.data_present:
            try:
                survey = load_survey(entry.id, args.data_dir)
            except FocusgroupError as error:  # one bad survey must not hide the others
                row.update(data_present=False, error=str(error))
            else:
                row.update(respondents=survey.n_respondents, questions=len(survey.questions),
                           fields=len(survey.fields), source=survey.source, license=survey.license)
        rows.append(row)
    if args.format == "json":
        print_json(rows)
        return
    print(f"{'survey':<26}{'respondents':>12}{'questions':>11}  title")
    for row in rows:
        if row["error"]:
            print(f"{row['id']:<26}{'(unreadable)':>12}{'':>11}  {row['error']}")
            continue
        counts = (f"{row['respondents']:>12,}{row['questions']:>11}" if row["data_present"]
                  else f"{'(no data)':>12}{'':>11}")
        print(f"{row['id']:<26}{counts}  {row['title']}")


def run_questions(args) -> None:
    from engine.surveys import load_survey

    survey = load_survey(args.survey, args.data_dir)
    questions = [{"id": q.id, "type": q.type, "text": q.text, "options": q.labels,
                  "held_out": any(q.id in ids for ids in survey.held_out.values())} for q in survey.questions]
    fields = [{"name": f.name, "label": f.label, "values": list(f.values)} for f in survey.fields]
    if args.format == "json":
        print_json({"survey": survey.id, "questions": questions, "fields": fields, "provenance": survey.provenance})
        return
    print(f"{survey.title} ({survey.n_respondents:,} respondents)\n{survey.provenance}\n")
    print("Demographic fields (use with --slice FIELD=VALUE):")
    for field in fields:
        print(f"  {field['name']}: {'; '.join(field['values'])}")
    print("\nQuestions:")
    for question in questions:
        marker = " [held out]" if question["held_out"] else ""
        print(f"  {question['id']} ({question['type']}{marker}): {question['text']}")
        print(f"      options: {' | '.join(question['options'])}")


def run_simulate(args) -> None:
    from engine.models import load_model
    import numpy as np

    from engine.simulate import simulate, simulate_by_generation
    from engine.slices import parse_slice
    from engine.surveys import load_survey
    from engine.tables import simulation_table
    from engine.twins import choose_context

    survey = load_survey(args.survey, args.data_dir)
    question = asked_question(args, survey)
    filters = parse_slice(survey, args.slice)
    context = choose_context(survey, question, args.context_questions, args.context_k)
    args.survey_id = survey.id
    check_pilot_mode(args)
    loaded = load_model(model_config(args))
    if args.mode == "generate":
        if context:
            raise FocusgroupError("--context-questions works with --mode logits only; drop one of them.")
        result = simulate_by_generation(loaded, survey, question, filters, args.temperature, args.stimulus,
                                        args.personas, args.seed, progress_bar("Generating"), args.real_from_drawn)
    else:
        simulation = simulate(loaded, survey, question, filters, args.temperature, args.stimulus,
                              args.personas, args.seed, progress_bar("Simulating"), not args.no_baselines,
                              gaps=not args.no_gaps, context=context, real_from_drawn=args.real_from_drawn)
        result = simulation.to_dict(args.temperature)
        result["pilot"] = pilot_block(args, loaded, survey, simulation)
        if args.samples:
            sample = simulation.sample(args.samples, args.temperature, np.random.default_rng(args.seed))
            result["samples"] = sample.to_dict(orient="records")
    result["warnings"] = training_warnings(loaded.config.adapter, survey, question)
    if args.format == "json":
        print_json(result)
    else:
        print(simulation_table(result) + ("" if result.get("pilot") is None else "\n\n" + pilot_table(result["pilot"])))


def run_evaluate(args) -> None:
    from engine.evaluate import EvaluationConfig, evaluate
    from engine.models import load_model
    from engine.surveys import load_survey
    from engine.tables import evaluation_table

    survey = load_survey(args.survey, args.data_dir)
    config = EvaluationConfig(split=args.split, questions=tuple(args.questions) if args.questions else None,
                              temperature=args.temperature, split_seed=args.split_seed, min_slice=args.min_slice,
                              context_k=args.context_k)
    args.survey_id = survey.id
    loaded = load_model(model_config(args))
    if args.pilot_size is not None:
        result = pilot_evaluation(args, loaded, survey, progress_bar("Scoring"))
        print_json(result) if args.format == "json" else print(pilot_evaluation_table(result))
        return
    announce = (lambda i, n, q: print(f"[{i + 1}/{n}] {q}", file=sys.stderr, flush=True))
    result = evaluate(loaded, survey, config, progress_bar("Scoring"), on_question=announce)
    if args.format == "json":
        print_json(result)
    else:
        print(evaluation_table(result))


def run_benchmark(args) -> None:
    from engine.benchmark import benchmark_lines, benchmark_scoring
    from engine.models import load_model
    from engine.surveys import load_survey

    survey = load_survey(args.survey, args.data_dir)
    args.survey_id = survey.id
    loaded = load_model(model_config(args))
    print("Timing logit read-out, the bare model and generate-and-parse on the same personas...",
          file=sys.stderr, flush=True)
    result = benchmark_scoring(loaded, survey, args.question, args.personas, args.temperature,
                               batch_size=args.batch_size)
    if args.format == "json":
        print_json(result)
        return
    print("\n".join(benchmark_lines(result)))


COMMANDS = {"surveys": run_surveys, "questions": run_questions, "simulate": run_simulate,
            "evaluate": run_evaluate, "train": run_train, "benchmark": run_benchmark, "banner": run_banner,
            "import": run_import}


def fail(message: str, status: int) -> int:
    """Print one `focusgroup: error:` line (library messages span lines and may echo huge
    values, so the message is flattened and capped) and return the exit status."""
    print(f"focusgroup: error: {one_line(message)}", file=sys.stderr)
    return status


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered
    meets no closed pipe (the recipe in Python's `signal` documentation)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # a replaced stdout without a file descriptor
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status.

    0: done. 2: a user mistake (FocusgroupError), one line on stderr. 130: interrupted.
    141 (128 + SIGPIPE, what a shell reports for `yes | head`): whoever read stdout stopped
    reading (`focusgroup questions | head`), so the rest of the output is dropped quietly.
    1: a bug in focusgroup: any other exception, as one line that asks for a report; the
    traceback follows only with FOCUSGROUP_DEBUG=1.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights are local; never reach for a hub
    args = build_parser().parse_args(argv)
    silence_followers()  # under `accelerate launch`, only the lead process prints
    try:
        check_options(vars(args))
        COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, where it can be caught, not at exit
    except FocusgroupError as error:
        return fail(str(error), 2)
    except KeyboardInterrupt:
        print("focusgroup: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        silence_stdout()
        return 141
    except Exception as error:  # the last resort: a user never sees a traceback
        if os.environ.get("FOCUSGROUP_DEBUG") == "1":
            traceback.print_exc()
        return fail(f"unexpected error: {type(error).__name__}: {one_line(error, 300)}; please report it "
                    "(FOCUSGROUP_DEBUG=1 shows the traceback)", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
