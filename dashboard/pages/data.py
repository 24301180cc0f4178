"""Data: browse a survey's questions and real answers by slice; load your own export, with
its spec or through the column mapper (dashboard/column_mapper.py)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import column_mapper, resources, state
from engine.errors import FocusgroupError
from engine.metrics import answer_distribution
from engine.surveys.spec_text import plural
from engine.surveys.registry import add_mapped_survey, add_user_survey

# The column mapper's widgets, and what it keeps between runs
MAPPER_FILE, MAPPER_ID, MAPPER_TITLE, MAPPER_TABLE = "mapper_file", "mapper_id", "mapper_title", "mapper_columns"
MAPPER_SAVE, MAPPER_DOWNLOAD = "mapper_save", "mapper_download"
MAPPER_UPLOAD = "mapper_upload"  # the file id of the upload the widgets were filled from
MAPPER_SAVED = "mapper_saved"  # what the last save wrote, shown after the rerun that lists it
PICK_SURVEY = "mapper_pick_survey"  # a survey just saved, picked in the sidebar on the next run


def map_export() -> None:
    """Upload -> the guessed roles in an editable table -> save through the engine -> the spec."""
    st.markdown("Upload a survey export: a CSV (Qualtrics, SurveyMonkey or one header row), SPSS (.sav, .zsav, "
                ".por) or Stata (.dta) file. Each column's role is guessed from the file's own labels, as "
                "`focusgroup import` does; correct the table, name the survey and save. Type and positive end "
                "matter for questions only.")
    export = st.file_uploader("Survey export", type=column_mapper.UPLOAD_TYPES, key=MAPPER_FILE)
    if export is None:
        st.info("Choose a file to see its columns.")
        return
    try:
        summary, table, survey_id, title = column_mapper.proposal(export.file_id, export.name, export.getvalue())
    except FocusgroupError as error:
        st.error(f"The file cannot be mapped: {error}")
        return
    if st.session_state.get(MAPPER_UPLOAD) != export.file_id:  # a new file: its own guesses, no old edits
        st.session_state[MAPPER_UPLOAD] = export.file_id
        st.session_state[MAPPER_ID], st.session_state[MAPPER_TITLE] = survey_id, title
        st.session_state.pop(MAPPER_TABLE, None)
    st.caption(summary)
    with st.form("mapper", border=False):
        id_column, title_column = st.columns([1, 2])
        id_column.text_input("Survey id", key=MAPPER_ID,
                             help="Letters, digits, '_', '.' and '-'; saving again under an id replaces that survey.")
        title_column.text_input("Title", key=MAPPER_TITLE)
        edited = st.data_editor(table, key=MAPPER_TABLE, hide_index=True, width="stretch", placeholder="",
                                height=min(420, 35 * (len(table) + 1) + 3), column_config=column_mapper.column_config())
        save = st.form_submit_button("Save survey", type="primary", key=MAPPER_SAVE)
    if save:
        try:
            mapping = column_mapper.mapping_from_table(edited, st.session_state[MAPPER_ID],
                                                       st.session_state[MAPPER_TITLE])
            saved, spec = add_mapped_survey(export.getvalue(), export.name, mapping)
        except FocusgroupError as error:
            st.error(f"The survey was not saved: {error}")
            return
        replaced = saved.id in {entry["id"] for entry in resources.survey_catalog(resources.data_dir())}
        resources.survey_catalog.clear()  # the sidebar's menu lists it on the rerun
        if replaced:  # what was cached of the survey it replaces no longer holds
            resources.survey.clear()
            resources.SIMULATIONS.clear()
        st.session_state[MAPPER_SAVED] = {"upload": export.file_id, "id": saved.id, "spec": spec,
                                          "respondents": saved.n_respondents, "questions": len(saved.questions),
                                          "fields": len(saved.fields)}
        st.session_state[PICK_SURVEY] = saved.id
        st.rerun()
    saved = st.session_state.get(MAPPER_SAVED)
    if saved is not None and saved["upload"] == export.file_id:
        st.success(f"Saved {saved['id']!r}: {saved['respondents']:,} respondents, "
                   f"{plural(saved['questions'], 'question')}, {plural(saved['fields'], 'demographic field')}. It is "
                   "picked in the **Survey** menu: ask it on the **Focus group** page.")
        st.code(saved["spec"], language="toml")
        st.download_button("Download the spec", saved["spec"], file_name=f"{saved['id']}.toml",
                           mime="application/toml", key=MAPPER_DOWNLOAD, on_click="ignore",
                           icon=":material/download:")



if PICK_SURVEY in st.session_state:  # before the sidebar's menu exists, which may then not change it
    st.session_state[state.SURVEY] = st.session_state.pop(PICK_SURVEY)
survey, _, _ = state.sidebar_pickers()
st.title("Data")
st.caption(f"**{survey.title}**: {survey.n_respondents:,} respondents, {len(survey.questions)} questions. "
           f"{survey.provenance}")

browse, upload, mapper = st.tabs(["Browse", "Load your own survey", "Map your own export"])

with browse:
    question_ids = [q.id for q in survey.questions]
    question_id = st.selectbox("Question", question_ids, key=f"data_q_{survey.id}",
                               format_func=state.question_labeler(survey),
                               help=state.question_id_help(f"data_q_{survey.id}", question_ids))
    question = survey.question(question_id)
    st.markdown(f"**{question.text}**  \n*{question.type}*: {' | '.join(question.labels)}")
    field = st.selectbox("Break down by", [f.name for f in survey.fields], key=f"data_f_{survey.id}",
                         format_func=lambda name: survey.field(name).label)
    answers = survey.answers[question.id].to_numpy()
    weights = survey.weight_array()
    # Only answers that count: an answer with survey weight 0 has no share to show.
    counted = (answers != -1) & (weights > 0)
    groups = survey.demographics[field]
    rows = []
    for value in survey.field(field).values:
        mask = (groups == value).to_numpy() & counted
        if mask.sum() == 0:
            continue
        shares = answer_distribution(answers[mask], len(question.options), weights[mask])
        rows.append({"value": value, "n": int(mask.sum()), **dict(zip(question.labels, 100 * shares))})
    if not counted.any():
        st.info("Nobody with a positive survey weight answered this question.")
    else:
        # Whole values (never cut) and shares to one decimal, as a report prints them.
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            "value": st.column_config.TextColumn(survey.field(field).label, width="large"),
            **{label: st.column_config.ProgressColumn(label, format="%.1f%%", min_value=0, max_value=100)
               for label in question.labels}})
        everyone = answer_distribution(answers, len(question.options), weights)
        st.caption(f"Everyone: {', '.join(f'{l} {s:.0%}' for l, s in zip(question.labels, everyone))}; "
                   f"{int((answers == -1).sum())} without an answer.")

with upload:
    st.markdown("Upload a CSV export (one row per respondent, one column per question) and its spec (TOML; "
                "see the README for the format). The spec reads only the uploaded CSV: leave out `file` in "
                "`[data]`, or set it to the CSV's name.")
    csv_file = st.file_uploader("CSV export", type=["csv"], key="upload_csv")
    spec_file = st.file_uploader("Spec", type=["toml"], key="upload_spec")
    if csv_file is not None and spec_file is not None and st.button("Check and add", type="primary"):
        try:
            checked = add_user_survey(spec_file.getvalue(), csv_file.getvalue(), csv_file.name)
        except FocusgroupError as error:  # shown in its tab; the mapper's tab below still draws
            st.error(f"The survey was not added: {error}")
        else:
            resources.survey_catalog.clear()
            st.success(f"Added {checked.id!r}: {checked.n_respondents:,} respondents, {len(checked.questions)} "
                       f"questions, {len(checked.fields)} demographic fields. Pick it in the **Survey** menu.")

with mapper:
    map_export()
