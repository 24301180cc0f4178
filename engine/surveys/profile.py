"""What an export says about its columns, gathered in one pass over its rows: the material
`focusgroup import` (engine/surveys/importing.py) proposes a spec from.

A `ColumnProfile` holds one column's header and wording, the file's own value labels,
measurement level and user-missing codes, and what its rows hold: how many rows carry
each code (up to MAX_DISTINCT distinct codes; a column with more is `overflow`, its codes
no longer counted), empty cells, and the range of its numbers outside the missing codes.
`profile_export` reads
- SPSS (.sav, .zsav, .por) and Stata (.dta) files: the metadata alone, then the rows in
  chunks, so memory stays bounded whatever the file's size;
- Qualtrics CSVs: three header rows (column id, question text, {"ImportId": ...});
- SurveyMonkey CSVs: two header rows (question text, then "Response" or the sub-answer);
- any other CSV: one header row.

    from engine.surveys.profile import profile_export
    [column.name for column in profile_export(Path("panel.sav")).columns]
"""

from __future__ import annotations

import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError, one_line
from engine.surveys.export import decode_export, normalize_header
from engine.surveys.spec_checks import normalize_code
from engine.surveys.statfile import read_chunks, read_metadata, stat_format

MAX_DISTINCT = 60  # codes counted per column: more than any question's options (26)
MAX_RANGE_CODES = 20  # a missing range of up to this many whole numbers lists them as codes
MAX_REFERENCE = 100  # longer headers are referred to by column number
SAMPLE = 10
DATE_FORMAT = re.compile(r"^%-?t|^%d|DATE|TIME|QYR|MOYR|WKYR|YMDHMS|WKDAY", re.IGNORECASE)
# The response metadata Qualtrics puts first; two of them make a CSV a Qualtrics export
QUALTRICS_NAMES = {"StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)", "Finished",
                   "RecordedDate", "ResponseId", "DistributionChannel", "UserLanguage"}
SURVEYMONKEY_ANSWERS = {"Response", "Open-Ended Response"}


@dataclass
class ColumnProfile:
    """One column: what the file declares of it and what its rows hold."""

    position: int
    name: str  # the header (the first header row) or the variable name
    text: str  # the wording: variable label, Qualtrics question text, SurveyMonkey question [- sub-answer]
    reference: str | int  # how a spec names it: the header, or its 0-based number when that is blank or repeated
    labels: dict[str, str] = field(default_factory=dict)  # value labels, code -> label
    measure: str = ""  # SPSS's measurement level: nominal, ordinal or scale
    missing_codes: set[str] = field(default_factory=set)  # declared user-missing codes
    missing_ranges: list[tuple[float, float]] = field(default_factory=list)  # declared user-missing ranges
    date: bool = False  # stored with a date or time format
    note: str = ""  # what the export's header rows say of it: Qualtrics' "ImportId", SurveyMonkey's open end
    counts: Counter = field(default_factory=Counter)  # code -> rows, while at most MAX_DISTINCT codes
    overflow: bool = False  # more than MAX_DISTINCT distinct codes
    rows: int = 0
    empty: int = 0
    words: int = 0  # non-empty cells that are neither numbers nor missing codes
    fractional: bool = False  # some number is not whole
    low: float = math.inf  # the range of the numbers outside the missing codes
    high: float = -math.inf
    sample: list[str] = field(default_factory=list)  # the first few non-empty codes
    missing_seen: set[str] = field(default_factory=set)  # the missing codes the rows hold
    values: list[np.ndarray] | None = None  # every cell, kept for possible respondent ids only

    def is_missing(self, code: str) -> bool:
        """A declared user-missing code, or a number in a declared missing range."""
        if code in self.missing_codes:
            return True
        number = as_number(code)
        return number is not None and any(low <= number <= high for low, high in self.missing_ranges)

    @property
    def unique(self) -> bool:
        """Every row holds a value and no two the same (known only where `values` were kept)."""
        if self.values is None or self.empty:
            return False
        return pd.Index(np.concatenate(self.values) if self.values else []).is_unique

    def add(self, cells: pd.Series) -> None:
        """Count one chunk of the column's raw cells."""
        self.rows += len(cells)
        if self.values is not None:
            self.values.append(cells.to_numpy(object))
        if pd.api.types.is_numeric_dtype(cells.dtype) and not pd.api.types.is_bool_dtype(cells.dtype):
            self.add_numbers(cells.to_numpy(float))
        else:
            self.add_codes(cells)

    def add_numbers(self, numbers: np.ndarray) -> None:
        present = numbers[~np.isnan(numbers)]
        self.empty += len(numbers) - len(present)
        if not self.overflow:
            self.count(*np.unique(present, return_counts=True))
        missing = np.isin(present, [float(code) for code in self.missing_codes if as_number(code) is not None])
        for low, high in self.missing_ranges:
            missing |= (present >= low) & (present <= high)
        self.missing_seen.update(normalize_code(number) for number in np.unique(present[missing]))
        self.range(present[~missing])
        if not self.sample and len(present):
            self.sample = [normalize_code(number) for number in present[:SAMPLE]]

    def add_codes(self, cells: pd.Series) -> None:
        """Cells of text (or of numbers mixed with Stata's missing letters), normalised once per distinct value."""
        counted = cells.value_counts(dropna=False, sort=False)
        codes = pd.Series([normalize_code(value) for value in counted.index], dtype=object)
        rows = counted.to_numpy()
        self.count(codes, rows)
        blank = (codes == "").to_numpy()
        missing = codes.map(self.is_missing).to_numpy(bool)
        numbers = pd.to_numeric(codes, errors="coerce").to_numpy(float)
        self.empty += int(rows[blank].sum())
        self.words += int(rows[np.isnan(numbers) & ~blank & ~missing].sum())
        self.range(numbers[~np.isnan(numbers) & ~missing])
        self.missing_seen.update(codes[missing])
        self.sample += [code for code in codes[~blank][:SAMPLE - len(self.sample)]]

    def count(self, values, rows: np.ndarray) -> None:
        """Add `rows[i]` rows of each of the distinct `values`, until there are too many to count."""
        if self.overflow or len(values) > MAX_DISTINCT:
            self.overflow, self.counts = True, Counter()
            return
        for value, n in zip(values, rows):
            code = value if isinstance(value, str) else normalize_code(value)
            if code:
                self.counts[code] += int(n)
        if len(self.counts) > MAX_DISTINCT:
            self.overflow, self.counts = True, Counter()

    def range(self, numbers: np.ndarray) -> None:
        if len(numbers):
            self.low, self.high = min(self.low, float(numbers.min())), max(self.high, float(numbers.max()))
            self.fractional |= bool((numbers != np.floor(numbers)).any())


