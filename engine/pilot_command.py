"""The pilot options of `focusgroup simulate` (`--pilot FILE | --pilot-size N`) and their table.

    focusgroup simulate --survey gss2018 --question natenvir --slice partyid="strong democrat" --pilot-size 100

prints, under the simulation, the slice's shares from the pilot alone, the model alone,
pilot + model (prediction-powered) and the re-levelled model, with 95% intervals where the
method has one, the real shares of the respondents outside the pilot where the survey has
them, and one sentence on what the model adds. `--format json` puts the same under `pilot`:
`source`, `pilot_size`, `pilot_in_slice`, `n_unlabelled`, `sentence`, `truth` (option ->
share, or null) and `estimates` (method -> null, or {`shares`, `low`, `high`: option -> share
or null; `effective_n`}), methods `pilot`, `model`, `ppi`, `relevelled`.
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


def pilot_block(args, loaded, survey, simulation) -> dict | None:
    """The `pilot` block of the simulate result, or None without a pilot option."""
    if args.pilot is None and args.pilot_size is None:
        return None
    from engine.pilot_survey import draw_pilot, pilot_estimates, read_pilot

    if args.pilot is not None:
        pilot = read_pilot(args.pilot, survey, simulation.question)
    else:
        pilot = draw_pilot(survey, simulation.question, args.pilot_size, args.seed)
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


__all__ = ["add_pilot_options", "pilot_block", "pilot_table", "check_pilot_mode"]
