"""The Focus group page's "Pilot + model" section: real answers from a small pilot combined
with the simulation (prediction-powered inference, `engine.pilot`), as one chart of pilot
alone, model alone and pilot + model with their 95% intervals, and one plain sentence."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, export, resources
from engine.errors import FocusgroupError

PILOT_REQUEST = "pilot_request"
DRAW, UPLOAD = "Draw respondents from this survey", "Upload a pilot CSV"


def pilot_section(simulation, adapter: str | None, temperature: float, title: str, subtitle: str):
    """Draw the section; (the pilot chart for the export, the pilot block for its manifest),
    or (None, None) before a pilot is given."""
    st.subheader("Pilot + model")
    st.caption("Real answers from a small pilot, combined with the model's personas: the pilot fixes the level, "
               "the model narrows the interval where it carries signal, and never widens it.")
    sources = [DRAW, UPLOAD] if simulation.real is not None else [UPLOAD]
    with st.form("pilot"):
        source = st.radio("Pilot", sources, key="pilot_source", horizontal=True)
        size = st.number_input("Pilot size (drawn with the simulation's seed)", min_value=2, value=100, step=10,
                               key="pilot_size")
        upload = st.file_uploader("Pilot CSV: one column per demographic field, `answer` (an option's label), "
                                  "optionally `weight`", type=["csv"], key="pilot_file")
        if st.form_submit_button("Combine with the pilot"):
            if source == UPLOAD and upload is None:
                st.info("Choose a pilot CSV to upload, or draw respondents.")
                return None, None
            st.session_state[PILOT_REQUEST] = {
                "simulation": simulation_id(simulation, adapter), "size": int(size) if source == DRAW else None,
                "upload": None if source == DRAW else upload.getvalue(),
                "name": "the pilot" if source == DRAW else upload.name}
    request = st.session_state.get(PILOT_REQUEST)
    if not request or request["simulation"] != simulation_id(simulation, adapter):
        return None, None
    try:
        block = resources.run_pilot(simulation, adapter, request["size"], request["upload"], request["name"],
                                    temperature)
    except FocusgroupError as error:
        st.error(str(error))
        return None, None
    frame = charts.pilot_frame(list(simulation.question.labels), block)
    figure = charts.pilot_figure(frame, f"Pilot + model: {title}",
                                 f"{subtitle} · pilot: {block['source']}, {block['pilot_in_slice']} in the slice")
    st.plotly_chart(figure, key="pilot_chart")
    st.markdown(f"**{block['sentence']}**")
    st.caption("Bars: 95% intervals (Wilson for the pilot; prediction-powered for pilot + model). The model alone "
               "has no sampling interval: it is a model, not a sample.")
    return export.Chart("pilot", figure, frame), block


def simulation_id(simulation, adapter: str | None) -> str:
    """Which simulation a pilot was given for: a new slice, question or model drops it."""
    return resources.simulation_key(simulation.survey.id, simulation.question.id, simulation.question.text,
                                    simulation.filters, simulation.stimulus, adapter, list(simulation.context))