@dataclass
class ExportProfile:
    """A whole export: its kind, layout and columns."""

    path: Path
    kind: str  # "SPSS", "SPSS portable", "Stata", "Qualtrics CSV", "SurveyMonkey CSV" or "CSV"
    rows: int
    columns: list[ColumnProfile]
    header_rows: int = 1
    delimiter: str = ","
    title: str = ""  # the file's own label


def as_number(code: str) -> float | None:
    try:
        number = float(code)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def profile_export(path: Path, keeps_values: Callable[[str, str], bool]) -> ExportProfile:
    """The profile of an SPSS, Stata or CSV export; `keeps_values(name, wording)` says which
    columns might be respondent ids, whose every value is kept to check they are distinct."""
    path = Path(path)
    if stat_format(path) is not None:
        profile = profile_stat_file(path, keeps_values)
    elif path.suffix.lower() in (".csv", ".txt", ".tsv"):
        profile = profile_csv(path, keeps_values)
    else:
        raise FocusgroupError(f"{path.name}: unknown kind of file {path.suffix or '(no extension)'!r}; import reads "
                              "SPSS (.sav, .zsav, .por), Stata (.dta) and CSV (.csv: Qualtrics, SurveyMonkey or "
                              "one header row) files.")
    if profile.rows == 0:
        raise FocusgroupError(f"{path.name} has no respondents: it holds variables but no rows.")
    return profile


def profile_stat_file(path: Path, keeps_values: Callable[[str, str], bool]) -> ExportProfile:
    """Labels, measurement levels and missing codes from the metadata, counts from the rows."""
    metadata = read_metadata(path)
    wordings = dict(zip(metadata.column_names, metadata.column_labels or [None] * len(metadata.column_names)))
    columns = []
    for position, name in enumerate(metadata.column_names):
        text = " ".join(str(wordings.get(name) or "").split())
        column = ColumnProfile(
            position, name, text, name,
            labels={normalize_code(code): str(label) for code, label in
                    (metadata.variable_value_labels.get(name) or {}).items()},
            measure=(metadata.variable_measure or {}).get(name, "") if (metadata.variable_measure or {}).get(
                name) in ("nominal", "ordinal", "scale") else "",
            date=bool(DATE_FORMAT.search(str((metadata.original_variable_types or {}).get(name, "")))),
            values=[] if keeps_values(name, text) else None,
        )
        declare_missing(column, (metadata.missing_ranges or {}).get(name, []),
                        (metadata.missing_user_values or {}).get(name, []))
        columns.append(column)
    rows = 0
    for chunk, chunk_metadata in read_chunks(path):
        rows += len(chunk)
        for column in columns:
            # Stata names the .a-.z codes as it meets them in the rows
            column.missing_codes.update(normalize_code(code) for code in
                                        (chunk_metadata.missing_user_values or {}).get(column.name, []))
            column.add(chunk[column.name])
    return ExportProfile(path, stat_format(path), rows, columns, title=str(metadata.file_label or ""))


