"""Exports for reports: PNG and SVG (kaleido with a system Chromium), HTML, CSV and Excel,
and one ZIP bundle with every chart, its numbers and a manifest to reproduce it (the
PowerPoint slide is `dashboard.deck`).

Static images need a Chromium-family browser for kaleido. Where none is installed,
`static_image` raises `ExportUnavailable` with the command that installs one, and the
dashboard still offers HTML, CSV, Excel, PowerPoint and the bundle (without images).

A CSV starts with comment lines saying what each column means; read it with
`pandas.read_csv(path, comment="#")` (text cells are quoted, so a `#` in an answer's label
is not taken for a comment).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import plotly.graph_objects as go

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install Chromium for PNG/SVG export: `sudo apt-get install chromium` (Debian/Ubuntu)"
IMAGE_WIDTH, IMAGE_SCALE = 1100, 2  # pixels before scaling; the height is the figure's own (charts.base_layout)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula
SIMULATED_NOTE = "Simulated by a language model: a hypothesis to test with real respondents, not survey data."
# What each column of an exported chart's numbers means (shares are fractions of 1).
COLUMN_NOTES = {
    "option": "the answer option",
    "simulated": "share of the simulated personas (weighted) giving this answer",
    "real": "share of the real respondents in the slice giving this answer (empty for a new question)",
    "real_band": "half-width of the real share's 95% sampling band: 1.96 sqrt(real (1 - real) / effective n)",
    "share": "share giving this answer",
    "estimate": "which estimate: pilot alone / model alone / pilot + model / real outside the pilot",
    "low": "lower end of the 95% interval: of the estimate (pilot; empty where it has none) or of the shift (A/B)",
    "high": "upper end of the 95% interval: of the estimate (pilot; empty where it has none) or of the shift (A/B)",
    "measure": "A/B: what is compared: an option's share (option), the top box (top_box) or the mean score (mean)",
    "label": "A/B: the answer option (for the mean score: Mean score)",
    "a": "A/B: the measure over the personas who saw stimulus A (weighted): a share, or a mean on the scale's values",
    "b": "A/B: the same personas' measure after stimulus B",
    "shift": "A/B: b - a, the weighted mean of each persona's difference; its 95% interval is a paired bootstrap "
             "over the personas",
    "verdict": "A/B: within noise where the interval covers 0, else B higher or B lower",
    "stimulus_a": "A/B: the full text of stimulus A (empty for none)",
    "stimulus_b": "A/B: the full text of stimulus B (empty for none)",
}
SCORE_MEASURES = ("mean",)  # A/B rows (column `measure`) in the scale's values, not shares


@dataclass
class Chart:
    """One chart of a report: a file-name stem, the figure and the numbers behind it."""

    name: str
    figure: go.Figure
    data: pd.DataFrame


class ExportUnavailable(RuntimeError):
    """Static image export is not possible on this machine; the message says how to fix it."""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def static_image(figure: go.Figure, image_format: str) -> bytes:
    """The figure as PNG or SVG bytes, rendered by kaleido in the system browser."""
    browser = find_browser()
    if browser is None:
        raise ExportUnavailable(f"No Chromium browser found: {INSTALL_HINT}.")
    os.environ.setdefault("BROWSER_PATH", browser)
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise ExportUnavailable("kaleido is not installed: `pip install kaleido`.") from None
    try:
        return figure.to_image(format=image_format, width=IMAGE_WIDTH, height=figure.layout.height or 620,
                               scale=IMAGE_SCALE)
    except Exception as error:  # kaleido reports browser problems with many exception types
        raise ExportUnavailable(f"Static export failed ({error}); {INSTALL_HINT}.") from None


def html_document(figure: go.Figure) -> bytes:
    """A self-contained interactive HTML page (Plotly inlined, works offline)."""
    return figure.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")


def neutralise_formula(value):
    """A text cell that a spreadsheet would run as a formula (`=HYPERLINK(...)` can leak
    data), prefixed with a single quote so it reads as text: the OWASP advice on CSV
    injection. Option labels, question text and slice names come from uploaded specs and
    typed questions. Numbers are left alone: -0.5 is a value, not a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def column_notes(frame: pd.DataFrame) -> list[str]:
    """`column: meaning` for each column of the frame that COLUMN_NOTES explains."""
    return [f"{column}: {COLUMN_NOTES[column]}" for column in frame.columns if column in COLUMN_NOTES]


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV without its index, after `# ` comment lines: the simulated
    note and what each column means (`column_notes`). Every text cell and column name is
    safe to open in a spreadsheet (`neutralise_formula`) and quoted, so pandas'
    `comment="#"` skips only the notes. Rows end in CRLF (RFC 4180), so a cell holding a
    lone carriage return is quoted and cannot split its row."""
    safe = frame.rename(columns=neutralise_formula)
    for column in safe.columns[[not pd.api.types.is_numeric_dtype(dtype) for dtype in safe.dtypes]]:
        safe[column] = safe[column].astype(object).map(neutralise_formula)
    notes = [SIMULATED_NOTE, *column_notes(frame), 'read with pandas.read_csv(path, comment="#")']
    header = "".join(f"# {note}\r\n" for note in notes)
    return (header + safe.to_csv(index=False, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)).encode("utf-8")


def write_rows(sheet, rows) -> None:
    """Append rows to an openpyxl sheet, text cells as text: openpyxl would store a string
    starting with "=" as a formula, so such a cell is typed as a string explicitly."""
    for row in rows:
        sheet.append([None if isinstance(value, float) and value != value else value for value in row])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"


def xlsx_bytes(charts: list[Chart], manifest: dict) -> bytes:
    """An Excel workbook: one sheet per chart with its numbers (shares formatted as
    percentages, the rows of a mean score as numbers), then a `notes` sheet: the simulated
    note, what each column means, and the manifest, one entry a row (nested values as JSON)."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for chart in charts:
        sheet = workbook.create_sheet(chart.name[:31])
        write_rows(sheet, [list(chart.data.columns), *chart.data.itertuples(index=False)])
        scores = chart.data["measure"].isin(SCORE_MEASURES) if "measure" in chart.data else [False] * len(chart.data)
        for position, column in enumerate(chart.data.columns, start=1):
            if pd.api.types.is_float_dtype(chart.data[column]):
                for (cell,), score in zip(sheet.iter_rows(min_row=2, min_col=position, max_col=position), scores):
                    cell.number_format = "0.000" if score else "0.0%"
    notes = workbook.create_sheet("notes")
    write_rows(notes, [["note", SIMULATED_NOTE]])
    write_rows(notes, [[f"column {column}", COLUMN_NOTES[column]]
                       for column in dict.fromkeys(c for chart in charts for c in chart.data.columns)
                       if column in COLUMN_NOTES])
    write_rows(notes, [[key, value if isinstance(value, (str, int, float)) or value is None
                        else json.dumps(value, default=str)] for key, value in manifest.items()])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def app_version() -> str:
    """The installed focusgroup package's version ("unknown" when run from a bare checkout)."""
    try:
        return importlib.metadata.version("focusgroup")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=16)
