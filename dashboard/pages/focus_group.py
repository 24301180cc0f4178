"""Focus group: build a slice, ask a question, read the simulated answers beside the real ones.

Inputs (slice, question, stimulus) sit in a form; one engine call simulates the slice and
one (cached, the same when the slice is everyone) everyone, whose slice gaps say whether
the model tells slices apart at all; the temperature slider re-reads the stored logits, so
moving it never runs the model.
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, export, resources, state
from dashboard.pilot_panel import pilot_section
from engine.atomic import finite_json
from engine.errors import FocusgroupError
from engine.gaps import ALARM
from engine.metrics import effective_sample_size, expected_values
from engine.models import unseen_questions
from engine.slices import describe_slice, normalize_slice, slice_index
from engine.simulate import GAP_PERSONAS
from engine.surveys.model import Option, Question
from engine.twins import AUTO, choose_context, describe_context

SMALL_SLICE = 30
AB_LABELS = ("A", "B")
UNSEEN_ADVICE = ("The model answers it from what it learned on other questions, and on questions it never "
                 "saw its overall level can be far off: the Scoreboard measures trained and unseen survey "
                 "questions side by side.")

survey, adapter, model_label = state.sidebar_pickers()
state.apply_link(survey)
st.title("Focus group")
st.caption(f"**{survey.title}**: {survey.n_respondents:,} respondents. {survey.provenance}")

# -- inputs ------------------------------------------------------------------------------
with st.form("ask"):
    st.subheader("Who")
    columns = st.columns(3)
    selections = {}
    for position, field in enumerate(survey.fields):
        with columns[position % 3]:
            selections[field.name] = st.multiselect(field.label, field.values, key=f"slice_{survey.id}_{field.name}",
                                                    placeholder="Everyone")
    st.subheader("What")
    kind = st.radio("Question", ["Survey question", "New product question"], horizontal=True,
                    key=f"kind_{survey.id}")
    question_ids = [q.id for q in survey.questions]
    question_id = st.selectbox(
        "Survey question", question_ids, key=f"question_{survey.id}",
        format_func=state.question_labeler(survey),
    )
    new_text = st.text_input("New question", key="new_text",
                             placeholder="How likely would you be to buy a plant-based burger at $6?")
    new_type = st.selectbox("Answer scale", ["ordinal", "nominal"], key="new_type",
                            help="ordinal: options in order (e.g. very likely to very unlikely); nominal: unordered")
    new_positive = st.selectbox("Favourable end (ordinal)", ["first", "last"], key="new_positive",
                                help="Which end of the listed options is the top box: usually the first.")
    new_options = st.text_area("Answer options, one per line", key="new_options",
                               value="Very likely\nSomewhat likely\nNot very likely\nNot at all likely")
    context_choice = st.multiselect(
        "Twins: each persona also carries its answers to", [AUTO] + question_ids, key=f"context_{survey.id}",
        placeholder="No context answers (demographics only)",
        format_func=lambda q: "auto: the questions worded most like this one" if q == AUTO
        else state.question_labeler(survey)(q),
        help="A panel knows how each person answered the survey's other questions; a twin shows the model "
             "those answers before it answers. The asked question is never its own context.")
    context_k = st.slider("Context answers with auto", 1, 10, 5, key="context_k")
    stimulus = st.text_area("Stimulus (optional): a concept, ad or message shown before the question",
                            key="stimulus_a")
    compare = st.checkbox("A/B test: compare with a second stimulus", key="compare")
    stimulus_b = st.text_area("Stimulus B", key="stimulus_b")
    submitted = st.form_submit_button("Simulate", type="primary")

filters = normalize_slice(survey, selections)
members = slice_index(survey, filters)
st.markdown(f"**Slice:** {describe_slice(filters)}: **{len(members):,}** real respondents")
if len(members) == 0:
    st.info("No respondent of this survey matches every choice. Remove a value or a field to widen the slice.")
    st.stop()
if len(members) < SMALL_SLICE:
    st.warning(f"Only {len(members)} respondents: any comparison with the real answers is dominated by "
               "sampling noise (see the noise floor below).")


def build_question():
    if kind == "Survey question":
        return question_id
    labels = [line.strip() for line in new_options.splitlines() if line.strip()]
    if not new_text.strip() or len(labels) < 2:
        st.info("Write the new question and at least two answer options, then press Simulate.")
        st.stop()
    try:
        return Question(id="new_question", text=new_text.strip(), type=new_type,
                        options=tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(labels)),
                        positive=new_positive if new_type == "ordinal" else "first")
    except FocusgroupError as error:
        st.error(str(error))
        st.stop()


def build_context(asked) -> tuple[str, ...]:
    question = survey.question(asked) if isinstance(asked, str) else asked
    chosen = [AUTO] if AUTO in context_choice else context_choice
    try:
        return choose_context(survey, question, chosen, context_k if AUTO in context_choice else None)
    except FocusgroupError as error:
        st.error(str(error))
        st.stop()


if submitted:
    asked = build_question()
    st.session_state[state.SIMULATION] = {
        "survey": survey.id, "question": asked, "filters": filters, "adapter": adapter,
        "stimuli": [stimulus.strip() or None] + ([stimulus_b.strip() or None] if compare else []),
        "context": build_context(asked),
    }
request = st.session_state.get(state.SIMULATION)
if not request or request["survey"] != survey.id:
    st.info("Choose a slice and a question, then press **Simulate**.")
    st.stop()

# -- one engine call per stimulus (cached for the session and on disk) --------------------
results = []
bar = st.progress(0.0, text="Simulating personas...")
try:
    for position, text in enumerate(request["stimuli"]):
        def report(done, total, position=position):
            share = (position + done / max(total, 1)) / len(request["stimuli"])
            bar.progress(min(share, 1.0), text=f"Simulating personas... {done}/{total}")

        # Stimulus A brings the slice gaps: everyone answering too (the same pass when the slice is everyone).
        results.append(resources.run_simulation(request["survey"], request["question"], request["filters"], text,
                                                request["adapter"], progress=report,
                                                with_baselines=position == 0, gaps=position == 0,
                                                context=request.get("context", ())))
except FocusgroupError as error:
    bar.empty()
    st.error(str(error))
    st.stop()
bar.empty()
simulation = results[0]
question = simulation.question

# -- temperature: re-read from stored logits ----------------------------------------------
temperature = st.slider("Temperature", 0.0, 2.0, key=state.TEMPERATURE, step=0.05,
                        help="0: each persona gives its most likely answer. 1: the model's own distribution. "
                             "Higher: flatter. Moving it never re-runs the model.")
snapshot = simulation.at(temperature)
gaps = snapshot.gaps
subtitle = (f"{survey.title} · {describe_slice(request['filters'])} · n = {simulation.n_personas} personas"
            f" · {model_label} · T = {temperature:g} · {describe_context(simulation.context)}")
band = None
if simulation.real is not None:
    answered = simulation.answers != -1
    band = charts.noise_band(simulation.real, effective_sample_size(simulation.weights[answered]))
frame = charts.distribution_frame(question.labels, snapshot.simulated, simulation.real, band)
title = (state.question_labeler(survey)(question.id) if simulation.real is not None
         else f"New question: {question.text}")
figure = charts.distribution_figure(frame, title, subtitle)
st.plotly_chart(figure, key="distribution")

if simulation.real is None:
    st.info("This is a new question: no real respondent answered it, so the simulated distribution stands "
            f"alone. Treat it as a hypothesis to test with a real sample. {UNSEEN_ADVICE}")
else:
    js, floor = snapshot.metrics["js"], simulation.noise["js"]
    verdict = "within sampling noise" if js <= floor * 1.5 else "further than sampling noise alone explains"
    st.markdown(
        f"**Simulated differs from real by JS {js:.3f}; a second real sample of this size would differ by about "
        f"{floor:.3f}** ({verdict})."
    )
    unseen = unseen_questions(request["adapter"], survey)
    if question.id in unseen:
        # An adapter trained on this survey leaves only its held-out questions unseen.
        held_out = request["adapter"] and len(unseen) < len(survey.questions)
        reason = ("was held out of this adapter's training" if held_out
                  else "is not among the answers this model was trained on")
        st.info(f"**{question.id} {reason}.** {UNSEEN_ADVICE}")
if gaps.alarm:
    st.warning(ALARM)

# -- metrics ------------------------------------------------------------------------------
if simulation.real is not None:
    rows = []
    for name in ("js", "kl", "wasserstein", "tv"):
        row = {"metric": {"js": "Jensen-Shannon", "kl": "KL (real || simulated)", "wasserstein": "Wasserstein (scaled)",
                          "tv": "Total variation"}[name],
               "simulated": snapshot.metrics[name], "noise floor": simulation.noise[name]}
        for baseline in ("uniform", "marginal"):
            row[baseline] = snapshot.baselines.get(baseline, {}).get(name)
        classical = {b: s.get(name) for b, s in snapshot.baselines.items()
                     if b in ("logistic", "gradient_boosting", "svr") and s.get(name) is not None}
        if classical:
            best = min(classical, key=classical.get)
            row["best classical"] = classical[best]
            row["best classical is"] = best
        rows.append(row)
    st.subheader("How close is it?")
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%.3f") for c in
        ("simulated", "noise floor", "uniform", "marginal", "best classical")})
    st.caption("Lower is closer. Baselines predict from demographics alone, each respondent predicted by models "
               "fitted on everyone else.")

if question.is_scale:
    # The top two boxes from the favourable end, on the scale; means leave off-scale answers out.
    on_scale = np.flatnonzero(question.on_scale)
    top_two = (on_scale[:2] if question.positive == "first" else on_scale[::-1][:2]).tolist()
    off_scale = np.flatnonzero(~question.on_scale).tolist()
    first = question.labels[on_scale[0]]
    measures = [f"Top box ({question.labels[top_two[0]]})",
                f"Top-2 box ({' + '.join(question.labels[i] for i in top_two)})", f"Mean score (1 = {first})"]
    measures += [f"Off-scale ({', '.join(question.off_scale_labels)})"] if off_scale else []

    def decision_numbers(distribution):
        numbers = [distribution[top_two[0]], distribution[top_two].sum(),
                   float(expected_values(distribution, question.values))]
        return numbers + ([distribution[off_scale].sum()] if off_scale else [])

    decisions = {"measure": measures, "simulated": decision_numbers(snapshot.simulated)}
    if simulation.real is not None:
        decisions["real"] = decision_numbers(simulation.real)
    st.dataframe(pd.DataFrame(decisions), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("simulated", "real")})

# -- do slices differ? ---------------------------------------------------------------------
st.subheader("Do slices differ?")
table = gaps.primary
if not table.rows:
    st.info(f"No single-field slice has {gaps.min_slice} respondents to compare.")
else:
    gap_rows = pd.DataFrame([{"field": row.field, "slice": row.value, **({"option": row.option} if row.option else {}),
                              "n": row.n, "simulated gap": row.simulated, "real gap": row.real,
                              "logistic gap": row.logistic} for row in table.rows]).dropna(axis=1, how="all")
    st.dataframe(gap_rows, hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%+.3f") for c in ("simulated gap", "real gap", "logistic gap")})
    measure = {"top_box": f"top-box share ({gaps.positive})", "share": "option shares"}[table.measure]
    if table.real_sd is not None:
        correlation = "undefined" if table.correlation is None else f"{table.correlation:.2f}"
        spread = "-" if table.spread_ratio is None else f"{table.spread_ratio:.2f}"
        st.markdown(f"**Gap = a slice's {measure} minus everyone's.** Simulated against real gaps: correlation "
                    f"r = {correlation}, spread ratio = {spread} (1: the simulated slices differ as much as the "
                    "real ones; near 0: the model answers them alike).")
    else:
        st.markdown(f"**Gap = a slice's {measure} minus everyone's.** No real answers: the simulated gaps' spread "
                    f"is read against {gaps.reference}.")
    st.caption(f"Everyone in the survey (a seeded draw of {GAP_PERSONAS:,} from a larger one) simulated once "
               f"(T = {temperature:g}); slices of at least {gaps.min_slice} respondents. The logistic baseline predicts each respondent from demographics, out of fold.")

# -- A/B ----------------------------------------------------------------------------------
charts_for_export = [export.Chart("distribution", figure, frame)]
if len(results) == 2:
    st.subheader("A/B: predicted shift")
    shares = [result.at(temperature).simulated for result in results]
    ab = pd.DataFrame({"option": question.labels * 2,
                       "variant": [f"Stimulus {AB_LABELS[0]}"] * len(question.labels)
                       + [f"Stimulus {AB_LABELS[1]}"] * len(question.labels),
                       "share": np.concatenate(shares)})
    ab_chart = charts.ab_figure(ab, title, subtitle)
    st.plotly_chart(ab_chart, key="ab")
    shift = pd.DataFrame({"option": question.labels, "B minus A": shares[1] - shares[0]})
    st.dataframe(shift, hide_index=True, column_config={"B minus A": st.column_config.NumberColumn(format="%+.3f")})
    charts_for_export.append(export.Chart("ab_test", ab_chart, ab))

# -- pilot + model -------------------------------------------------------------------------
pilot_chart, pilot_block = pilot_section(simulation, request["adapter"], temperature, title, subtitle)
if pilot_chart is not None:
    charts_for_export.append(pilot_chart)

# -- export -------------------------------------------------------------------------------
st.subheader("Export")
manifest = {
    "survey": survey.id, "provenance": survey.provenance,
    "slice": {k: list(v) for k, v in request["filters"].items()}, "slice_description": describe_slice(request["filters"]),
    "n_personas": simulation.n_personas, "n_real": simulation.n_real,
    "question": question.id, "question_text": question.text, "options": question.labels,
    "stimuli": request["stimuli"], "context": list(simulation.context), "model": model_label,
    "adapter": request["adapter"],
    "model_fingerprint": resources.model(resources.base_model(), request["adapter"]).fingerprint,
    "temperature": temperature, "seed": simulation.seed,
    "metrics": snapshot.metrics, "noise_floor": simulation.noise, "baselines": snapshot.baselines,
    "gaps": finite_json(gaps.to_dict()),
    "simulated": dict(zip(question.labels, snapshot.simulated.round(6).tolist())),
    "real": None if simulation.real is None else dict(zip(question.labels, simulation.real.round(6).tolist())),
    "pilot": pilot_block,
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
}
columns = st.columns(5)
columns[0].download_button("HTML", export.html_document(figure), "focusgroup_chart.html", "text/html")
columns[1].download_button("CSV", export.csv_bytes(frame), "focusgroup_chart.csv", "text/csv")
if export.find_browser() is None:
    columns[2].caption(f"PNG/SVG: {export.INSTALL_HINT}")
elif columns[2].button("PNG and SVG"):
    try:
        columns[3].download_button("PNG", export.static_image(figure, "png"), "focusgroup_chart.png", "image/png")
        columns[3].download_button("SVG", export.static_image(figure, "svg"), "focusgroup_chart.svg", "image/svg+xml")
    except export.ExportUnavailable as error:
        st.warning(str(error))
if columns[4].button("Report bundle (ZIP)", key="make_bundle"):
    with st.spinner("Rendering charts..."):
        bundle, notes = export.report_bundle(charts_for_export, manifest, with_images=export.find_browser() is not None)
    st.download_button("Download report bundle", bundle, "focusgroup_report.zip", "application/zip", key="bundle")
    st.session_state["last_bundle"] = bundle
    for note in notes:
        st.caption(note)
