"""Pilot + model on questions no model trained on: what a small real pilot gains from the model.

Every survey with data has its `[held_out] default` questions evaluated by
`engine.pilot_evaluate` with each survey's default adapter (`engine.models.shipped_adapter`):
for each pilot size, --repeats pilots are drawn from the respondents who answered (at most
2,000 per question, a seeded draw), and every single-field slice with at least 30 respondents
outside the pilot gets the pilot-alone, model-alone, pilot + model (PPI++) and re-levelled
estimates, scored against the real shares of everyone outside the pilot. Pooled over
questions, slices and draws, per pilot size and method: mean JS, interval coverage and
width, and PPI's effective sample size over the pilot alone's (its Kish size). Nothing is fitted on
the answers being predicted (the power tuning sees only the pilot).

    .venv/bin/python benchmarks/pilot.py [--sizes 50 100 200 400] [--repeats 20] [--json]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from engine.errors import FocusgroupError
from engine.models import ModelConfig, load_model, shipped_adapter
from engine.pilot_command import TITLES
from engine.pilot_evaluate import PilotEvaluationConfig, evaluate_pilots, summarize_pilots
from engine.surveys import list_surveys, load_survey
from engine.surveys.split import held_out_questions
from engine.tables import number
from new_questions import print_report  # the sibling benchmark (run from benchmarks/)


def markdown(report: dict) -> str:
    sizes = [str(size) for size in report["sizes"]]
    lines = ["| held-out questions, T = 1 | " + " | ".join(f"N = {size}" for size in sizes) + " |",
             "|---|" + "---:|" * len(sizes),
             "| question x slice x draw estimates | "
             + " | ".join(str(report["summary"][size]["n_estimates"]) for size in sizes) + " |"]
    for method, title in TITLES.items():
        lines.append(f"| mean slice JS: {title} | "
                     + " | ".join(number(report["summary"][size][method]["js"]) for size in sizes) + " |")
    for method in ("pilot", "ppi"):
        lines.append(f"| 95% interval coverage: {TITLES[method]} | " + " | ".join(
            "-" if report["summary"][size][method]["coverage"] is None
            else f"{100 * report['summary'][size][method]['coverage']:.1f}%" for size in sizes) + " |")
        lines.append(f"| mean interval width: {TITLES[method]} | "
                     + " | ".join(number(report["summary"][size][method]["width"]) for size in sizes) + " |")
    lines.append("| effective sample size / the pilot alone's: pilot + model | "
                 + " | ".join(number(report["summary"][size]["ppi"]["effective_n_ratio"], 2) for size in sizes)
                 + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400], help="pilot sizes")
    parser.add_argument("--repeats", type=int, default=20, help="pilot draws per size")
    parser.add_argument("--max-questions", type=int, help="at most this many held-out questions per survey")
    parser.add_argument("--model", default="default", help="base model: default, tiny (a smoke run) or a folder")
    parser.add_argument("--data-dir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()

    config = PilotEvaluationConfig(pilot_sizes=tuple(args.sizes), repeats=args.repeats)
    records, per_survey, models = [], {}, {}
    for entry in list_surveys(args.data_dir):
        if not entry.data_present:
            continue
        survey = load_survey(entry.id, args.data_dir)
        ids = held_out_questions(survey)[:args.max_questions] if args.max_questions else held_out_questions(survey)
        if not ids:
            continue
        clock = time.perf_counter()
        adapter = shipped_adapter(survey.id) if args.model == "default" else None
        loaded = load_model(ModelConfig(base=args.model, adapter=None if adapter is None else str(adapter)))
        print(f"{survey.id}: {', '.join(ids)} with {loaded.config.name}", file=sys.stderr, flush=True)
        result = evaluate_pilots(loaded, survey, PilotEvaluationConfig(
            pilot_sizes=config.pilot_sizes, repeats=config.repeats, questions=tuple(ids)))
        records += [{**record, "survey": survey.id} for record in result["records"]]
        per_survey[survey.id] = result["summary"]
        models[survey.id] = {"adapter": None if adapter is None else str(adapter),
                             "seconds": round(time.perf_counter() - clock, 1)}
        del loaded
        gc.collect()

    report = {"sizes": args.sizes, "repeats": args.repeats, "temperature": 1.0, "models": models,
              "summary": summarize_pilots(records, args.sizes), "per_survey": per_survey,
              "seconds": round(time.perf_counter() - started, 1)}
    print_report(report, markdown, args.json)


if __name__ == "__main__":
    try:
        main()
    except FocusgroupError as error:
        sys.exit(f"pilot: {error}")
