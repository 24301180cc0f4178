"""How well can anything that never saw a question's answers predict them? A yardstick for
the held-out questions.

For each held-out question H, on the test (or validation) split, the mean per-slice Jensen-Shannon distance of:

- the marginal baseline, which was fitted on H's own train answers (the bar `evaluate` uses);
- transfer from the trained questions, which never looks at H: the mean answer distribution
  over all trained questions with the same options ("scale prior"), and, for every trained
  question Q, Q's marginal and Q's gradient-boosting model used as if they answered H. The
  best Q is picked with hindsight, on the evaluated split itself: an optimistic ceiling for
  "answer H like the most similar trained question";
- the fine-tuned adapter, as is, and (with --adapter) the adapter re-levelled to H's train
  marginal: each persona's distribution multiplied by one per-option factor so that the
  population mean equals the marginal baseline. Re-levelling uses H's answers, so it is a
  diagnostic, not a model: it separates "wrong national level" from "wrong differences
  between slices".

    .venv/bin/python benchmarks/held_out_ceiling.py [--survey gss2018] [--adapter DIR|none] [--split test|validation] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from engine.baselines import fit_baselines
from engine.evaluate import EvaluationConfig, answered_in_split, slice_masks
from engine.metrics import answer_distribution, apply_temperature, js_distance
from engine.models import ModelConfig, load_model, shipped_adapter
from engine.scoring import option_logits
from engine.simulate import personas_for, slice_distribution
from engine.surveys import load_survey
from engine.surveys.split import DEFAULT_SEED, held_out_questions, split_index

MIN_SLICE = 30


def mean_slice_js(answers, weights, k, probabilities, slices) -> float:
    """Mean over slices of the JS distance between real and predicted slice distributions."""
    return float(np.mean([
        js_distance(answer_distribution(answers[m], k, weights[m]), slice_distribution(probabilities[m], weights[m]))
        for m in slices
    ]))


def relevel(probabilities: np.ndarray, target: np.ndarray, weights: np.ndarray, rounds: int = 200) -> np.ndarray:
    """Scale each option's column by one factor (then renormalise rows) until the weighted
    population mean equals `target`: the smallest change that fixes the national level."""
    adjusted = probabilities.copy()
    for _ in range(rounds):
        current = slice_distribution(adjusted, weights)
        adjusted = adjusted * (target / current)
        adjusted /= adjusted.sum(axis=1, keepdims=True)
    return adjusted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survey", default="gss2018")
    parser.add_argument("--adapter", help="adapter to score as well (default: the shipped one; 'none' skips it)")
    parser.add_argument("--split", default="test", choices=("test", "validation"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    survey = load_survey(args.survey)
    held_out = held_out_questions(survey, "default")
    trained = [q.id for q in survey.questions if q.id not in held_out]
    train = split_index(survey, "train", DEFAULT_SEED)
    adapter = None if args.adapter == "none" else (args.adapter or shipped_adapter(survey.id))
    loaded = load_model(ModelConfig(adapter=str(adapter))) if adapter else None

    evaluated = EvaluationConfig(split=args.split, min_slice=MIN_SLICE)

    report = {"survey": survey.id, "split": args.split, "adapter": str(adapter) if adapter else None, "questions": {}}
    for h in held_out:
        question = survey.question(h)
        k = len(question.options)
        index, answers, weights = answered_in_split(survey, h, evaluated)
        slices = [m for _, m in slice_masks(survey, index, MIN_SLICE)]
        n = len(index)

        def score(probabilities):
            return mean_slice_js(answers, weights, k, probabilities, slices)

        own = fit_baselines(survey, h, train, index, seed=DEFAULT_SEED)
        same_scale = [q for q in trained if survey.question(q).labels == question.labels]
        transfer = {q: fit_baselines(survey, q, train, index, seed=DEFAULT_SEED,
                                     names=("marginal", "gradient_boosting")) for q in same_scale}
        prior = np.mean([t["marginal"].probabilities[0] for t in transfer.values()], axis=0)
        transfer_scores = {
            f"{q}:{name}": score(prediction.probabilities)
            for q, predictions in transfer.items() for name, prediction in predictions.items()
        }
        best = min(transfer_scores, key=transfer_scores.get)
        row = {
            "n": n, "n_slices": len(slices),
            "real_population": answer_distribution(answers, k, weights).round(3).tolist(),
            "marginal": score(own["marginal"].probabilities),
            "gradient_boosting": score(own["gradient_boosting"].probabilities),
            "scale_prior": score(np.tile(prior, (n, 1))),
            "scale_prior_population": prior.round(3).tolist(),
            "best_transfer": best, "best_transfer_js": transfer_scores[best],
        }
        if loaded is not None:
            probabilities = apply_temperature(
                option_logits(loaded, question, survey.fields, personas_for(survey, index)), 1.0)
            row["adapter"] = score(probabilities)
            row["adapter_population"] = slice_distribution(probabilities, weights).round(3).tolist()
            row["adapter_relevelled"] = score(relevel(probabilities, own["marginal"].probabilities[0], weights))
        report["questions"][h] = row

    if args.json:
        print(json.dumps(report, indent=2))
        return
    for h, row in report["questions"].items():
        print(f"\n{h}: {row['n']} {report['split']} answers, {row['n_slices']} slices, real {row['real_population']}")
        print(f"  fitted on {h}'s own answers: marginal {row['marginal']:.4f}  gradient boosting {row['gradient_boosting']:.4f}")
        print(f"  never saw {h}: scale prior {row['scale_prior']:.4f} {row['scale_prior_population']}  "
              f"best trained question in hindsight ({row['best_transfer']}) {row['best_transfer_js']:.4f}")
        if "adapter" in row:
            print(f"  adapter {row['adapter']:.4f} {row['adapter_population']}  "
                  f"re-levelled to {h}'s marginal (diagnostic) {row['adapter_relevelled']:.4f}")


if __name__ == "__main__":
    main()
