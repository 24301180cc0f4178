"""`focusgroup banner`: several questions cut by several fields, as text, JSON or Excel.

    focusgroup banner --survey gss2018 --questions natspac natenrgy natsci --fields age partyid
    focusgroup banner --questions natspac --fields sex --slice age=18-29 --xlsx banner.xlsx

A thin client of `engine.banner` (the numbers) and `engine.banner_export` (the workbook).
The table prints one block per field, each beside the Total: per column the simulated and
the real share, ▲/▼ where the column differs from the rest of the base (see
`engine.banner`). `--format json` prints `Banner.to_dict()`; `--xlsx FILE` also writes the
workbook, atomically (a reader never sees half a file).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from engine.errors import FocusgroupError, capped
from engine.tables import label_width

CELL_WIDTH = 7  # "100.0▲" and a space
VALUE_WIDTH = 2 * CELL_WIDTH  # a column: its simulated and real cells
TEXT_WIDTH = 100  # question text wraps at this width
MAX_HEADER_LINES = 3  # a column heading wraps onto at most this many lines


def add_banner_parser(commands) -> argparse.ArgumentParser:
    """The `banner` subcommand on the CLI's subparsers, with the model, data and format options."""
    from engine.cli import add_data_dir, add_format, add_model_options

    banner = commands.add_parser("banner", help="several questions by several demographic fields: simulated "
                                                "beside real shares, with significance marks")
    banner.add_argument("--survey", default="gss2018", help="survey id or spec file (default: gss2018)")
    banner.add_argument("--questions", nargs="+", required=True, metavar="Q", help="question ids (the rows' blocks)")
    banner.add_argument("--fields", nargs="+", required=True, metavar="FIELD",
                        help="demographic fields whose values become the columns")
    banner.add_argument("--slice", action="append", default=[], metavar="FIELD=VALUE[,VALUE]",
                        help="the base: keep respondents whose FIELD is one of the values; repeat for more fields")
    banner.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default: 1)")
    banner.add_argument("--stimulus", help="text shown before every question (ad copy, concept, message)")
    banner.add_argument("--personas", type=int, metavar="N",
                        help="draw N personas from the base (default: all); the real shares stay every respondent's")
    banner.add_argument("--seed", type=int, default=0, help="seed of the persona draw")
    banner.add_argument("--xlsx", metavar="FILE", help="also write the banner as an Excel workbook")
    add_model_options(banner)
    add_data_dir(banner)
    add_format(banner)
    return banner


def number_cell(value: float, mark: str, kind: str) -> str:
    """A share as a percentage (a mean score as itself) with its mark, right-aligned."""
    if value != value:  # NaN: nobody in the column answered
        return f"{'-':>{CELL_WIDTH - 1}} "
    text = f"{value:.2f}" if kind == "mean" else f"{100 * value:.1f}"
    return f"{text + (mark or ' '):>{CELL_WIDTH}}"


def header_lines(field_name: str, values: list[str], width: int) -> list[str]:
    """The column headings: each value wrapped to its column's width (a long label takes
    several lines, set on the bottom one), the field's name at the left of the last line."""
    wrapped = [textwrap.wrap(value, VALUE_WIDTH - 1, break_long_words=True) or [""] for value in values]
    height = min(max(len(pieces) for pieces in wrapped), MAX_HEADER_LINES)
    wrapped = [pieces[:height - 1] + [capped(" ".join(pieces[height - 1:]), VALUE_WIDTH - 1)]
               if len(pieces) > height else [""] * (height - len(pieces)) + pieces for pieces in wrapped]
    return [f"{field_name if line == height - 1 else '':<{width}}"
            + "".join(f"{pieces[line]:>{VALUE_WIDTH}}" for pieces in wrapped) for line in range(height)]