def weights_sha256(path: str, size: int, modified: int) -> str:
    """sha256 of a file, remembered per (path, size, modification time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def adapter_identity(adapter: str | None) -> dict | None:
    """Which adapter made a chart, without where it sits on this machine: its folder's name
    and the sha256 of its weights file (None for the bare model)."""
    if adapter is None:
        return None
    folder = Path(adapter)
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        weights = next(iter(sorted(folder.glob("adapter_model.*"))), None)
    stat = weights.stat() if weights is not None else None
    return {"name": folder.name,
            "weights_sha256": weights_sha256(str(weights), stat.st_size, stat.st_mtime_ns) if stat else None}


def report_bundle(charts: list[Chart], manifest: dict, with_images: bool = True) -> tuple[bytes, list[str]]:
    """A ZIP with, per chart, HTML, CSV and (when possible) PNG and SVG, plus every chart's
    numbers in report.xlsx and manifest.json.

    Returns the ZIP bytes and the notes about anything left out (e.g. no browser for PNG).
    """
    notes: list[str] = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for chart in charts:
            archive.writestr(f"{chart.name}.html", html_document(chart.figure))
            archive.writestr(f"{chart.name}.csv", csv_bytes(chart.data))
            if with_images:
                for image_format in ("png", "svg"):
                    try:
                        archive.writestr(f"{chart.name}.{image_format}", static_image(chart.figure, image_format))
                    except ExportUnavailable as error:
                        notes.append(str(error))
                        with_images = False
                        break
        archive.writestr("report.xlsx", xlsx_bytes(charts, manifest))
        archive.writestr("manifest.json", json.dumps({**manifest, "notes": notes}, indent=2, default=str))
    return buffer.getvalue(), notes
