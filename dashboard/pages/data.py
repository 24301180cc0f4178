"""Data: browse a survey's questions and real answers by slice; load your own export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import resources, state
from engine.errors import FocusgroupError
from engine.metrics import answer_distribution
from engine.surveys.registry import add_user_survey

survey, _, _ = state.sidebar_pickers()
st.title("Data")
st.caption(f"**{survey.title}**: {survey.n_respondents:,} respondents, {len(survey.questions)} questions. "
           f"{survey.provenance}")

browse, upload = st.tabs(["Browse", "Load your own survey"])

with browse:
    question_id = st.selectbox("Question", [q.id for q in survey.questions], key=f"data_q_{survey.id}",
                               format_func=state.question_labeler(survey))
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
        rows.append({"value": value, "n": int(mask.sum()), **dict(zip(question.labels, shares))})
    if not counted.any():
        st.info("Nobody with a positive survey weight answered this question.")
    else:
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            label: st.column_config.ProgressColumn(label, format="percent", min_value=0, max_value=1)
            for label in question.labels})
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
        except FocusgroupError as error:
            st.error(f"The survey was not added: {error}")
            st.stop()
        resources.survey_catalog.clear()
        st.success(f"Added {checked.id!r}: {checked.n_respondents:,} respondents, {len(checked.questions)} "
                   f"questions, {len(checked.fields)} demographic fields. Pick it in the **Survey** menu.")
