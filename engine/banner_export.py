"""A banner (`engine.banner.Banner`) as an Excel workbook: `banner_workbook(banner) -> bytes`.

One sheet per question, named after the question's id (Excel's rules: at most 31
characters, none of []:*?/\\, not starting or ending with an apostrophe, unique ignoring
case; "Notes" and Excel's reserved "History" are never a question's), holding the question
text as its title, then the banner: a header row of fields, one of values, one of measures
(simulated, its significance mark, real, its mark), the base (n) row, and a row per option,
top box and mean score; shares formatted as percentages, mean scores to two decimals. A
"Notes" sheet says what was run (survey, model and adapter, temperature, date, base,
stimulus), how significance was computed, and that the simulated numbers come from a
language model.

Every text cell goes through `neutralise_formula`: option labels, question text and field
values come from uploaded specs, and a cell a spreadsheet would read as a formula
(`=HYPERLINK(...)`) is written as text behind a quote, as the dashboard's CSV export does.

    from engine.banner_export import banner_workbook
    Path("banner.xlsx").write_bytes(banner_workbook(result))
"""

from __future__ import annotations

import io
import re

import numpy as np
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from engine.banner import BASE_ROW, MEASURES, Banner
from engine.slices import describe_slice

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a cell starting so is a formula to a spreadsheet
SHEET_NAME_LIMIT = 31
FORBIDDEN_IN_SHEET_NAMES = re.compile(r"[\[\]:*?/\\]")
RESERVED_SHEET_NAMES = ("Notes", "History")
MEASURE_HEADINGS = {"simulated": "Simulated", "simulated_flag": "", "real": "Real", "real_flag": ""}
PERCENT, MEAN_FORMAT = "0.0%", "0.00"
SIMULATED_LABEL = ("Simulated by a language model: the simulated shares are a model's answers as personas built "
                   "from the respondents' demographics, not answers from people.")
BOLD = Font(bold=True)
FIRST_DATA_COLUMN = 2  # column A holds the row labels
HEADER_ROW = 3  # rows 1-2: the question's text and id


