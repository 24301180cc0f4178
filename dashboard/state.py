"""Session-state keys and the pickers every page shares (survey and model, in the sidebar)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import streamlit as st

from dashboard import resources
from engine.errors import FocusgroupError
from engine.models import shipped_adapter

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


def default_model(choices: dict[str, str | None], survey_id: str) -> str:
    """The label preselected in the model picker: the adapter shipped as this survey's default
    (`engine.models.shipped_adapter`), else the bare model. An adapter trained here is offered
    but never preselected, so a new training run cannot change which model answers unasked."""
    shipped = shipped_adapter(survey_id)
    for label, path in choices.items():
        if path is not None and shipped is not None and Path(path).resolve() == shipped.resolve():
            return label
    return resources.BARE_MODEL if resources.BARE_MODEL in choices else next(iter(choices))


def model_description(model_name: str, adapter: str | None) -> str:
    """Base model and adapter in words, for a subtitle: `SmolLM2-135M-Instruct + gss2018-smollm2`
    (`ModelConfig.name`), or the base model with "no adapter"."""
    return model_name if adapter else f"{model_name} (no adapter)"


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
        default = default_model(choices, survey_id)
        labels = [default] + [label for label in choices if label != default]
        if st.session_state.get(MODEL) not in labels:
            st.session_state[MODEL] = default
        label = st.selectbox("Model", labels, key=MODEL,
                             help="SmolLM2-135M-Instruct with an adapter: the one shipped for this survey is the "
                                  "default (trained on this survey where there is one, else the general one "
                                  "trained across surveys); adapters trained on the Train page are listed but "
                                  "only used when picked here; or none (the bare model).")
    try:
        survey = resources.survey(survey_id, resources.data_dir())
    except FocusgroupError as error:
        st.error(str(error))
        st.stop()
    return survey, choices[label], label


def question_labeler(survey):
    """A label per question in the spec's own words: its wording from the start of the
    sentence where it differs from the others (surveys often repeat a long preamble before
    each item, "We are faced with many problems... Are we spending too much, too little, or
    about the right amount on"), whole up to 160 characters. The id stays out of sight
    (`question_id_help` puts it in a tooltip) except where two questions would read alike,
    which then end in their ids in brackets."""
    texts = [q.text for q in survey.questions]
    shared = os.path.commonprefix(texts) if len(texts) > 1 else ""
    # where the last whole sentence of the shared preamble ends (0: none, keep every word)
    start = max((shared.rfind(end) + len(end) for end in (". ", "? ", "! ", ": ") if end in shared), default=0)

    def wording(question_id: str) -> str:
        text = " ".join(survey.question(question_id).text[start:].split())
        return f"{text[:160]}{'…' if len(text) > 160 else ''}"

    repeated = {text for text, count in Counter(wording(q.id) for q in survey.questions).items() if count > 1}

    def label(question_id: str) -> str:
        text = wording(question_id)
        return f"{text} ({question_id})" if text in repeated else text

    return label


def question_id_help(key: str, question_ids: list[str]) -> str:
    """The tooltip of a question picker: the chosen question's id in the survey (the
    picker's labels are the questions' wording)."""
    chosen = st.session_state.get(key)
    chosen = chosen if chosen in question_ids else (question_ids[0] if question_ids else "")
    return f"Id in the survey: `{chosen}`."
