"""The text of a proposed spec (`engine/surveys/importing.py`): option entries, names, the
report's phrases, and TOML written without a TOML library (values as JSON strings, whose
escapes TOML shares).

    toml_lines({"id": "q1", "options": ["Yes", {"code": "2", "label": "No"}]})
    # ['id = "q1"', 'options = [', '  "Yes",', '  {code = "2", label = "No"},', ']']
"""

from __future__ import annotations

import json
import re

from engine.errors import one_line
from engine.surveys.profile import ColumnProfile, as_number
from engine.surveys.spec_checks import shown


def option(codes: list[str], label: str):
    """One option entry: a bare code when it is its own label."""
    if len(codes) == 1:
        return codes[0] if codes[0] == label else {"code": codes[0], "label": label}
    return {"codes": codes, "label": label}


def off_scale(option, label: str) -> dict:
    entry = {"code": option, "label": label} if isinstance(option, str) else dict(option)
    return {**entry, "off_scale": True}


def code_order(code: str):
    """Numbers by value, before other codes in alphabetical order."""
    number = as_number(code)
    return (0, number, "") if number is not None else (1, 0.0, code.casefold())


def describe(column: ColumnProfile) -> str:
    """A column as the report names it: its header and, when different, its wording."""
    name = column.name or f"column {column.position}"
    return name if not column.text or column.text == column.name else f"{name} {shown(column.text)}"


def shown_labels(labels: list[str], limit: int = 4) -> str:
    more = f", ... {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(one_line(label, 30) for label in labels[:limit]) + more


def missing_note(missing: list[str]) -> str:
    return f"; missing {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}" if missing else ""


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def slug(text: str, words: int = 6) -> str:
    """A readable id from a wording: "Do you ever smoke cigarettes?" -> "do_you_ever_smoke_cigarettes"."""
    return "_".join(re.findall(r"[a-z0-9]+", text.casefold())[:words])[:48]


def unique_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    return candidate


def toml_value(value) -> str:
    """A TOML value: strings as JSON strings (whose escapes TOML shares), lists and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"


def toml_lines(table: dict) -> list[str]:
    """`key = value` lines; options and other arrays of tables one item a line."""
    lines = []
    for key, value in table.items():
        if isinstance(value, list) and any(isinstance(item, dict) for item in value) or key == "options":
            lines += [f"{key} = ["] + [f"  {toml_value(item)}," for item in value] + ["]"]
        else:
            lines.append(f"{key} = {toml_value(value)}")
    return lines
