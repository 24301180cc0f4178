"""The Data page's column mapper: an uploaded export's columns as an editable table, and the
edited table back as a mapping, which the engine turns into a spec.

The table has one row a column, indexed by its 0-based position in the file: what the file
says of it (header, wording, distinct values, the commonest ones) and the role
`focusgroup import` guesses for it (`engine.surveys.importing.propose_mapping`), with a
question's scale type and favourable end and the reason for the guess. The user edits the
role, type and end in `st.data_editor`; `mapping_from_table` reads them back. The upload is
read once per file (`proposal`, cached by the uploader's file id); saving goes through
`engine.surveys.registry.add_mapped_survey`, which reads it again from what it keeps.

    table = mapper_table(profile, propose_mapping(profile))
    mapping = mapping_from_table(table, "panel", "Brand panel, May")
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from engine.surveys.importing import ROLES, ColumnChoice, Mapping, propose_mapping
from engine.surveys.model import POSITIVE_ENDS, QUESTION_TYPES
from engine.surveys.profile import MAX_DISTINCT, ColumnProfile, ExportProfile
from engine.surveys.registry import DATA_SUFFIXES, profile_upload

UPLOAD_TYPES = [suffix.lstrip(".") for suffix in DATA_SUFFIXES]
TOP_VALUES = 3


@st.cache_data(max_entries=4, show_spinner="Reading the file's labels and counting its answers...")
def proposal(file_id: str, file_name: str, _data: bytes) -> tuple[str, pd.DataFrame, str, str]:
    """(summary, table, guessed survey id, guessed title) of one upload, read once per file
    id; FocusgroupError, naming the file, when it cannot be read."""
    profile = profile_upload(_data, file_name)
    mapping = propose_mapping(profile)
    summary = (f"{file_name}: {profile.kind}, {profile.rows:,} respondents, {len(profile.columns)} columns. "
               "The roles are guessed from the file's own labels and answers (the last column says why).")
    return summary, mapper_table(profile, mapping), mapping.survey_id, mapping.title


def mapper_table(profile: ExportProfile, mapping: Mapping) -> pd.DataFrame:
    """One row a column, indexed by position: column, label, distinct values, top values,
    role, type, positive end and why (the guess's reason)."""
    rows = []
    for column in profile.columns:
        choice = mapping.columns.get(column.position, ColumnChoice())
        rows.append({
            "column": column.name or f"column {column.position}",
            "label": column.text if column.text != column.name else "",
            "distinct": f"> {MAX_DISTINCT}" if column.overflow else str(len(column.counts)),
            "top_values": top_values(column),
            "role": choice.role,
            "type": choice.type,
            "positive": choice.positive,
            "why": mapping.notes.get(column.position, ""),
        })
    return pd.DataFrame(rows, index=pd.Index([column.position for column in profile.columns], name="position"))


def top_values(column: ColumnProfile, count: int = TOP_VALUES) -> str:
    """The commonest answers with their rows, labelled where the file labels them:
    "Male (1): 20 · Female (2): 20 · 3 more"."""
    if column.overflow:
        spread = f", {column.low:g} to {column.high:g}" if math.isfinite(column.low) else ""
        return f"more than {MAX_DISTINCT} distinct values{spread}"
    parts = []
    for code, rows in column.counts.most_common(count):
        label = column.labels.get(code, "")
        parts.append(f"{label} ({code}): {rows:,}" if label and label != code else f"{code}: {rows:,}")
    if len(column.counts) > count:
        parts.append(f"{len(column.counts) - count} more")
    if column.empty:
        parts.append(f"{column.empty:,} empty")
    return " · ".join(parts)


def mapping_from_table(table: pd.DataFrame, survey_id: str, title: str) -> Mapping:
    """The mapping an edited table describes (FocusgroupError for a bad id or choice)."""
    columns, notes = {}, {}
    for position, row in table.iterrows():
        role, kind, positive = (filled(row[key]) for key in ("role", "type", "positive"))
        columns[int(position)] = ColumnChoice(role or "skip", kind, positive)
        notes[int(position)] = filled(row["why"]) or ""
    return Mapping(survey_id.strip(), title, columns, notes)


def filled(value) -> str | None:
    """A cell's text, or None for a cell left empty (the editor gives None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return None
    return str(value)


def column_config() -> dict:
    """How the editor shows each column: the file's facts read-only, the choices as menus.
    Widths in pixels fit the table in a 1440-pixel-wide window beside the sidebar; the
    reasons scroll."""
    return {
        "column": st.column_config.TextColumn("Column", disabled=True, width=110),
        "label": st.column_config.TextColumn("Label", disabled=True, width=180),
        "distinct": st.column_config.TextColumn("Distinct", disabled=True, width=70,
                                                help="Distinct values in the rows"),
        "top_values": st.column_config.TextColumn("Top values", disabled=True, width=210,
                                                  help="The commonest values, with their labels and rows"),
        "role": st.column_config.SelectboxColumn(
            "Role", options=list(ROLES), required=True, width=120,
            help="demographic: a field slices are built from; question: asked of the personas; id: the respondent "
                 "id (one column); weight: the survey weight (one column); skip: left out"),
        "type": st.column_config.SelectboxColumn(
            "Type", options=list(QUESTION_TYPES), width=95,
            help="Questions only: ordinal (ordered answers), nominal (no order) or numeric (the codes are numbers); "
                 "empty: as the file suggests"),
        "positive": st.column_config.SelectboxColumn(
            "Positive end", options=list(POSITIVE_ENDS), width=110,
            help="Ordinal and numeric questions: the favourable end of the listed answers, whose option is the top "
                 "box; empty: as the file suggests"),
        "why": st.column_config.TextColumn("Why", disabled=True, width=480),
    }
