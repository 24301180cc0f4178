"""Reading a survey export: a CSV file's bytes, or an SPSS or Stata file's variables, become
a table of codes under their verbatim headers, and a spec's `column` (a header text or a
number) finds its column in that table.

Every cell of the table is a normalised code (`normalize_code`: 1, 1.0 and "1" all read
"1", an empty or system-missing cell ""), held as a pandas categorical: each distinct code
is a string once, each cell a small integer, so 100,000 rows x 500 columns take tens of MB.
SPSS and Stata files are read through `engine/surveys/statfile.py`, only the columns the
spec names, in row chunks.

`ExportTable` is the layer of `SpecReader` (engine/surveys/spec.py) that touches the file;
its errors name the spec, the key and the fix (a byte-order mark, a delimiter, a header
that differs only in case or by a typo: "did you mean 'Age'?"), and a data error caused by
one row names that row and its respondent (`row_at`).

    from engine.surveys.export import close_header
    close_header("age", ["ID", "Age"])  # "; did you mean 'Age'?"
"""

from __future__ import annotations

import codecs
import difflib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError, one_line
from engine.surveys.spec_checks import SpecTables, normalize_code, shown
from engine.surveys.statfile import read_chunks, stat_headers

# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
MAX_SUGGESTED_HEADER = 200


class CodedColumn:
    """One column of normalised codes, built from chunks of raw cells into a categorical:
    each distinct raw value is normalised once, whatever the number of rows."""

    def __init__(self):
        self.ids: dict[str, int] = {"": 0}  # the empty code is always there, as code 0
        self.parts: list[np.ndarray] = []

    def add(self, cells: pd.Series) -> None:
        positions, uniques = pd.factorize(cells, use_na_sentinel=True)
        ids = [self.ids.setdefault(normalize_code(value), len(self.ids)) for value in uniques]
        lookup = np.array(ids + [0], dtype=np.int64)  # the sentinel -1 (an empty cell) reads the last: ""
        self.parts.append(lookup[positions].astype(np.min_scalar_type(len(self.ids))))

    def categorical(self) -> pd.Categorical:
        codes = np.concatenate(self.parts) if self.parts else np.zeros(0, np.uint8)
        return pd.Categorical.from_codes(codes, categories=list(self.ids))


