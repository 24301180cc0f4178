"""Session-state keys and the pickers every page shares (survey and model, in the sidebar)."""

from __future__ import annotations

import os

import streamlit as st

from dashboard import resources
from engine.errors import FocusgroupError

SURVEY = "survey_id"
MODEL = "model_choice"
TEMPERATURE = "temperature"
SIMULATION = "simulation_request"
TRAIN_JOB = "train_job"
DEFAULTS = {SURVEY: "gss2018", TEMPERATURE: 1.0, SIMULATION: None, TRAIN_JOB: None}


# Choices that outlive a page switch. Streamlit forgets a widget's value when the page that
# drew it is left, so a page would open on the first survey; writing each value back at
# the top of every run makes it the widget's starting value on the next page.
KEPT_KEYS = (SURVEY, MODEL, TEMPERATURE)
KEPT_PREFIXES = ("question_", "slice_", "board_", "data_f_", "data_q_", "kind_")


def initialise() -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    for key in list(st.session_state):
        if key in KEPT_KEYS or str(key).startswith(KEPT_PREFIXES):
            st.session_state[key] = st.session_state[key]


def sidebar_pickers():
    """Survey and model pickers; returns (survey, adapter path or None, model label)."""
    initialise()
    catalog = resources.survey_catalog(resources.data_dir())
    ids = [entry["id"] for entry in catalog]
    titles = {entry["id"]: entry["title"] for entry in catalog}
    if st.session_state[SURVEY] not in ids:
        st.session_state[SURVEY] = ids[0]
    with st.sidebar:
        survey_id = st.selectbox("Survey", ids, key=SURVEY, format_func=lambda i: f"{i}: {titles[i]}")
        choices = resources.adapter_choices(survey_id)
        labels = list(choices)
        if st.session_state.get(MODEL) not in labels:
            st.session_state[MODEL] = labels[0]
        label = st.selectbox("Model", labels, key=MODEL,
                             help="SmolLM2-135M-Instruct with an adapter: one trained on this survey (the default "
                                  "where there is one), the general one trained across surveys (the default "
                                  "elsewhere), or none (the bare model).")
    try:
        survey = resources.survey(survey_id, resources.data_dir())
    except FocusgroupError as error:
        st.error(str(error))
        st.stop()
    return survey, choices[label], label


def apply_link(survey) -> None:
    """Preset the slice and question from the page address, once per session: a link like
    `/?question=natenrgy&partyid=Strong+Democrat` opens that slice (values comma-separated)."""
    if st.session_state.get("link_applied"):
        return
    st.session_state["link_applied"] = True
    parameters = st.query_params
    if "question" in parameters and parameters["question"] in [q.id for q in survey.questions]:
        st.session_state[f"question_{survey.id}"] = parameters["question"]
    for field in survey.fields:
        if field.name in parameters:
            wanted = [v.strip().casefold() for v in parameters[field.name].split(",")]
            st.session_state[f"slice_{survey.id}_{field.name}"] = [v for v in field.values if v.casefold() in wanted]


def question_labeler(survey):
    """A short label per question: its id and the part of its wording that differs from the
    others (surveys often repeat a long preamble before each item)."""
    texts = [q.text for q in survey.questions]
    shared = os.path.commonprefix(texts) if len(texts) > 1 else ""
    shared = shared[: shared.rfind(" ") + 1] if " " in shared else ""

    def label(question_id: str) -> str:
        text = survey.question(question_id).text[len(shared):]
        return f"{question_id}: {text[:120]}{'…' if len(text) > 120 else ''}"

    return label
