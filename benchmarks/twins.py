"""Twins on questions no model trained on: do a respondent's other answers help it tell slices apart?

For each K in --k (default 0, 3, 8), every survey with data has its `[held_out] default`
questions evaluated by `engine.evaluate` on the test split (T = 1), with personas that carry
their answers to the K questions worded most like the asked one (`auto`, chosen outside the
held-out set; K = 0 is demographics only), for the bare model and each --adapter NAME=DIR.
The logistic baseline is fitted on demographics plus the same K answers (train split), so
it sees what the twins see; scale_prior never sees the question's answers nor any context.

Per (model, K), pooled over all held-out questions:

- mean single-field-slice JS and mean individual log loss (as `engine.evaluate.summarize`);
- gap correlation: Pearson r between simulated and real slice gaps over every question x
  single-field slice gap of the primary measure (top box, or option shares) pooled, and the
  mean of the per-question r where defined;
- spread ratio: the median over questions of SD(simulated gaps) / SD(real gaps);
- the same three for the logistic baseline with the same context.

Nothing is tuned on the test split.

    .venv/bin/python benchmarks/twins.py [--adapter general=assets/adapters/general-smollm2]
        [--k 0 3 8] [--max-questions N] [--json]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

import numpy as np

from engine.errors import FocusgroupError
from engine.evaluate import EvaluationConfig, evaluate, summarize
from engine.models import ModelConfig, load_model
from engine.surveys import list_surveys, load_survey
from engine.surveys.split import held_out_questions
from engine.tables import number
from new_questions import parse_adapters, print_report  # the sibling benchmark (run from benchmarks/)


def pooled_correlation(records: list[dict], source: str) -> float | None:
    """Pearson r between `source` ("simulated" or "logistic") and real gaps, pooled over
    every question's primary-measure gap rows; None without spread on either side."""
    pairs = [(row[source], row["real"]) for record in records
             for row in record["gaps"]["tables"][record["gaps"]["measure"]]["rows"]
             if row[source] is not None and row["real"] is not None]
    if len(pairs) < 3:
        return None
    predicted, real = np.array(pairs).T
    if predicted.std() < 1e-12 or real.std() < 1e-12:
        return None
    return float(np.corrcoef(predicted, real)[0, 1])


def per_question(records: list[dict], key: str, reduce) -> float | None:
    values = [record["gaps"]["tables"][record["gaps"]["measure"]]["summary"][key] for record in records]
    values = [value for value in values if value is not None]
    return float(reduce(values)) if values else None


def scores(records: list[dict]) -> dict:
    summary = summarize(records)
    slices, individual = summary["slices"], summary["individual"]
    return {
        "n_questions": summary["n_questions"], "n_slices": summary["n_slices"],
        "slice_js": slices["model"]["js"], "log_loss": individual["model"]["log_loss"],
        "gap_r_pooled": pooled_correlation(records, "simulated"),
        "gap_r_mean": per_question(records, "correlation", np.mean),
        "spread_ratio": per_question(records, "spread_ratio", np.median),
        "alarms": len(summary["gaps"]["alarms"]),
        "logistic": {
            "slice_js": slices["baselines"].get("logistic", {}).get("js"),
            "log_loss": individual["baselines"].get("logistic", {}).get("log_loss"),
            "gap_r_pooled": pooled_correlation(records, "logistic"),
            "gap_r_mean": per_question(records, "logistic_correlation", np.mean),
            "spread_ratio": per_question(records, "logistic_spread_ratio", np.median),
        },
        "scale_prior": {"slice_js": slices["baselines"].get("scale_prior", {}).get("js"),
                        "log_loss": individual["baselines"].get("scale_prior", {}).get("log_loss")},
        "noise_floor": {"slice_js": slices["noise_floor"]["js"]},
    }


def markdown(report: dict) -> str:
    ks = report["k"]

    lines = ["| test split, T = 1, held-out questions | " + " | ".join(f"K = {k}" for k in ks) + " |",
             "|---|" + "---:|" * len(ks)]
    first = report["results"][next(iter(report["models"]))]
    lines.append("| question x slice pairs | " + " | ".join(str(first[str(k)]["n_slices"]) for k in ks) + " |")
    rows = []
    for model in report["models"]:
        rows += [(f"mean slice JS: {model}", model, "slice_js", None),
                 (f"log loss: {model}", model, "log_loss", None),
                 (f"gap r (pooled / mean per question): {model}", model, "gap_r", None),
                 (f"spread ratio (median): {model}", model, "spread_ratio", None),
                 (f"questions with the alarm: {model}", model, "alarms", None)]
    reference = next(iter(report["models"]))  # baselines are seeded: the same under every model
    rows += [("mean slice JS: logistic, same context", reference, "slice_js", "logistic"),
             ("log loss: logistic, same context", reference, "log_loss", "logistic"),
             ("gap r (pooled / mean per question): logistic", reference, "gap_r", "logistic"),
             ("spread ratio (median): logistic", reference, "spread_ratio", "logistic"),
             ("mean slice JS: scale_prior (no data, no context)", reference, "slice_js", "scale_prior"),
             ("mean slice JS: sampling-noise floor", reference, "slice_js", "noise_floor")]
    for title, model, key, block in rows:
        cells = []
        for k in ks:
            result = report["results"][model][str(k)]
            result = result if block is None else result[block]
            if key == "gap_r":
                cells.append(f"{number(result['gap_r_pooled'], 2)} / {number(result['gap_r_mean'], 2)}")
            elif key == "alarms":
                cells.append(f"{result['alarms']} of {report['results'][model][str(k)]['n_questions']}")
            else:
                cells.append(number(result[key], 2 if key == "spread_ratio" else 3))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR",
                        help="an adapter to score beside the bare model; repeat for more")
    parser.add_argument("--k", type=int, nargs="+", default=[0, 3, 8], help="context answers per persona")
    parser.add_argument("--max-questions", type=int, help="at most this many held-out questions per survey")
    parser.add_argument("--model", default="default", help="base model: default, tiny (a smoke run) or a folder")
    parser.add_argument("--data-dir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()

    models = parse_adapters(args.adapter)
    surveys = {entry.id: load_survey(entry.id, args.data_dir) for entry in list_surveys(args.data_dir)
               if entry.data_present}
    questions = {survey_id: held_out_questions(survey)[:args.max_questions] if args.max_questions
                 else held_out_questions(survey) for survey_id, survey in surveys.items()}
    questions = {survey_id: ids for survey_id, ids in questions.items() if ids}

    results, seconds = {}, {}
    for name, adapter in models.items():
        clock = time.perf_counter()
        loaded = load_model(ModelConfig(base=args.model, adapter=adapter))
        results[name] = {}
        for k in args.k:
            records = []
            for survey_id, ids in questions.items():
                print(f"{name}, K = {k}: {survey_id} ({len(ids)} questions)", file=sys.stderr, flush=True)
                config = EvaluationConfig(questions=tuple(ids), context_k=k)
                records += evaluate(loaded, surveys[survey_id], config)["questions"]
            results[name][str(k)] = scores(records)
        seconds[name] = round(time.perf_counter() - clock, 1)
        del loaded
        gc.collect()

    report = {"split": "test", "temperature": 1.0, "k": args.k, "questions": questions,
              "models": {name: {"adapter": adapter, "seconds": seconds[name]} for name, adapter in models.items()},
              "results": results, "seconds": round(time.perf_counter() - started, 1)}
    print_report(report, markdown, args.json)


if __name__ == "__main__":
    try:
        main()
    except FocusgroupError as error:
        sys.exit(f"twins: {error}")