def neutralise_formula(value):
    """Text that a spreadsheet would evaluate (it starts with =, +, -, @, a tab or a carriage
    return) gets a leading single quote, the OWASP advice on formula injection; anything else,
    numbers included (-0.5 is a value), is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def sheet_name(text: str, taken: set[str]) -> str:
    """A valid, unused sheet name from `text`; `taken` holds the casefolded names in use and
    gets this one added."""
    base = FORBIDDEN_IN_SHEET_NAMES.sub("_", " ".join(text.split())).strip("'").strip() or "Question"
    name, copy = base[:SHEET_NAME_LIMIT], 1
    while name.casefold() in taken:
        copy += 1
        suffix = f" ({copy})"
        name = base[: SHEET_NAME_LIMIT - len(suffix)].rstrip() + suffix
    taken.add(name.casefold())
    return name


def write(sheet, row: int, column: int, value, number_format: str | None = None, bold: bool = False):
    """One cell: text neutralised, NaN and "" left empty."""
    if (isinstance(value, float) and not np.isfinite(value)) or value == "":
        value = None
    cell = sheet.cell(row=row, column=column, value=neutralise_formula(value))
    if number_format:
        cell.number_format = number_format
    if bold:
        cell.font = BOLD
    return cell


def question_sheet(sheet, banner: Banner, question) -> None:
    """The banner of one question, laid out as the module says."""
    table = banner.table(question.id)
    write(sheet, 1, 1, question.text, bold=True)
    write(sheet, 2, 1, f"{question.id} - base: {describe_slice(banner.config.filters)}")
    write(sheet, HEADER_ROW + 2, 1, "row", bold=True)
    column = FIRST_DATA_COLUMN
    field_starts: dict[str, tuple[int, int]] = {}
    for field_name, value in banner.columns:
        first, _ = field_starts.get(field_name, (column, column))
        field_starts[field_name] = (first, column + len(MEASURES) - 1)
        if field_name:
            write(sheet, HEADER_ROW, first, banner.survey.field(field_name).label or field_name, bold=True)
        write(sheet, HEADER_ROW + 1, column, value, bold=True)
        sheet.merge_cells(start_row=HEADER_ROW + 1, start_column=column, end_row=HEADER_ROW + 1,
                          end_column=column + len(MEASURES) - 1)
        for offset, measure in enumerate(MEASURES):
            write(sheet, HEADER_ROW + 2, column + offset, MEASURE_HEADINGS[measure], bold=True)
        column += len(MEASURES)
    for first, last in field_starts.values():
        if last > first:
            sheet.merge_cells(start_row=HEADER_ROW, start_column=first, end_row=HEADER_ROW, end_column=last)
    cells = banner.cells[banner.cells["question"] == question.id]
    kinds = dict(zip(cells["row"], cells["kind"]))
    for offset, (row_label, values) in enumerate(table.iterrows()):
        row = HEADER_ROW + 3 + offset
        write(sheet, row, 1, row_label, bold=row_label == BASE_ROW)
        number_format = None if row_label == BASE_ROW else MEAN_FORMAT if kinds.get(row_label) == "mean" else PERCENT
        for position, value in enumerate(values.tolist()):
            is_flag = MEASURES[position % len(MEASURES)].endswith("_flag")
            write(sheet, row, FIRST_DATA_COLUMN + position, value, None if is_flag else number_format)
    legend_row = HEADER_ROW + 4 + len(table)
    write(sheet, legend_row, 1, banner.significance)
    write(sheet, legend_row + 1, 1, SIMULATED_LABEL)
    for cell in sheet[HEADER_ROW] + sheet[HEADER_ROW + 1]:
        cell.alignment = Alignment(horizontal="center")
    sheet.column_dimensions["A"].width = min(max(len(str(label)) for label in table.index) + 2, 60)
    for position in range(len(table.columns)):
        letter = get_column_letter(FIRST_DATA_COLUMN + position)
        sheet.column_dimensions[letter].width = 3 if MEASURES[position % len(MEASURES)].endswith("_flag") else 10
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 3, column=FIRST_DATA_COLUMN)


def notes_rows(banner: Banner) -> list[tuple[str, str]]:
    """What the Notes sheet says, as (heading, text) pairs."""
    config = banner.config
    return [
        ("Caution", SIMULATED_LABEL),
        ("Survey", f"{banner.survey.title} ({banner.survey.id})"),
        ("Questions", "; ".join(f"{question.id}: {question.text}" for question in banner.questions)),
        ("Columns", ", ".join(config.fields)),
        ("Base", describe_slice(config.filters)),
        ("Model", banner.model_name),
        ("Adapter", banner.adapter or "none"),
        ("Temperature", f"{config.temperature:g}"),
        ("Stimulus", config.stimulus or "none"),
        ("Personas", "every respondent of the base" if config.personas is None
         else f"{config.personas} drawn with seed {config.seed}; the real shares are every respondent's"),
        ("Date", banner.created),
        ("Significance", banner.significance),
        ("Mean score", "the mean position on the scale (1 = the first listed option for ordinal questions), "
                       "off-scale options left out"),
        ("Top box", "the on-scale option at the question's favourable end (the spec's `positive`)"),
        ("Data", banner.survey.provenance),
    ]


def banner_workbook(banner: Banner) -> bytes:
    """The banner as .xlsx bytes: one sheet per question, then "Notes"."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    taken = {name.casefold() for name in RESERVED_SHEET_NAMES}
    for question in banner.questions:
        question_sheet(workbook.create_sheet(sheet_name(question.id, taken)), banner, question)
    notes = workbook.create_sheet("Notes")
    for row, (heading, text) in enumerate(notes_rows(banner), start=1):
        write(notes, row, 1, heading, bold=True)
        write(notes, row, 2, text)
    notes.column_dimensions["A"].width = 14
    notes.column_dimensions["B"].width = 120
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


__all__ = ["banner_workbook", "neutralise_formula", "sheet_name", "SIMULATED_LABEL"]
