"""How well do models answer questions they never saw, beside what a researcher has without them?

Three groups of questions, each scored by `engine.evaluate` on the test split (T = 1;
`--split validation` scores the validation split instead, to choose between training runs
without looking at the test answers):

- held-out questions: the `[held_out] default` set of every survey with data (gss2018 and
  the six shared surveys: 14 questions);
- a held-out survey (--held-out-survey, default steak-survey): every one of its questions;
- trained questions: the other questions of gss2018 (the shipped adapter's training data),
  and of each --trained-surveys survey.

For each group: the mean Jensen-Shannon distance over question x single-field slices with
at least --min-slice test answers (pooled over the group's surveys, as `evaluate` pools
over questions), the mean JS of the whole test split and the mean individual log loss over
questions, of the bare model and of every --adapter NAME=DIR; beside the baselines that never saw the question's answers
(scale_prior, uniform), those fitted on its train answers (marginal, the best classical
baseline) and the sampling-noise floor. Nothing is tuned on the test split; the best
classical baseline is picked per group on it, which favours the baselines.

    .venv/bin/python benchmarks/new_questions.py [--adapter gss2018=assets/adapters/gss2018-smollm2 ...]
        [--held-out-survey steak-survey] [--trained-surveys non-voters ...] [--max-questions N]
        [--min-slice 30] [--split test|validation] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

from engine.baselines import NO_DATA_BASELINES, best_classical
from engine.errors import FocusgroupError
from engine.evaluate import EvaluationConfig, evaluate, summarize
from engine.models import ModelConfig, load_model
from engine.surveys import list_surveys, load_survey
from engine.surveys.split import held_out_questions
from engine.tables import number

BARE = "bare model"
GROUPS = ("held_out_questions", "held_out_survey", "trained_questions")
# (report key, `summarize` block, metric, table title). The whole-split JS is there because a
# small survey's test split may hold no slice of --min-slice answers (steak-survey: 55).
METRICS = (("slice_js", "slices", "js", "mean slice JS"), ("split_js", "population", "js", "whole-split JS"),
           ("log_loss", "individual", "log_loss", "log loss"))


def parse_adapters(pairs: list[str]) -> dict[str, str | None]:
    """`NAME=DIR` pairs -> name -> adapter folder, after the bare model (None)."""
    models: dict[str, str | None] = {BARE: None}
    for pair in pairs:
        name, separator, folder = pair.partition("=")
        if not separator or not name or not folder or name in models:
            raise FocusgroupError(f"--adapter {pair!r} is not a new NAME=DIR.")
        models[name] = folder
    return models


def print_report(report: dict, markdown, as_json: bool) -> None:
    """The report as JSON, or as its markdown table and the time each model took."""
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print(markdown(report))
    print(f"\n{report['seconds']:.0f} s in all; " + ", ".join(f"{name} {m['seconds']:.0f} s"
                                                           for name, m in report["models"].items()))


def question_groups(args, surveys: dict) -> dict[str, dict[str, list[str]]]:
    """Group -> survey id -> question ids, at most --max-questions per survey and group."""
    def first(ids):
        return list(ids)[:args.max_questions] if args.max_questions else list(ids)

    held_out = {survey_id: first(held_out_questions(survey)) for survey_id, survey in surveys.items()}
    trained = {survey_id: first(q.id for q in surveys[survey_id].questions
                                if q.id not in held_out_questions(surveys[survey_id]))
               for survey_id in ["gss2018", *args.trained_surveys]}
    return {
        "held_out_questions": {survey_id: ids for survey_id, ids in held_out.items() if ids},
        "held_out_survey": {args.held_out_survey: first(q.id for q in surveys[args.held_out_survey].questions)},
        "trained_questions": trained,
    }


def group_scores(records: list[dict], models: list[str]) -> dict:
    """Mean slice JS and mean log loss of each model and baseline over one group's questions
    (`records[model]` holds that model's `evaluate` question records, in the same order)."""
    summaries = {model: summarize(records[model]) for model in models}
    baselines = summaries[models[0]]  # baselines are seeded: the same under every model
    scores = {"n_questions": baselines["n_questions"], "n_slices": baselines["n_slices"]}
    for key, block, metric, _ in METRICS:
        fitted = baselines[block]["baselines"]
        by_name = {name: fitted[name][metric] for name in fitted}
        try:
            best = best_classical(fitted, by_name)
        except FocusgroupError:  # no slice of the group reached --min-slice
            best = None
        scores[key] = {
            **{model: summaries[model][block]["model"][metric] for model in models},
            **{name: by_name.get(name) for name in NO_DATA_BASELINES},
            "marginal": by_name.get("marginal"), "best_classical": by_name.get(best), "best_classical_is": best,
        }
        if block != "individual":
            scores[key]["noise_floor"] = baselines[block]["noise_floor"]["js"]
    return scores


def markdown(report: dict) -> str:
    groups, models = report["groups"], list(report["models"])
    labels = {
        "held_out_questions": f"held-out questions ({groups['held_out_questions']['n_questions']})",
        "held_out_survey": f"held-out survey {report['held_out_survey']} ({groups['held_out_survey']['n_questions']})",
        "trained_questions": f"gss2018 trained questions ({groups['trained_questions']['n_questions']})"
        if list(report["questions"]["trained_questions"]) == ["gss2018"]
        else f"trained questions ({groups['trained_questions']['n_questions']})",
    }
    rows = [("question x slice pairs", lambda g: str(g["n_slices"]))]
    for key, _, _, title in METRICS:
        def cell(name, key=key):
            return lambda g: number(g[key][name])
        rows += [(f"{title}: {model}", cell(model)) for model in models]
        rows += [(f"{title}, without the question's answers: {name}", cell(name)) for name in NO_DATA_BASELINES]
        rows += [(f"{title}, with them: marginal", cell("marginal")),
                 (f"{title}, with them: best classical",
                  lambda g, key=key: f"{number(g[key]['best_classical'])} ({g[key]['best_classical_is']})"
                  if g[key]["best_classical_is"] else "-")]
        if key != "log_loss":
            rows.append((f"{title}: sampling-noise floor", cell("noise_floor")))
    lines = [f"| {report['split']} split, T = 1, min slice {report['min_slice']} | " + " | ".join(labels[g] for g in GROUPS) + " |",
             "|---|" + "---:|" * len(GROUPS)]
    lines += [f"| {title} | " + " | ".join(value(groups[g]) for g in GROUPS) + " |" for title, value in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR",
                        help="an adapter to score beside the bare model; repeat for more")
    parser.add_argument("--held-out-survey", default="steak-survey", help="a survey scored whole (default: steak-survey)")
    parser.add_argument("--trained-surveys", nargs="*", default=[],
                        help="surveys whose non-held-out questions join gss2018's as trained questions")
    parser.add_argument("--max-questions", type=int, help="at most this many questions per survey and group (quick runs)")
    parser.add_argument("--min-slice", type=int, default=EvaluationConfig.min_slice)
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="respondents scored: test (the report) or validation (to choose between runs)")
    parser.add_argument("--data-dir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()

    # Phase 1: the surveys and each group's questions.
    models = parse_adapters(args.adapter)
    surveys = {entry.id: load_survey(entry.id, args.data_dir) for entry in list_surveys(args.data_dir)
               if entry.data_present}
    for survey_id in [args.held_out_survey, *args.trained_surveys]:
        if survey_id not in surveys:
            raise FocusgroupError(f"No survey {survey_id!r} with data; surveys: {', '.join(surveys)}.")
    groups = question_groups(args, surveys)
    wanted = {}  # survey -> every question any group needs, in survey order
    for by_survey in groups.values():
        for survey_id, ids in by_survey.items():
            wanted.setdefault(survey_id, set()).update(ids)

    # Phase 2: every model evaluates each survey once, on the union of its questions.
    records: dict[str, dict[tuple[str, str], dict]] = {}
    seconds = {}
    for name, adapter in models.items():
        clock = time.perf_counter()
        loaded = load_model(ModelConfig(adapter=adapter))
        records[name] = {}
        for survey_id, ids in wanted.items():
            survey = surveys[survey_id]
            ordered = tuple(q.id for q in survey.questions if q.id in ids)
            print(f"{name}: {survey_id} ({len(ordered)} questions)", file=sys.stderr, flush=True)
            config = EvaluationConfig(questions=ordered, min_slice=args.min_slice, split=args.split)
            for question in evaluate(loaded, survey, config)["questions"]:
                records[name][survey_id, question["id"]] = question
        seconds[name] = round(time.perf_counter() - clock, 1)
        del loaded
        gc.collect()

    # Phase 3: pool each group's question records and summarise them.
    report = {
        "split": args.split, "temperature": 1.0, "min_slice": args.min_slice, "held_out_survey": args.held_out_survey,
        "models": {name: {"adapter": adapter, "seconds": seconds[name]} for name, adapter in models.items()},
        "questions": groups, "groups": {},
    }
    for group, by_survey in groups.items():
        keys = [(survey_id, question_id) for survey_id, ids in by_survey.items() for question_id in ids]
        report["groups"][group] = group_scores({name: [records[name][key] for key in keys] for name in models},
                                               list(models))
    report["seconds"] = round(time.perf_counter() - started, 1)

    print_report(report, markdown, args.json)


if __name__ == "__main__":
    try:
        main()
    except FocusgroupError as error:
        sys.exit(f"new_questions: {error}")
