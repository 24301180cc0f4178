"""Reading a survey export: a CSV file's bytes become a table of strings under its verbatim
headers, and a spec's `column` (a header text or a number) finds its column in that table.

`ExportTable` is the layer of `SpecReader` (engine/surveys/spec.py) that touches the file;
its errors name the spec, the key and the fix (a byte-order mark, a delimiter, a header
that differs only in case or by a typo: "did you mean 'Age'?").

    from engine.surveys.export import close_header
    close_header("age", ["ID", "Age"])  # "; did you mean 'Age'?"
"""

from __future__ import annotations

import codecs
import difflib
import io
from pathlib import Path

import pandas as pd

from engine.errors import one_line
from engine.surveys.spec_checks import SpecTables, shown

# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
MAX_SUGGESTED_HEADER = 200


class ExportTable(SpecTables):
    """Reads a spec's CSV export and its columns; errors name the spec (`where`)."""

    header_line = ""  # the CSV's first line, for the delimiter hint

    def read_csv(self, path: Path, delimiter: str, header_rows: int) -> pd.DataFrame:
        """Rows below `header_rows`, under the first row's headers taken verbatim: pandas
        would rename a repeated header to "x.1" and let the first copy win in silence."""
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise self.fail(f"[data] `file`: cannot read the data file {path.name} ({error.strerror}).") from None
        text = self.decode(raw, path)
        self.header_line = text.lstrip("\n").partition("\n")[0]
        try:
            rows = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, header=None,
                               sep=delimiter, skiprows=range(1, header_rows))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
            raise self.fail(f"[data] `file`: {path.name} is not a readable CSV ({one_line(error)}).") from None
        if len(rows) < 2:
            raise self.fail(f"[data] `file`: {path.name} has no respondent rows below its header.")
        frame = rows.iloc[1:].reset_index(drop=True)
        frame.columns = [normalize_header(header) for header in rows.iloc[0]]
        return frame

    def decode(self, raw: bytes, path: Path) -> str:
        """UTF-8, or UTF-16/32 announced by a byte-order mark; Windows-1252 as a last resort."""
        for mark, encoding in BYTE_ORDER_MARKS:
            if raw.startswith(mark):
                try:
                    return raw.decode(encoding)
                except UnicodeDecodeError:
                    raise self.fail(f"[data] `file`: {path.name} starts like {encoding.upper()} but does not "
                                    "decode as it; save it as UTF-8.") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Exports from older tools are often Windows-1252; never fail on a stray byte.
            text = raw.decode("cp1252", errors="replace")
        if "\x00" in text:
            raise self.fail(f"[data] `file`: {path.name} holds NUL bytes (UTF-16 without a byte-order mark?); "
                            "save it as UTF-8.")
        return text

    def column(self, frame: pd.DataFrame, reference: str | int, context: str) -> pd.Series:
        """A column by 0-based number or header text (whitespace-insensitive, never ambiguous)."""
        if isinstance(reference, int):
            if reference >= frame.shape[1]:
                raise self.fail(f"{context}: column {reference} is out of range (0..{frame.shape[1] - 1})"
                                f"{self.delimiter_hint(frame)}.")
            return frame.iloc[:, reference]
        wanted = normalize_header(reference)
        positions = [position for position, header in enumerate(frame.columns) if header == wanted]
        if len(positions) > 1:
            raise self.fail(f"{context}: the data has {len(positions)} columns named {shown(wanted)} "
                            f"(columns {', '.join(map(str, positions[:5]))}); refer to one by its number.")
        if not positions:
            raise self.fail(f"{context}: no column named {shown(reference)} in the data"
                            f"{close_header(wanted, list(frame.columns))}{self.delimiter_hint(frame)}.")
        return frame.iloc[:, positions[0]]

    def delimiter_hint(self, frame: pd.DataFrame) -> str:
        """When a whole header line landed in one column, say which delimiter the file uses."""
        if frame.shape[1] != 1:
            return ""
        for delimiter, name, written in ((";", "semicolon", ";"), ("\t", "tab", "\\t")):
            if delimiter in self.header_line:
                return (f"; the file looks {name}-delimited: add `delimiter = \"{written}\"` to [data]")
        return ""


def normalize_header(header) -> str:
    """Header text as matched against a spec's `column`: whitespace runs count as one space."""
    return " ".join(str(header).split()) if isinstance(header, str) else ""


def close_header(wanted: str, headers: list[str]) -> str:
    """"; did you mean 'Age'?" for the header `wanted` was probably meant to be, else "".

    A header that differs only in case is suggested first, then the closest one by
    `difflib.get_close_matches` (ignoring case); headers too long to be a typo's target
    are skipped, so a 10 MB header cell costs nothing."""
    candidates = {}
    for header in headers:
        if header and len(header) <= MAX_SUGGESTED_HEADER:
            candidates.setdefault(header.casefold(), header)
    folded = wanted.casefold()
    if folded in candidates:
        return f"; did you mean {shown(candidates[folded])}?"
    close = difflib.get_close_matches(folded, list(candidates), n=1)
    return f"; did you mean {shown(candidates[close[0]])}?" if close else ""
