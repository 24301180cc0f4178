"""The pilot options of `focusgroup simulate` (`--pilot FILE | --pilot-size N`) and their table.

    focusgroup simulate --survey gss2018 --question natenvir --slice partyid="strong democrat" --pilot-size 100
    focusgroup evaluate --survey gss2018 --pilot-size 100 --repeats 20

prints, under the simulation, the slice's shares from the pilot alone, the model alone,
pilot + model (prediction-powered) and the re-levelled model, with 95% intervals where the
method has one, the real shares of the respondents outside the pilot where the survey has
them, and one sentence on what the model adds. `--format json` puts the same under `pilot`:
`source`, `pilot_size`, `pilot_in_slice`, `n_unlabelled`, `sentence`, `truth` (option ->
share, or null) and `estimates` (method -> null, or {`shares`, `low`, `high`: option -> share
or null; `effective_n`}), methods `pilot`, `model`, `ppi`, `relevelled`.

`evaluate --pilot-size N [N ...] --repeats R` replaces the fidelity report by the repeated-pilot
evaluation of `engine.pilot_evaluate` on the held-out questions (or --questions), over
everyone who answered (--split does not apply); `--format json` gives its `summary`
(pilot size -> method -> `js`, and for `pilot` and `ppi` `coverage` and `width`, for `ppi`
`effective_n_ratio`) and every `records` row.
"""

from __future__ import annotations

import argparse

from engine.errors import FocusgroupError
from engine.tables import number

TITLES = {"pilot": "pilot alone", "model": "model alone", "ppi": "pilot + model", "relevelled": "re-levelled"}


def add_pilot_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pilot (real answers to combine with the model)")
    exclusive = group.add_mutually_exclusive_group()
    exclusive.add_argument("--pilot", metavar="FILE",
                           help="a CSV of pilot answers: one column per demographic field, `answer` (an option's "
                                "label) and optionally `weight`")
    exclusive.add_argument("--pilot-size", type=int, metavar="N",
                           help="draw N of the survey's respondents (with --seed) as the pilot; the rest are the "
                                "population the estimates are checked against")


def add_pilot_evaluation_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pilot + model (instead of the fidelity report)")
    group.add_argument("--pilot-size", type=int, nargs="+", metavar="N",
                       help="draw pilots of N respondents on held-out questions and score pilot alone, model, "
                            "pilot + model and the re-levelled model against everyone else's real answers")
    group.add_argument("--repeats", type=int, default=20, help="pilot draws per size (default: %(default)s)")


def pilot_evaluation(args, loaded, survey, progress) -> dict:
    from engine.pilot_evaluate import PilotEvaluationConfig, evaluate_pilots

    config = PilotEvaluationConfig(pilot_sizes=tuple(args.pilot_size), repeats=args.repeats,
                                   questions=tuple(args.questions) if args.questions else None,
                                   min_slice=args.min_slice, temperature=args.temperature)
    return evaluate_pilots(loaded, survey, config, progress)


def pilot_evaluation_table(result: dict) -> str:
    """One row per pilot size and method: JS to the truth, coverage, width, effective size."""
    lines = [f"{result['survey']}: pilots on {', '.join(result['questions'])}; {result['repeats']} draws per size; "
             f"model {result['model']}, temperature {result['temperature']}",
             "Scored against the real answers of everyone outside the pilot, per single-field slice.",
             f"{'pilot size':>10}  {'method':<14} {'mean JS':>8} {'coverage':>9} {'width':>7} {'eff. n / n':>10}"]
    for size, block in result["summary"].items():
        for method, title in TITLES.items():
            entry = block[method]
            coverage = entry.get("coverage")
            lines.append(f"{size:>10}  {title:<14} {number(entry['js']):>8} "
                         f"{'-' if coverage is None else f'{100 * coverage:.1f}%':>9} "
                         f"{number(entry.get('width')):>7} {number(entry.get('effective_n_ratio'), 2):>10}")
        lines.append(f"{'':>10}  ({block['n_estimates']} question x slice x draw estimates)")
    return "\n".join(lines)


def pilot_block(args, loaded, survey, simulation) -> dict | None:
    """The `pilot` block of the simulate result, or None without a pilot option."""
    if args.pilot is None and args.pilot_size is None:
        return None
    from engine.pilot_survey import choose_pilot, pilot_estimates

    pilot = choose_pilot(survey, simulation.question, args.seed, args.pilot_size, args.pilot)
    return pilot_estimates(loaded, simulation, pilot, args.temperature).to_dict()


def check_pilot_mode(args) -> None:
    if args.mode == "generate" and (args.pilot is not None or args.pilot_size is not None):
        raise FocusgroupError("--pilot and --pilot-size work with --mode logits only; drop one of them.")


def pilot_table(block: dict) -> str:
    """The pilot block as a text table: one row per option, one column per method."""
    estimates, truth = block["estimates"], block["truth"]
    options = list(estimates["model"]["shares"])
    header = ["option", *(TITLES[m] for m in TITLES if estimates[m] is not None)]
    if truth is not None:
        header.append("real, outside the pilot")
    rows = []
    for option in options:
        row = [option]
        for method in TITLES:
            estimate = estimates[method]
            if estimate is None:
                continue
            share = f"{100 * estimate['shares'][option]:.1f}%"
            if estimate["low"] is not None:
                share += f" ({100 * estimate['low'][option]:.1f}-{100 * estimate['high'][option]:.1f})"
            row.append(share)
        if truth is not None:
            row.append(f"{100 * truth[option]:.1f}%")
        rows.append(row)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths))
    lines = [f"Pilot: {block['source']}; {block['pilot_in_slice']} of them in the slice; "
             f"{block['n_unlabelled']} personas outside the pilot", line(header), *map(line, rows)]
    ppi = estimates["ppi"]
    if ppi is not None and ppi["effective_n"] is not None:
        lines.append(f"Effective sample size of pilot + model: {number(ppi['effective_n'], 0)} "
                     f"(95% intervals in brackets; the model alone has no sampling interval)")
    lines.append(block["sentence"])
    return "\n".join(lines)


__all__ = ["add_pilot_options", "pilot_block", "pilot_table", "check_pilot_mode", "add_pilot_evaluation_options",
           "pilot_evaluation", "pilot_evaluation_table"]