def question_block(result: dict, question: dict) -> list[str]:
    """One question's lines: a sub-table per field, its values beside the Total."""
    cells = question["cells"]
    rows = list(dict.fromkeys((cell["row"], cell["kind"]) for cell in cells))
    width = label_width([row for row, _ in rows] + result["fields"], "row") + 1
    lines = textwrap.wrap(f"{question['id']}: {question['text']}", TEXT_WIDTH)
    for field_name in result["fields"]:
        columns = [("", "Total")] + list(dict.fromkeys((cell["field"], cell["value"]) for cell in cells
                                                      if cell["field"] == field_name))
        by_column = {column: [cell for cell in cells if (cell["field"], cell["value"]) == column]
                     for column in columns}
        lines += ["", *header_lines(field_name, [value for _, value in columns], width),
                  f"{'':<{width}}" + f"{'sim':>{CELL_WIDTH - 1}} {'real':>{CELL_WIDTH - 1}} " * len(columns),
                  f"{'n':<{width}}" + "".join(f"{by_column[column][0]['n_personas']:>{CELL_WIDTH - 1}} "
                                              f"{by_column[column][0]['n_real']:>{CELL_WIDTH - 1}} "
                                              for column in columns)]
        for position, (row, kind) in enumerate(rows):
            line = f"{capped(row, width - 1):<{width}}"
            for column in columns:
                cell = by_column[column][position]
                line += number_cell(cell["simulated"], cell["simulated_flag"], kind)
                line += number_cell(cell["real"], cell["real_flag"], kind)
            lines.append(line)
    return lines


def banner_table(result: dict) -> str:
    """`focusgroup banner`'s text: a heading, each question's blocks, the legend."""
    lines = [f"{result['survey']}: base {result['base']}; model {result['model']}, temperature "
             f"{result['temperature']}" + (f"; stimulus: {result['stimulus']}" if result["stimulus"] else ""),
             "Shares in %, mean scores as numbers; each column: simulated, then real."]
    for question in result["questions"]:
        lines += [""] + question_block(result, question)
    lines += ["", *textwrap.wrap(result["significance"], TEXT_WIDTH), "Simulated by a language model.",
              *textwrap.wrap(result["provenance"], TEXT_WIDTH)]
    return "\n".join(line.rstrip() for line in lines)


def run_banner(args) -> None:
    from engine.atomic import atomic_write_bytes
    from engine.banner import BannerConfig, banner, resolve_config
    from engine.banner_export import banner_workbook
    from engine.cli import model_config, print_json, progress_bar
    from engine.models import load_model
    from engine.slices import parse_slice
    from engine.surveys import load_survey

    check_workbook_path(args.xlsx)  # before the model runs, not after
    survey = load_survey(args.survey, args.data_dir)
    config = BannerConfig(questions=tuple(args.questions), fields=tuple(args.fields),
                          filters=parse_slice(survey, args.slice), temperature=args.temperature,
                          stimulus=args.stimulus, personas=args.personas, seed=args.seed)
    config = resolve_config(survey, config)
    args.survey_id = survey.id
    loaded = load_model(model_config(args))
    result = banner(loaded, survey, config, progress_bar("Simulating"))
    if args.xlsx:
        atomic_write_bytes(args.xlsx, banner_workbook(result))
        print(f"Banner written to {args.xlsx}", file=sys.stderr)
    if args.format == "json":
        print_json(result.to_dict())
    else:
        print(banner_table(result.to_dict()))


def check_workbook_path(path: str | None) -> None:
    """Refuse an --xlsx that is not a .xlsx file name or is a folder."""
    if path is None:
        return
    if Path(path).suffix.casefold() != ".xlsx":
        raise FocusgroupError(f"--xlsx {path} must end in .xlsx: the banner is written as an Excel workbook.")
    if Path(path).is_dir():
        raise FocusgroupError(f"--xlsx {path} is a folder; name a workbook file, e.g. {Path(path) / 'banner.xlsx'}.")


__all__ = ["add_banner_parser", "check_workbook_path", "run_banner", "banner_table"]
