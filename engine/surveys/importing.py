"""`focusgroup import`: a complete survey spec proposed from an export's own metadata.

    focusgroup import panel.sav                          # writes panel.toml beside it
    focusgroup import brand.csv --out surveys/brand.toml --id brand

`propose_spec` profiles the file (engine/surveys/profile.py: SPSS, Stata, Qualtrics,
SurveyMonkey or plain CSV) and gives each column one role, tried in this order:
1. the respondent id: named like one (ResponseId, Respondent ID, caseid), every value
   present and distinct;
2. the weight: named like one (weight, wt, wgt, finalwt), a number >= 0 in every row;
3. skipped: survey bookkeeping (timestamps, IP addresses, durations, e-mail, names,
   Qualtrics' response metadata), free text, no answers, a single answer, or more
   distinct answers than a question can offer (26);
4. a demographic field: named or worded like age, gender, race, education, income, ...
   (engine/surveys/vocabulary.py); a numeric age is banded;
5. a question: nominal, ordinal or numeric from SPSS's measurement level, else from its
   answers (a known scale such as agreement is ordinal, unlabelled numbers numeric).
Options are the value labels plus every code found in the rows, so the spec loads with no
value left out; missing codes are the file's user-missing values and ranges; on a scale,
answers like "Don't know" are kept `off_scale`. Each guess is one line of the report and
a comment above its entry in the spec; `import_survey` writes the spec atomically and
never replaces a file unless asked to.

The same roles can be chosen by hand (the dashboard's column mapper): `propose_mapping`
gives the guesses as a `Mapping` (one `ColumnChoice` per column: role, scale type and
favourable end), and `spec_from_mapping` writes the spec a mapping describes, through the
same code as the guesses, so a column that cannot take its chosen role is an error naming it:

    profile = profile_export(Path("panel.sav"), is_respondent_id)
    mapping = propose_mapping(profile)
    mapping.columns[3] = ColumnChoice("question", "nominal")
    text = spec_from_mapping(profile, mapping)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.atomic import atomic_write_text
from engine.errors import FocusgroupError, one_line
from engine.surveys.model import DEFAULT_POSITIVE, POSITIVE_ENDS, QUESTION_TYPES
from engine.surveys.profile import MAX_DISTINCT, ColumnProfile, ExportProfile, as_number, profile_export
from engine.surveys.spec import MAX_OPTIONS
from engine.surveys.spec_checks import TRUST_PATHS_VARIABLE, check_survey_id, shown
from engine.surveys.spec_text import (
    code_order, describe, missing_note, off_scale, option, plural, shown_labels, slug, toml_lines, unique_name,
)
from engine.surveys.vocabulary import (
    bookkeeping, demographic_name, is_off_scale, is_respondent_id, is_weight_name, known_scale, label_order,
)

AGE_BINS = (18, 30, 45, 60)
MAX_AGE = 120
FREE_TEXT_SHARE = 0.9  # a text column with this many distinct answers per answer is free text
QUALTRICS_METADATA = {
    "startDate", "endDate", "status", "ipAddress", "progress", "duration", "finished", "recordedDate", "_recordId",
    "recipientLastName", "recipientFirstName", "recipientEmail", "externalDataReference", "locationLatitude",
    "locationLongitude", "distributionChannel", "userLanguage",
}
ORDERED = ("education levels", "their leading numbers")
# The roles a column can be given, as an error names them
ROLES = {"demographic": "a demographic field", "question": "a question", "id": "the respondent id",
         "weight": "the weight", "skip": "skipped"}


class Skip(Exception):
    """A column left out of the spec; the message says why."""


@dataclass(frozen=True)
class Choices:
    """A column's answers as spec options, in order, with its missing codes."""

    options: list  # spec option entries: "Yes" (code and label), or {code = "1", label = "Male"}
    labels: list[str]
    missing: list[str]
    numeric: bool  # every option's code is a number
    order: str  # why they are in this order


