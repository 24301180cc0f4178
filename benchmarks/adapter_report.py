"""Compare a fine-tuned adapter with the bare base model and the baselines, on held-out respondents.

Runs `engine.evaluate` twice in one process (adapter, then bare model) on the same split
and prints, for trained and held-out questions, the mean per-slice Jensen-Shannon distance,
the whole-split JS and the individual log loss of each, beside the marginal baseline, the
best classical baseline and the noise floor.

    .venv/bin/python benchmarks/adapter_report.py --survey gss2018 [--adapter DIR] [--split test]
        [--questions Q ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.evaluate import EvaluationConfig, evaluate
from engine.models import ModelConfig, load_model, shipped_adapter
from engine.surveys import load_survey

CLASSICAL = ("logistic", "gradient_boosting", "svr")


def summary_rows(result: dict, label: str) -> dict:
    rows = {}
    for group in ("trained", "held_out"):
        summary = result["summary"][group]
        if not summary:
            continue
        slices, population, individual = summary["slices"], summary["population"], summary["individual"]
        best = min((name for name in CLASSICAL if name in slices["baselines"]),
                   key=lambda name: slices["baselines"][name]["js"])
        rows[group] = {
            "questions": summary["n_questions"], "slices": summary["n_slices"],
            f"{label}_slice_js": slices["model"]["js"],
            "marginal_slice_js": slices["baselines"]["marginal"]["js"],
            "best_classical": best, "best_classical_slice_js": slices["baselines"][best]["js"],
            "noise_floor_slice_js": slices["noise_floor"]["js"],
            f"{label}_split_js": population["model"]["js"],
            f"{label}_log_loss": individual["model"]["log_loss"],
            "marginal_log_loss": individual["baselines"]["marginal"]["log_loss"],
            "best_classical_log_loss": min(individual["baselines"][n]["log_loss"]
                                           for n in ("logistic", "gradient_boosting")
                                           if n in individual["baselines"]),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survey", default="gss2018")
    parser.add_argument("--adapter", help="adapter folder (default: the one shipped for the survey)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--questions", nargs="+", help="question ids (default: all)")
    parser.add_argument("--data-dir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    survey = load_survey(args.survey, args.data_dir)
    adapter = args.adapter or shipped_adapter(survey.id)
    if adapter is None:
        sys.exit(f"No adapter shipped for {survey.id}; pass --adapter.")
    config = EvaluationConfig(split=args.split, questions=tuple(args.questions) if args.questions else None)
    tuned = evaluate(load_model(ModelConfig(adapter=str(adapter))), survey, config)
    base = evaluate(load_model(ModelConfig()), survey, config)
    report = {"survey": survey.id, "adapter": str(adapter), "split": args.split, "groups": {}}
    for group, row in summary_rows(tuned, "adapter").items():
        report["groups"][group] = {**row, **{k: v for k, v in summary_rows(base, "base")[group].items()
                                             if k.startswith("base_")}}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{survey.id}, {args.split} split, adapter {adapter}")
    for group, row in report["groups"].items():
        print(f"\n{group} questions ({row['questions']}, {row['slices']} question x slice pairs)")
        print(f"  mean slice JS: adapter {row['adapter_slice_js']:.4f}  base {row['base_slice_js']:.4f}  "
              f"marginal {row['marginal_slice_js']:.4f}  {row['best_classical']} {row['best_classical_slice_js']:.4f}  "
              f"noise floor {row['noise_floor_slice_js']:.4f}")
        print(f"  whole-split JS: adapter {row['adapter_split_js']:.4f}  base {row['base_split_js']:.4f}")
        print(f"  log loss: adapter {row['adapter_log_loss']:.4f}  base {row['base_log_loss']:.4f}  "
              f"marginal {row['marginal_log_loss']:.4f}  best classical {row['best_classical_log_loss']:.4f}")


if __name__ == "__main__":
    main()