def coded_table(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every cell a normalised code, its headers kept verbatim (repeats too)."""
    columns = []
    for position in range(frame.shape[1]):
        column = CodedColumn()
        column.add(frame.iloc[:, position])
        columns.append(column.categorical())
    table = pd.DataFrame(dict(enumerate(columns)), index=pd.RangeIndex(len(frame)))
    table.columns = list(frame.columns)
    return table


def read_stat_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """The coded table of an SPSS or Stata file's `columns`, read in row chunks."""
    coded = {name: CodedColumn() for name in columns}
    for rows, _ in read_chunks(path, columns):
        for name, column in coded.items():
            column.add(rows[name])
    return pd.DataFrame({name: column.categorical() for name, column in coded.items()})


class ExportTable(SpecTables):
    """Reads a spec's export and its columns; errors name the spec (`where`)."""

    header_line = ""  # the CSV's first line, for the delimiter hint
    file_headers: list[str] | None = None  # every header of a file read in part (SPSS, Stata)
    data_name = "the data"  # the file (or rdataset) the rows come from, for `row_at`
    first_row, row_word = 1, "row"  # how that file numbers its first respondent row
    respondents: pd.Index | None = None  # respondent ids, once read

    def row_at(self, position: int) -> str:
        """Where the respondent at 0-based `position` is: "row 4 of export.csv (respondent '17')"."""
        place = f"{self.row_word} {self.first_row + position} of {self.data_name}"
        return place if self.respondents is None else f"{place} (respondent {shown(self.respondents[position])})"

    def refuse_unknown(self, raw: pd.Series, unknown, context: str, problem: str) -> None:
        """Refuse the codes `unknown` of the coded column `raw`, naming the first row holding one."""
        unknown = sorted(unknown)
        if unknown:
            first = int(np.flatnonzero(raw.isin(unknown).to_numpy())[0])
            raise self.fail(f"{context}: values {', '.join(map(shown, unknown[:5]))} {problem}; the first is in "
                            f"{self.row_at(first)}.")

    def read_stat(self, path: Path, references: list, csv_keys: list[str]) -> pd.DataFrame:
        """The columns of an SPSS or Stata file that `references` name (the others are never
        read), as a coded table; every header is kept in `file_headers` for column numbers
        and suggestions."""
        if csv_keys:
            raise self.fail(f"[data] `{csv_keys[0]}` is for CSV files; {path.name} keeps its variable names "
                            "apart from its rows: remove the key.")
        try:
            headers = self.file_headers = stat_headers(path)  # variable names hold no spaces: no normalising
            wanted = {headers[reference] if isinstance(reference, int) else normalize_header(reference)
                      for reference in references if not isinstance(reference, int) or reference < len(headers)}
            frame = read_stat_table(path, [header for header in headers if header in wanted] or headers[:1])
        except FocusgroupError as error:
            raise self.fail(f"[data] `file`: {error}") from None
        self.data_name, self.first_row, self.row_word = path.name, 1, "case"
        return frame

    def read_csv(self, path: Path, delimiter: str, header_rows: int) -> pd.DataFrame:
        """Rows below `header_rows`, under the first row's headers taken verbatim: pandas
        would rename a repeated header to "x.1" and let the first copy win in silence."""
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise self.fail(f"[data] `file`: cannot read the data file {path.name} ({error.strerror}).") from None
        try:
            text = decode_export(raw, path.name)
        except FocusgroupError as error:
            raise self.fail(f"[data] `file`: {error}") from None
        self.data_name, self.first_row = path.name, header_rows + 1
        if not text.strip():
            raise self.fail(f"[data] `file`: {path.name} is empty, not a readable CSV; export it again.")
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

    def column(self, frame: pd.DataFrame, reference: str | int, context: str) -> pd.Series:
        """A column by 0-based number or header text (whitespace-insensitive, never ambiguous)."""
        headers = list(frame.columns) if self.file_headers is None else self.file_headers
        if isinstance(reference, int):
            if reference >= len(headers):
                raise self.fail(f"{context}: column {reference} is out of range (0..{len(headers) - 1})"
                                f"{self.delimiter_hint(frame)}.")
            if self.file_headers is None:
                return frame.iloc[:, reference]
            reference = headers[reference]
        wanted = normalize_header(reference)
        positions = [position for position, header in enumerate(frame.columns) if header == wanted]
        if len(positions) > 1:
            raise self.fail(f"{context}: the data has {len(positions)} columns named {shown(wanted)} "
                            f"(columns {', '.join(map(str, positions[:5]))}); refer to one by its number.")
        if not positions:
            raise self.fail(f"{context}: no column named {shown(reference)} in the data"
                            f"{close_header(wanted, headers)}{self.delimiter_hint(frame)}.")
        return frame.iloc[:, positions[0]]

    def delimiter_hint(self, frame: pd.DataFrame) -> str:
        """When a whole header line landed in one column, say which delimiter the file uses."""
        if frame.shape[1] != 1:
            return ""
        for delimiter, name, written in ((";", "semicolon", ";"), ("\t", "tab", "\\t")):
            if delimiter in self.header_line:
                return (f"; the file looks {name}-delimited: add `delimiter = \"{written}\"` to [data]")
        return ""


def decode_export(raw: bytes, name: str) -> str:
    """UTF-8, or UTF-16/32 announced by a byte-order mark; Windows-1252 as a last resort."""
    for mark, encoding in BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                raise FocusgroupError(f"{name} starts like {encoding.upper()} but does not decode as it; "
                                      "save it as UTF-8.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Exports from older tools are often Windows-1252; never fail on a stray byte.
        text = raw.decode("cp1252", errors="replace")
    if "\x00" in text:
        raise FocusgroupError(f"{name} holds NUL bytes (UTF-16 without a byte-order mark?); save it as UTF-8.")
    return text


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