@dataclass(frozen=True)
class ColumnChoice:
    """The role chosen for one column, and for a question its scale type and favourable end
    (None: as `focusgroup import` would guess them; both ignored for the other roles)."""

    role: str = "skip"  # demographic, question, id (the respondent id), weight or skip
    type: str | None = None  # ordinal, nominal or numeric
    positive: str | None = None  # ordinal, numeric: the favourable end of the options, first or last

    def __post_init__(self):
        for key, value, allowed in (("role", self.role, tuple(ROLES)), ("type", self.type, (None, *QUESTION_TYPES)),
                                    ("positive end", self.positive, (None, *POSITIVE_ENDS))):
            if value not in allowed:
                raise FocusgroupError(f"A column's {key} must be one of {', '.join(filter(None, allowed))}; got "
                                      f"{shown(value)}.")


@dataclass
class Mapping:
    """What a spec makes of an export: its id and title, and a `ColumnChoice` per column,
    keyed by the column's 0-based position (a column left out is skipped). `notes` say why
    each column was guessed as it was, for display."""

    survey_id: str
    title: str
    columns: dict[int, ColumnChoice] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)

    def __post_init__(self):
        check_survey_id(self.survey_id, "The survey id")
        self.title = " ".join(str(self.title or "").split()) or self.survey_id


@dataclass(frozen=True)
class Proposal:
    """A proposed spec: its TOML text and the report of every guess, one line each."""

    spec_path: Path
    text: str
    report: list[str]
    fields: int
    questions: int


def import_survey(file: Path | str, out: Path | str | None = None, survey_id: str | None = None,
                  data_dir: Path | None = None, force: bool = False) -> Proposal:
    """Propose a spec for `file` and write it to `out` (default: beside the file, as .toml)."""
    file = Path(file)
    spec_path = Path(out) if out is not None else file.with_suffix(".toml")
    if spec_path.suffix.lower() != ".toml":
        raise FocusgroupError(f"--out {spec_path} must end in .toml, which is how --survey tells a spec file.")
    if spec_path.is_dir():
        raise FocusgroupError(f"--out {spec_path} is a folder; give the spec file's path, ending in .toml.")
    if spec_path.exists() and not force:
        raise FocusgroupError(f"{spec_path} already exists; pass --force to replace it, or --out another path.")
    proposal = propose_spec(file, spec_path, survey_id, data_dir)
    atomic_write_text(spec_path, proposal.text)
    return proposal


def propose_spec(file: Path | str, spec_path: Path | str, survey_id: str | None = None,
                 data_dir: Path | None = None) -> Proposal:
    """The spec `file`'s metadata suggests, to be written at `spec_path` (which sets the
    relative `file` path in [data]); reads the file, writes nothing."""
    file, spec_path = Path(file), Path(spec_path)
    if not file.is_file():
        raise FocusgroupError(f"{file} does not exist or is not a file.")
    survey_id = check_survey_id(survey_id, "--id") if survey_id is not None else survey_id_from(file)
    return Proposer(profile_export(file, is_respondent_id), spec_path, survey_id, data_dir).propose()


