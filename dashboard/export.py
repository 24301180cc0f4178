"""Exports for reports: PNG and SVG (kaleido with a system Chromium), HTML, CSV, and one ZIP
bundle with every chart, its numbers and a manifest to reproduce it.

Static images need a Chromium-family browser for kaleido. Where none is installed,
`static_image` raises `ExportUnavailable` with the command that installs one, and the
dashboard still offers HTML, CSV and the bundle (without images).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install Chromium for PNG/SVG export: `sudo apt-get install chromium` (Debian/Ubuntu)"
IMAGE_SIZE = dict(width=1100, height=620, scale=2)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


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
        return figure.to_image(format=image_format, **IMAGE_SIZE)
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


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV without its index, every text cell and column name safe to
    open in a spreadsheet (`neutralise_formula`). Rows end in CRLF (RFC 4180), so a cell
    holding a lone carriage return is quoted and cannot split its row."""
    safe = frame.rename(columns=neutralise_formula)
    for column in safe.columns[[not pd.api.types.is_numeric_dtype(dtype) for dtype in safe.dtypes]]:
        safe[column] = safe[column].astype(object).map(neutralise_formula)
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


@dataclass
class Chart:
    """One chart of a report: a file-name stem, the figure and the numbers behind it."""

    name: str
    figure: go.Figure
    data: pd.DataFrame


def report_bundle(charts: list[Chart], manifest: dict, with_images: bool = True) -> tuple[bytes, list[str]]:
    """A ZIP with, per chart, HTML, CSV and (when possible) PNG and SVG, plus manifest.json.

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
        archive.writestr("manifest.json", json.dumps({**manifest, "notes": notes}, indent=2, default=str))
    return buffer.getvalue(), notes
