"""The page address as a shareable view of the Focus group page.

    /?survey=gss2018&model=gss2018-smollm2&question=natenrgy&partyid=Strong+Democrat&temperature=0.5

carries the survey, the model (an adapter folder's name, or `none` for the bare model), the
survey question, the slice (one parameter per demographic field, repeated for several
values; comma-separated values are read too) and the temperature. The address is read once when a
session opens (`preset_pickers` before the sidebar's pickers are drawn, `preset_view`
before the page's inputs) and written back on every run (`write_view`), so it always
shows the current choices and can be copied. A value in a link that this dashboard does
not have (a question id, a field or one of its values, a temperature out of range, a
model) is named in a warning (`warnings`), never silently replaced.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import resources, state

SURVEY, MODEL, QUESTION, TEMPERATURE = "survey", "model", "question", "temperature"
BARE = "none"
APPLIED, WARNINGS = "link_applied", "link_warnings"
TEMPERATURE_RANGE, TEMPERATURE_STEP = (0.0, 2.0), 0.05


def model_names(choices: dict[str, str | None]) -> dict[str, str]:
    """The name a link uses for each model choice (its adapter folder's name, `none` for
    the bare model) -> the choice's label; the first of two folders of one name wins."""
    names: dict[str, str] = {}
    for label, path in choices.items():
        names.setdefault(Path(path).name if path else BARE, label)
    return names


def parameter(name: str) -> list[str]:
    """The values a parameter has in the address (the first counts where one is meant)."""
    return [value.strip() for value in st.query_params.get_all(name) if value.strip()]


def split_values(raw: str, known: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(known values, unknown parts) of one slice parameter, which may hold several values
    separated by commas, some of which contain commas themselves ("Independent, close to
    Democrat"): at each comma-separated part the longest run of parts naming a value wins,
    ignoring case."""
    by_name = {value.casefold(): value for value in known}
    parts = raw.split(",")
    found, unknown, start = [], [], 0
    while start < len(parts):
        for end in range(len(parts), start, -1):
            candidate = ",".join(parts[start:end]).strip().casefold()
            if candidate in by_name:
                found.append(by_name[candidate])
                start = end
                break
        else:
            unknown += [parts[start].strip()] if parts[start].strip() else []
            start += 1
    return found, unknown


def warn(message: str) -> None:
    st.session_state.setdefault(WARNINGS, []).append(message)


def preset_pickers() -> None:
    """Preset the sidebar's survey and model from the address, once per session (call
    before `state.sidebar_pickers`)."""
    state.initialise()
    if st.session_state.get(APPLIED):
        return
    st.session_state[WARNINGS] = []
    ids = [entry["id"] for entry in resources.survey_catalog(resources.data_dir())]
    for wanted in parameter(SURVEY)[:1]:
        if wanted in ids:
            st.session_state[state.SURVEY] = wanted
        else:
            warn(f"The link asks for survey **{wanted}**, which this dashboard does not have; showing "
                 f"**{st.session_state.get(state.SURVEY, ids[0])}** instead (available: {', '.join(ids)}).")
    for wanted in parameter(MODEL)[:1]:
        survey_id = st.session_state.get(state.SURVEY) if st.session_state.get(state.SURVEY) in ids else ids[0]
        names = model_names(resources.adapter_choices(survey_id))
        if wanted in names:
            st.session_state[state.MODEL] = names[wanted]
        else:
            warn(f"The link asks for model **{wanted}**, which is not available for {survey_id}; showing the "
                 f"default instead (available: {', '.join(names)}).")


def preset_view(survey) -> None:
    """Preset the question, slice and temperature from the address, once per session
    (call after `state.sidebar_pickers`, before the page's inputs are drawn)."""
    if st.session_state.get(APPLIED):
        return
    st.session_state[APPLIED] = True
    known = {SURVEY, MODEL, QUESTION, TEMPERATURE} | {field.name for field in survey.fields}
    for name in st.query_params:
        if name not in known:
            warn(f"The link names **{name}**, which is not a field of {survey.id} (fields: "
                 f"{', '.join(field.name for field in survey.fields)}); it was left out of the slice.")
    ids = [question.id for question in survey.questions]
    for wanted in parameter(QUESTION)[:1]:
        if wanted in ids:
            st.session_state[f"question_{survey.id}"] = wanted
        else:
            warn(f"The link asks for question **{wanted}**, which {survey.id} does not have; showing the first "
                 "question instead. Pick the one you meant under **What**.")
    for field in survey.fields:
        found, unknown = [], []
        for raw in parameter(field.name):
            known, missing = split_values(raw, field.values)
            found, unknown = found + known, unknown + missing
        if found or unknown:
            st.session_state[f"slice_{survey.id}_{field.name}"] = list(dict.fromkeys(found))
        if unknown:
            warn(f"The link asks for {field.name} = **{'**, **'.join(unknown)}**, which {survey.id} does not have "
                 f"(values: {'; '.join(field.values)}); the slice leaves {'it' if len(unknown) == 1 else 'them'} "
                 "out.")
    for wanted in parameter(TEMPERATURE)[:1]:
        low, high = TEMPERATURE_RANGE
        try:
            value = float(wanted)
        except ValueError:
            value = float("nan")
        if low <= value <= high:
            st.session_state[state.TEMPERATURE] = round(round(value / TEMPERATURE_STEP) * TEMPERATURE_STEP, 2)
            if st.session_state[state.TEMPERATURE] != value:
                warn(f"The link's temperature {wanted} is not on the slider's steps of {TEMPERATURE_STEP:g}; "
                     f"it was rounded to {st.session_state[state.TEMPERATURE]:g}.")
        else:
            warn(f"The link's temperature **{wanted}** is not a number from {low:g} to {high:g}; keeping "
                 f"{st.session_state[state.TEMPERATURE]:g}.")


def warnings() -> list[str]:
    """What the opening link asked for that could not be shown (kept until the next Simulate)."""
    return list(st.session_state.get(WARNINGS, []))


def forget_warnings() -> None:
    st.session_state[WARNINGS] = []


def write_view(survey, question_id: str | None, filters: dict, adapter: str | None) -> None:
    """Write the current view into the address (a new question, which has no id, leaves the
    question out); the temperature is the session's, whether or not its slider is drawn."""
    view = {SURVEY: [survey.id], MODEL: [Path(adapter).name if adapter else BARE]}
    if question_id is not None:
        view[QUESTION] = [question_id]
    view.update({name: list(values) for name, values in filters.items()})
    view[TEMPERATURE] = [f"{st.session_state[state.TEMPERATURE]:g}"]
    if {name: st.query_params.get_all(name) for name in st.query_params} != view:
        st.query_params.from_dict(view)