def survey_id_from(file: Path) -> str:
    """A valid survey id from the file's name: "Brand tracker (May).sav" -> "Brand-tracker-May"."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", file.stem).replace("..", ".").strip("-_.")[:64]
    return name if name and name[0].isalnum() else "survey"


def propose_mapping(profile: ExportProfile, survey_id: str | None = None) -> Mapping:
    """The roles `focusgroup import` would give the profiled export's columns, as a mapping
    to review; unlike `propose_spec` it is not refused for lacking a question or a field."""
    survey_id = check_survey_id(survey_id, "--id") if survey_id is not None else survey_id_from(profile.path)
    proposer = Proposer(profile, profile.path.with_suffix(".toml"), survey_id, None)
    proposer.take_all()
    return Mapping(survey_id, proposer.title, proposer.chosen, proposer.notes)


def spec_from_mapping(profile: ExportProfile, mapping: Mapping, spec_path: Path | str | None = None) -> str:
    """The spec text `mapping` makes of the profiled export, to be written at `spec_path`
    (default: `<id>.toml` beside the export, so [data] `file` is the export's own name).

    Each column takes the role it is given, built as `focusgroup import` builds it (options
    from labels and found codes, missing codes, a banded age, off-scale answers on a scale);
    one that cannot take it (a question with more than 26 answers, two respondent ids) is a
    FocusgroupError naming the file and the column. Nothing is read but the profile."""
    spec_path = Path(spec_path) if spec_path is not None else profile.path.with_name(f"{mapping.survey_id}.toml")
    proposer = Proposer(profile, spec_path, mapping.survey_id, None, title=mapping.title,
                        origin="Mapped in the dashboard's column mapper from {file}; each entry says "
                                           "why it was chosen.")
    for column in profile.columns:
        note = mapping.notes.get(column.position, "")
        proposer.place(column, mapping.columns.get(column.position, ColumnChoice()),
                       note.removeprefix("skipped: ") if note.startswith("skipped: ") else "left out")
    return proposer.finish().text


class Proposer:
    """Gives every column of one profiled export its role, then writes the spec's text."""

    def __init__(self, profile: ExportProfile, spec_path: Path, survey_id: str, data_dir: Path | None,
                 title: str | None = None, origin: str = "Proposed by `focusgroup import` from {file}; each entry "
                                                           "says why it was guessed."):
        self.profile, self.spec_path, self.survey_id, self.data_dir = profile, spec_path, survey_id, data_dir
        self.title, self.origin = title or profile.title or profile.path.stem, origin
        self.chosen: dict[int, ColumnChoice] = {}  # column position -> the role it took
        self.notes: dict[int, str] = {}  # column position -> why
        self.respondent_id: ColumnProfile | None = None
        self.weight: ColumnProfile | None = None
        self.fields: list[tuple[dict, str]] = []  # (entry, why)
        self.questions: list[tuple[dict, str]] = []
        self.skipped: list[str] = []
        self.report = [f"Read {profile.path.name}: {profile.kind}, {profile.rows:,} respondents, "
                       f"{len(profile.columns)} columns."]

    def propose(self) -> Proposal:
        self.take_all()
        return self.finish()

    def take_all(self) -> None:
        """Guess every column's role."""
        for column in self.profile.columns:
            try:
                self.take(column)
            except Skip as skip:
                self.skip(column, str(skip))

    def finish(self) -> Proposal:
        """The spec of the roles taken, refused without a question or a demographic field."""
        name = self.profile.path.name
        if not self.questions:
            raise FocusgroupError(f"{name} has no column usable as a question (each needs 2 to {MAX_OPTIONS} "
                                  "distinct answers); check that it is the survey's data, not a summary.")
        if not self.fields:
            raise FocusgroupError(f"{name} has no column named or labelled like a demographic (age, gender, race, "
                                  "education, income, region, party, ...), and a spec needs one; rename or label "
                                  "one such column, then import again.")
        text = self.render()
        self.report.append(f"Proposed {self.spec_path}: {plural(len(self.fields), 'demographic field')}, "
                           f"{plural(len(self.questions), 'question')}. Check each guess, then: focusgroup questions "
                           f"--survey {self.spec_path}")
        return Proposal(self.spec_path, text, self.report, len(self.fields), len(self.questions))

    # -- roles ----------------------------------------------------------------------------
    def choose(self, column: ColumnProfile, choice: ColumnChoice, line: str, note: str | None = None) -> None:
        """Record the role `column` took, with the report's `line` and the mapper's `note` on why."""
        self.chosen[column.position] = choice
        self.notes[column.position] = note or line
        self.report.append(line)

    def skip(self, column: ColumnProfile, why: str) -> None:
        self.skipped.append(f"{describe(column)}: {why}")
        self.notes[column.position] = f"skipped: {why}"
        self.report.append(f"skipped {describe(column)}: {why}")

    def place(self, column: ColumnProfile, choice: ColumnChoice, skipped: str = "left out") -> None:
        """Give `column` the role chosen for it (`skipped` says why when it is left out); one
        it cannot take is an error naming it."""
        try:
            if choice.role in ("id", "weight"):
                attribute = "respondent_id" if choice.role == "id" else "weight"
                taken = getattr(self, attribute)
                if taken is not None:
                    raise Skip(f"{describe(taken)} is already {ROLES[choice.role]}, and a survey has one")
                setattr(self, attribute, column)
                self.choose(column, choice, f"{attribute.replace('_', ' ')}: {describe(column)} (chosen)")
            elif choice.role == "demographic":
                check_answers(column)
                name, why = demographic_name(column.name, column.text) or (
                    slug(column.name or column.text) or f"field_{column.position}", "chosen as a demographic")
                self.add_field(column, name, why)
            elif choice.role == "question":
                check_answers(column)
                self.add_question(column, choice)
            else:
                self.skip(column, skipped)
        except Skip as skip:
            raise FocusgroupError(f"{self.profile.path.name}: column {describe(column)} cannot be "
                                  f"{ROLES[choice.role]}: {skip}.") from None

    def take(self, column: ColumnProfile) -> None:
        if is_respondent_id(column.name, column.text):
            if self.respondent_id is None and column.unique:
                self.respondent_id = column
                self.choose(column, ColumnChoice("id"), f"respondent id: {describe(column)} (named like one; "
                                                        f"{column.rows:,} distinct values)")
                return
            raise Skip("named like a respondent id, but " + (
                "the id is already taken" if self.respondent_id else "its values are empty or repeated"))
        if is_weight_name(column.name) and self.weight is None and not column.labels:
            self.take_weight(column)
            return
        why = self.bookkeeping(column)
        if why is not None:
            raise Skip(why)
        check_answers(column)
        found = demographic_name(column.name, column.text)
        if found is not None:
            self.add_field(column, *found)
        else:
            self.add_question(column)

    def take_weight(self, column: ColumnProfile) -> None:
        """A weight: a number >= 0 in every row; abbreviated names (wt, wgt) need fractions
        too, since whole numbers under such a name are as likely answers."""
        problem = ("some rows have none" if column.empty or column.missing_seen else
                   "it holds text" if column.words else
                   "it holds negative numbers or only zeros" if not (column.low >= 0 and column.high > 0) else
                   "its values are whole numbers, more like answers" if not (
                       column.fractional or "weight" in f"{column.name} {column.text}".casefold()) else None)
        if problem is not None:
            raise Skip(f"named like a weight, but {problem}")
        self.weight = column
        self.choose(column, ColumnChoice("weight"),
                    f"weight: {describe(column)} (named like one; {column.low:g} to {column.high:g})")

    def bookkeeping(self, column: ColumnProfile) -> str | None:
        if column.date:
            return "a date or time"
        import_id = column.note.removeprefix("Qualtrics ImportId ")
        if import_id in QUALTRICS_METADATA:
            return f"Qualtrics response metadata ({import_id})"
        return bookkeeping(column.name, column.sample if column.words else [])

    def add_field(self, column: ColumnProfile, name: str, why: str) -> None:
        taken = {entry["name"] for entry, _ in self.fields}
        if name in taken:
            name = unique_name(f"{name}_{slug(column.name) or column.position}", taken)
        entry = {"name": name, "label": column.text or column.name, "column": column.reference}
        labelled = [code for code in column.labels if not column.is_missing(code)]
        if name == "age" and not labelled and (column.overflow or len(column.counts) > 12) and not column.words:
            if not 0 <= column.low <= column.high <= MAX_AGE:
                raise Skip(f"{why}, but its numbers run from {column.low:g} to {column.high:g}, not ages")
            bins = sorted({min(int(column.low), AGE_BINS[0]), *AGE_BINS})
            missing = sorted(column.missing_codes | column.missing_seen)
            entry.update(bins=bins, **({"missing": missing} if missing else {}))
            detail = f"numbers {column.low:g} to {column.high:g}, banded at {', '.join(map(str, bins))}"
        else:
            if column.overflow:
                raise Skip(f"{why}, but it has more than {MAX_DISTINCT} distinct values; band it with `bins` or "
                           "recode it, then add it by hand")
            choices = self.choices(column)
            entry.update(options=choices.options, **({"missing": choices.missing} if choices.missing else {}))
            detail = f"{len(choices.options)} values ({shown_labels(choices.labels)}){missing_note(choices.missing)}"
        why = f"{why}; {detail}"
        self.fields.append((entry, why))
        self.choose(column, ColumnChoice("demographic"), f"field {name}: {describe(column)}: {why}",
                    f"field {name}: {why}")

    def add_question(self, column: ColumnProfile, chosen: ColumnChoice | None = None) -> None:
        """A question of the type its metadata and answers suggest, or of the `chosen` one."""
        if column.overflow:
            raise Skip(f"more than {MAX_DISTINCT} distinct numbers ({column.low:g} to {column.high:g}), too many "
                       "for answer options")
        choices = self.choices(column)
        kind, why, positive = question_type(column, choices)
        forced = chosen is not None and chosen.type is not None
        if forced and chosen.type != kind:
            kind, why = chosen.type, "chosen"
            if kind == "numeric" and not choices.numeric:
                raise Skip(f"a numeric question needs numbers for codes, and its answers "
                           f"({shown_labels(choices.labels)}) are not; make it ordinal or nominal")
        if chosen is not None and chosen.positive is not None:
            positive = chosen.positive
        positive = None if kind == "nominal" else positive
        options = choices.options
        if kind != "nominal":
            options = [off_scale(option, label) if is_off_scale(label) else option
                       for option, label in zip(choices.options, choices.labels)]
            if sum(not is_off_scale(label) for label in choices.labels) < 2:
                if forced:
                    raise Skip(f"fewer than two of its answers ({shown_labels(choices.labels)}) are on a scale; "
                               "make it nominal")
                kind, why, positive = "nominal", f"{why}, but too few answers on the scale", None
                options = choices.options
        question_id = unique_name(self.question_id(column), {entry["id"] for entry, _ in self.questions})
        entry = {"id": question_id, "column": column.reference, "text": column.text or column.name, "type": kind}
        if positive == "last":
            entry["positive"] = "last"
        entry.update(options=options, **({"missing": choices.missing} if choices.missing else {}))
        ends = "" if kind == "nominal" else f", favourable end {positive or 'first'}"
        why = (f"{kind} ({why}{ends}), {len(options)} options ({shown_labels(choices.labels)})"
               f"{missing_note(choices.missing)}")
        self.questions.append((entry, why))
        end = positive or (None if kind == "nominal" else DEFAULT_POSITIVE)
        self.choose(column, ColumnChoice("question", kind, end), f"question {question_id}: {describe(column)}: {why}",
                    f"question {question_id}: {why}")

    def question_id(self, column: ColumnProfile) -> str:
        """Stat files and Qualtrics name their columns (q12, Q3_1); other CSVs get a slug of the wording."""
        if self.profile.kind not in ("SurveyMonkey CSV", "CSV") and column.name:
            return column.name
        return slug(column.text or column.name) or f"q{column.position}"

    def choices(self, column: ColumnProfile) -> Choices:
        """The labelled and the found codes as options (one option per label), in order; the
        declared and found missing codes apart."""
        found = (set(column.counts) | set(column.labels)) - {""}
        missing = sorted({code for code in found if column.is_missing(code)} | column.missing_codes - {""},
                         key=code_order)
        codes = [code for code in found if code not in missing]
        numeric = all(as_number(code) is not None for code in codes)
        if numeric or column.labels:
            codes, order = sorted(codes, key=code_order), "codes"
        else:
            codes, order = label_order(codes)
        grouped: dict[str, list[str]] = {}
        for code in codes:
            grouped.setdefault(" ".join(str(column.labels.get(code) or code).split()), []).append(code)
        if len(grouped) > MAX_OPTIONS:
            raise Skip(f"{len(grouped)} distinct answers, more than the {MAX_OPTIONS} options a question can offer")
        if len(grouped) < 2:
            only = f" ({shown(next(iter(grouped)))})" if grouped else ""
            raise Skip(f"a single answer{only}: a ticked box of a multiple-choice question, or the same for everyone")
        options = [option(codes, label) for label, codes in grouped.items()]
        return Choices(options, list(grouped), missing, numeric, order)

    # -- the spec's text ------------------------------------------------------------------
    def render(self) -> str:
        profile = self.profile
        lines = [f"# {self.origin.format(file=f'{profile.path.name} ({profile.kind})')}",
                 f"# Check them (and fill in `license`), then: focusgroup questions --survey {self.spec_path.name}",
                 *toml_lines({"id": self.survey_id, "title": self.title,
                              "description": f"{profile.rows:,} respondents, imported from {profile.path.name}.",
                              "source": profile.path.name, "license": "unknown"}),
                 "", "[data]"]
        data = {"file": self.data_file()}
        if profile.header_rows != 1:
            data["header_rows"] = profile.header_rows
        if profile.delimiter != ",":
            data["delimiter"] = profile.delimiter
        if self.respondent_id is not None:
            data["respondent_id"] = self.respondent_id.reference
        if self.weight is not None:
            data["weight"] = self.weight.reference
        lines += toml_lines(data)
        for table, entries in (("fields", self.fields), ("questions", self.questions)):
            for entry, why in entries:
                lines += ["", f"[[{table}]]", f"# {one_line(why)}", *toml_lines(entry)]
        if self.skipped:
            lines += ["", "# Not imported:"] + [f"# {one_line(line)}" for line in self.skipped]
        return "\n".join(lines) + "\n"

    def data_file(self) -> str:
        """The data file as [data] `file` reaches it: relative to the spec's folder or the
        data directory when inside one, else its absolute path (a trusted spec only)."""
        file = self.profile.path.resolve()
        for root in (self.spec_path.parent.resolve(), self.data_dir):
            if root is not None and file.is_relative_to(Path(root).resolve()):
                return file.relative_to(Path(root).resolve()).as_posix()
        self.report.append(f"note: {file} lies outside the spec's folder and the data directory, so the spec names "
                           f"its absolute path, which loads only with {TRUST_PATHS_VARIABLE}=1; or move the spec "
                           "beside it.")
        return str(file)


def check_answers(column: ColumnProfile) -> None:
    """Skip a column without answers, or of free text."""
    answered = sum(column.counts.values())
    if column.note.endswith("open-ended response"):
        raise Skip("free text (a SurveyMonkey open-ended response)")
    if column.note.startswith("Qualtrics ImportId") and column.note.endswith("_TEXT"):
        raise Skip("free text (a Qualtrics text entry)")
    if column.words and column.overflow:
        raise Skip(f"free text (more than {MAX_DISTINCT} distinct answers)")
    if not column.overflow and not column.counts and not column.labels:
        raise Skip("no answers in any row")
    if column.words and (len(column.counts) > MAX_OPTIONS or (
            answered >= 20 and len(column.counts) >= FREE_TEXT_SHARE * answered)):
        raise Skip(f"free text ({len(column.counts)} distinct answers in {answered:,} rows)")


def question_type(column: ColumnProfile, choices: Choices) -> tuple[str, str, str | None]:
    """(type, why, favourable end or None) of a question."""
    scale = known_scale(choices.labels)
    positive = None if scale is None else scale[0]
    if column.measure:
        kind = {"nominal": "nominal", "ordinal": "ordinal"}.get(column.measure, "numeric" if choices.numeric
                                                                  else "ordinal")
        return kind, f"SPSS measurement level {column.measure}", None if kind == "nominal" else positive
    if scale is not None:
        return "ordinal", f"its answers are the {scale[1]} scale", positive
    if not column.labels and choices.numeric and len(choices.labels) >= 3:
        return "numeric", "unlabelled numbers, higher taken as favourable", "last"
    if choices.order in ORDERED:
        return "ordinal", f"its answers are ordered by {choices.order}", None
    return "nominal", "answers with no known order", None