def declare_missing(column: ColumnProfile, ranges: list, values: list) -> None:
    """SPSS's user-missing values and ranges (a value is a range from itself to itself); the
    whole numbers of a short range are its codes too, found in the rows or not."""
    for entry in ranges:
        low, high = entry["lo"], entry["hi"]
        if low == high or isinstance(low, str):
            column.missing_codes.update({normalize_code(low), normalize_code(high)})
            continue
        column.missing_ranges.append((float(low), float(high)))
        if float(low).is_integer() and float(high).is_integer() and high - low <= MAX_RANGE_CODES:
            column.missing_codes.update(str(code) for code in range(int(low), int(high) + 1))
    column.missing_codes.update(normalize_code(value) for value in values)


def profile_csv(path: Path, keeps_values: Callable[[str, str], bool]) -> ExportProfile:
    """A CSV export, its layout told by its header rows (Qualtrics, SurveyMonkey or plain)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FocusgroupError(f"{path.name} does not exist.") from None
    except OSError as error:
        raise FocusgroupError(f"Cannot read {path.name} ({error.strerror}).") from None
    text = decode_export(raw, path.name)
    if not text.strip():
        raise FocusgroupError(f"{path.name} is empty; export it again from the survey platform.")
    first_line = text.lstrip("\n").partition("\n")[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, header=None, sep=delimiter)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise FocusgroupError(f"{path.name} is not a readable CSV ({one_line(error, 200)}).") from None
    kind, header_rows, wordings, notes = csv_layout(table, path.name)
    if len(table) <= header_rows:
        raise FocusgroupError(f"{path.name} has no respondent rows below its {header_rows} header row(s).")
    headers = [normalize_header(header) for header in table.iloc[0]]
    columns = []
    for position, header in enumerate(headers):
        referable = header and headers.count(header) == 1 and len(header) <= MAX_REFERENCE
        column = ColumnProfile(position, header, wordings[position], header if referable else position,
                               note=notes[position], values=[] if keeps_values(header, wordings[position]) else None)
        column.add(table.iloc[header_rows:, position])
        columns.append(column)
    return ExportProfile(path, kind, len(table) - header_rows, columns, header_rows, delimiter)


def csv_layout(table: pd.DataFrame, name: str) -> tuple[str, int, list[str], list[str]]:
    """(kind, header rows, each column's wording, each column's note) from the header rows."""
    headers = [normalize_header(header) for header in table.iloc[0]]
    second = [normalize_header(cell) for cell in table.iloc[1]] if len(table) > 1 else [""] * len(headers)
    import_ids = [qualtrics_import_id(cell) for cell in table.iloc[2]] if len(table) > 2 else [None]
    if any(import_id is not None for import_id in import_ids):
        notes = [f"Qualtrics ImportId {import_id}" if import_id else "" for import_id in import_ids]
        return "Qualtrics CSV", 3, [text or header for text, header in zip(second, headers)], notes
    qualtrics = sorted(QUALTRICS_NAMES & set(headers))
    if len(qualtrics) >= 2:
        raise FocusgroupError(
            f"{name} looks like a Qualtrics export (it has the columns {', '.join(qualtrics)}) "
            "but lacks its three header rows (column ids, question texts, {\"ImportId\": ...}); export it again "
            "from Qualtrics as CSV with its default header rows, not the legacy format, and without removing rows.")
    if SURVEYMONKEY_ANSWERS & set(second):
        return ("SurveyMonkey CSV", 2, *surveymonkey_wordings(headers, second))
    return "CSV", 1, headers, [""] * len(headers)


def qualtrics_import_id(cell) -> str | None:
    """The ImportId of a Qualtrics third-row cell ({"ImportId":"QID1"}), else None."""
    if not isinstance(cell, str) or "ImportId" not in cell:
        return None
    try:
        found = json.loads(cell)
    except ValueError:
        return None
    return str(found.get("ImportId")) if isinstance(found, dict) else None


def surveymonkey_wordings(headers: list[str], answers: list[str]) -> tuple[list[str], list[str]]:
    """Each column's wording: its question (a blank header continues the one before) and,
    under a matrix or multiple choice, its sub-answer; open ends are noted."""
    wordings, notes, question = [], [], ""
    for header, answer in zip(headers, answers):
        question = header or question
        open_ended = answer == "Open-Ended Response" or "please specify" in answer.casefold()
        wordings.append(question if answer in SURVEYMONKEY_ANSWERS or not answer else f"{question} - {answer}")
        notes.append("SurveyMonkey open-ended response" if open_ended else "")
    return wordings, notes
