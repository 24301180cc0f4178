"""Focus group: build a slice, ask a question, read the simulated answers beside the real ones.

The inputs sit in a left column and the chart with its verdict at the top right. The slice
count follows each pick; only **Simulate** runs the model: one engine call simulates the
slice and one (cached, the same when the slice is everyone) everyone, whose slice gaps say
whether the model tells slices apart at all. The temperature slider re-reads the stored
logits, so moving it never runs the model. With the A/B box ticked, a second stimulus is
simulated for the same personas, and the shift from A to B is tested over them
(`engine.ab_test`), once per temperature. The address always carries the view
(`dashboard.link`), so it can be shared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, export, link, resources, state
from dashboard.export_panel import ab_manifest, export_section, report_manifest
from dashboard.pilot_panel import pilot_section, simulation_id
from engine.ab_test import B_HIGHER, B_LOWER, DEFAULT_RESAMPLES, stimulus_shift
from engine.errors import FocusgroupError
from engine.gaps import ALARM
from engine.metrics import effective_sample_size, expected_values
from engine.models import unseen_questions
from engine.option_counts import count_warning
from engine.slices import describe_slice, normalize_slice, slice_index
from engine.simulate import GAP_PERSONAS
from engine.surveys.model import Option, Question
from engine.twins import AUTO, choose_context, describe_context

SMALL_SLICE = 30
AB_MEASURES = {"option": "share", "top_box": "top box", "mean": "mean score"}
AB_COLUMNS = {"label": st.column_config.TextColumn("answer"),
              **{column: st.column_config.NumberColumn(name, format=number) for column, name, number in (
                  ("a", "A", "%.3f"), ("b", "B", "%.3f"), ("shift", "B - A", "%+.3f"), ("low", "95% low", "%+.3f"),
                  ("high", "95% high", "%+.3f"))}}
SURVEY_QUESTION, NEW_QUESTION = "Survey question", "New product question"
UNSEEN_ADVICE = ("The model answers it from what it learned on other questions, and on questions it never "
                 "saw its overall level can be far off: the Scoreboard measures trained and unseen survey "
                 "questions side by side.")

link.preset_pickers()
survey, adapter, _ = state.sidebar_pickers()
link.preset_view(survey)
st.title("Focus group")
st.caption(f"**{survey.title}**: {survey.n_respondents:,} respondents (sources at the foot of the page).")
for message in link.warnings():
    st.warning(message)
inputs, results = st.columns([1, 2], gap="large")

# -- inputs: every pick reruns the page (cheap); only Simulate runs the model ------------
with inputs:
    st.subheader("Who")
    selections = {field.name: st.multiselect(field.label, field.values, key=f"slice_{survey.id}_{field.name}",
                                             placeholder="Everyone") for field in survey.fields}
    filters = normalize_slice(survey, selections)
    members = slice_index(survey, filters)
    st.markdown(f"**Slice:** {describe_slice(filters, survey)}: **{len(members):,}** real respondents")
    if len(members) == 0:
        st.info("No respondent of this survey matches every choice. Remove a value or a field to widen the slice.")
    elif len(members) < SMALL_SLICE:
        st.warning(f"Only {len(members)} respondents: any comparison with the real answers is dominated by "
                   "sampling noise (see the noise floor).")
    st.subheader("What")
    kind = st.radio("Question", [SURVEY_QUESTION, NEW_QUESTION], horizontal=True, key=f"kind_{survey.id}")
    question_ids = [q.id for q in survey.questions]
    if kind == SURVEY_QUESTION:
        question_id = st.selectbox("Survey question", question_ids, key=f"question_{survey.id}",
                                   format_func=state.question_labeler(survey),
                                   help=state.question_id_help(f"question_{survey.id}", question_ids))
    else:
        question_id = None
        new_text = st.text_input("New question", key="new_text", persist_state="session",
                                 placeholder="How likely would you be to buy a plant-based burger at $6?")
        new_type = st.selectbox("Answer scale", ["ordinal", "nominal"], key="new_type", persist_state="session",
                                help="ordinal: options in order (e.g. very likely to very unlikely); nominal: "
                                     "unordered")
        new_positive = "first"
        if new_type == "ordinal":
            new_positive = st.selectbox("Favourable end", ["first", "last"], key="new_positive",
                                        persist_state="session",
                                        help="Which end of the listed options is the top box: usually the first.")
        new_options = st.text_area("Answer options, one per line", key="new_options", persist_state="session",
                                   value="Very likely\nSomewhat likely\nNot very likely\nNot at all likely")
    context_choice = st.multiselect(
        "Twins: each persona also carries its answers to", [AUTO] + question_ids, key=f"context_{survey.id}",
        placeholder="No context answers (demographics only)",
        format_func=lambda q: "auto: the questions worded most like this one" if q == AUTO
        else state.question_labeler(survey)(q),
        help="A panel knows how each person answered the survey's other questions; a twin shows the model "
             "those answers before it answers. The asked question is never its own context.")
    context_k = (st.slider("Context answers with auto", 1, 10, 5, key="context_k", persist_state="session")
                 if AUTO in context_choice else None)
    stimulus = st.text_area("Stimulus (optional): a concept, ad or message shown before the question",
                            key="stimulus_a")
    compare = st.checkbox("A/B test: compare with a second stimulus", key="compare")
    stimulus_b = st.text_area("Stimulus B", key="stimulus_b", persist_state="session") if compare else ""
    submitted = st.button("Simulate", type="primary", key="simulate", disabled=len(members) == 0,
                          width="stretch")
link.write_view(survey, question_id, filters, adapter)


@st.cache_data(max_entries=64, show_spinner=False)
def tested_shift(pair: tuple[str, str], temperature: float, seed: int, _simulations: list) -> pd.DataFrame:
    """The A/B shift table of the two simulations `pair` names, at one temperature: the
    bootstrap runs once per temperature, so moving the slider back is instant."""
    return stimulus_shift(*_simulations, temperature=temperature, seed=seed)


def ab_sentence(shift: pd.DataFrame) -> str:
    """The A/B verdict in words: the top box for a scale, else the answer that moves most."""
    options = shift[shift["measure"] == "option"]
    top_box = shift[shift["measure"] == "top_box"]
    row = top_box.iloc[0] if len(top_box) else options.loc[options["shift"].abs().idxmax()]
    name = f"Top box ({row['label']})" if row["measure"] == "top_box" else row["label"]
    moved = options["verdict"].isin([B_HIGHER, B_LOWER]).sum()
    return (f"**{name}: B - A = {100 * row['shift']:+.2f} points (95% interval {100 * row['low']:+.2f} to "
            f"{100 * row['high']:+.2f}): {row['verdict']}.** {moved} of {len(options)} answers move beyond noise.")


def build_question():
    if kind == SURVEY_QUESTION:
        return question_id
    labels = [line.strip() for line in new_options.splitlines() if line.strip()]
    if not new_text.strip() or len(labels) < 2:
        st.info("Write the new question and at least two answer options, then press Simulate.")
        st.stop()
    try:
        return Question(id="new_question", text=new_text.strip(), type=new_type,
                        options=tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(labels)),
                        positive=new_positive)
    except FocusgroupError as error:
        st.error(str(error))
        st.stop()


def build_context(asked) -> tuple[str, ...]:
    question = survey.question(asked) if isinstance(asked, str) else asked
    chosen = [AUTO] if AUTO in context_choice else context_choice
    try:
        return choose_context(survey, question, chosen, context_k)
    except FocusgroupError as error:
        st.error(str(error))
        st.stop()


with results:
    if submitted:
        link.forget_warnings()
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
    shown = request["question"] if isinstance(request["question"], str) else None
    if (request["filters"], request["adapter"]) != (filters, adapter) or (shown != question_id):
        st.caption("The results below are for the last simulation; press **Simulate** for the current choices.")

    # -- one engine call per stimulus (cached for the session and on disk) ----------------
    simulations = []
    bar = st.progress(0.0, text="Simulating personas...")
    try:
        for position, text in enumerate(request["stimuli"]):
            def report(done, total, position=position):
                share = (position + done / max(total, 1)) / len(request["stimuli"])
                bar.progress(min(share, 1.0), text=f"Simulating personas... {done}/{total}")

            # Stimulus A brings the slice gaps: everyone answering too (the same pass when the slice is everyone).
            simulations.append(resources.run_simulation(
                request["survey"], request["question"], request["filters"], text, request["adapter"],
                progress=report, with_baselines=position == 0, gaps=position == 0,
                context=request.get("context", ())))
    except FocusgroupError as error:
        bar.empty()
        st.error(str(error))
        st.stop()
    bar.empty()
    simulation = simulations[0]
    question = simulation.question

    # -- verdict and chart on top; the temperature re-reads stored logits ------------------
    top = st.container()
    temperature = st.slider("Temperature", 0.0, 2.0, key=state.TEMPERATURE, step=0.05,
                            help="0: each persona gives its most likely answer. 1: the model's own distribution. "
                                 "Higher: flatter. Moving it never re-runs the model.")
    snapshot = simulation.at(temperature)
    snapshot_b = simulations[1].at(temperature) if len(simulations) == 2 else None
    gaps = snapshot.gaps
    model_name = state.model_description(simulation.model_name, request["adapter"])
    subtitle = (f"{survey.title} · {describe_slice(request['filters'], survey)} · n = {simulation.n_personas} personas"
                f" · {model_name} · T = {temperature:g} · {describe_context(simulation.context)}")
    band = None
    if simulation.real is not None:
        answered = simulation.answers != -1
        band = charts.noise_band(simulation.real, effective_sample_size(simulation.weights[answered]))
    frame = charts.distribution_frame(question.labels, snapshot.simulated, simulation.real, band)
    title = (state.question_labeler(survey)(question.id) if simulation.real is not None
             else f"New question: {question.text}")
    seen = request["stimuli"][0]  # the chart's own record of what the personas saw first
    figure = charts.distribution_figure(frame, title, subtitle, [
        f"Stimulus{' A' if snapshot_b else ''}: {' '.join(seen.split())}"] if seen else ())
    with top:
        if simulation.real is None:
            st.info("This is a new question: no real respondent answered it, so the simulated distribution stands "
                    f"alone. Treat it as a hypothesis to test with a real sample. {UNSEEN_ADVICE}")
        else:
            js, floor = snapshot.metrics["js"], simulation.noise["js"]
            verdict = "within sampling noise" if js <= floor * 1.5 else "further than sampling noise alone explains"
            st.markdown(f"**Simulated differs from real by JS {js:.3f}; a second real sample of this size would "
                        f"differ by about {floor:.3f}** ({verdict}).")
        # As exported (no Streamlit theme); Plotly's toolbar would cover the title on a phone.
        st.plotly_chart(figure, key="distribution", theme=None, config={"displayModeBar": False})
    if simulation.real is not None:
        unseen = unseen_questions(request["adapter"], survey)
        if question.id in unseen:
            # An adapter trained on this survey leaves only its held-out questions unseen.
            held_out = request["adapter"] and len(unseen) < len(survey.questions)
            reason = ("was held out of this adapter's training" if held_out
                      else "is not among the answers this model was trained on")
            st.info(f"**{question.id} {reason}.** {UNSEEN_ADVICE}")
    counts = resources.adapter_option_counts(request["adapter"])
    scale_note = count_warning(request["adapter"], counts, len(question.options))
    if scale_note:
        st.warning(scale_note)
    if gaps.alarm:
        st.warning(ALARM)

# -- metrics ------------------------------------------------------------------------------
with results:
    if simulation.real is not None:
        # For everyone, the marginal baseline is the slice's own real distribution: the exact
        # reference by construction, so it is reported as that and not ranked against the model.
        everyone = not request["filters"]
        rows = []
        for name in ("js", "kl", "wasserstein", "tv"):
            row = {"metric": {"js": "Jensen-Shannon", "kl": "KL (real || simulated)",
                              "wasserstein": "Wasserstein (scaled)", "tv": "Total variation"}[name],
                   "simulated": snapshot.metrics[name], "noise floor": simulation.noise[name]}
            for baseline in ("uniform",) if everyone else ("uniform", "marginal"):
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
        fits = {}
        for baseline, fit in simulation.baseline_fit.items():
            if baseline in snapshot.baselines and baseline != "uniform":
                fits.setdefault(fit, []).append(baseline.replace("_", " "))
        st.caption("Lower is closer. Baselines predict from demographics alone: "
                   + "; ".join(f"{', '.join(names)} fitted {fit}" for fit, names in fits.items()) + ".")
        if everyone:
            marginal_js = snapshot.reference.get("marginal", {}).get("js")
            measured = "" if marginal_js is None else f" (JS {marginal_js:.3f})"
            st.caption(f"**Everyone:** the marginal baseline is this slice's own real distribution, so it matches "
                       f"it exactly by construction{measured}: it is the reference the simulation is measured "
                       "against, not a competitor, and is left out of the table.")
        if snapshot.individual:
            individual = snapshot.individual
            parts = [f"accuracy {individual['accuracy']:.3f}", f"log loss {individual['log_loss']:.3f}"]
            parts += [f"RMSE {individual['rmse']:.3f}"] if individual.get("rmse") is not None else []
            st.caption(f"Each persona against its own real answer ({individual['n']:,} answered): "
                       f"{', '.join(parts)}.")

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

        variants = ({"simulated": snapshot.simulated} if snapshot_b is None
                    else {"simulated A": snapshot.simulated, "simulated B": snapshot_b.simulated})
        decisions = {"measure": measures, **{name: decision_numbers(shares) for name, shares in variants.items()}}
        if simulation.real is not None:
            decisions["real"] = decision_numbers(simulation.real)
        st.dataframe(pd.DataFrame(decisions), hide_index=True, key="decisions",
                     column_config={c: st.column_config.NumberColumn(format="%.3f") for c in list(decisions)[1:]})

# -- do slices differ? ---------------------------------------------------------------------
st.subheader("Do slices differ?")
table = gaps.primary
if not table.rows:
    st.info(f"No single-field slice has {gaps.min_slice} respondents to compare.")
else:
    gap_rows = pd.DataFrame([{"field": survey.field(row.field).label or row.field, "slice": row.value, **({"option": row.option} if row.option else {}),
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

# -- A/B: the same personas after each stimulus, the shift tested over them --------------
charts_for_export = [export.Chart("distribution", figure, frame)]
ab_block = None
if snapshot_b is not None:
    st.subheader("A/B: predicted shift")
    pair = tuple(simulation_id(each, request["adapter"]) for each in simulations)
    try:
        shift = tested_shift(pair, temperature, simulation.seed, simulations)
    except FocusgroupError as error:
        st.error(str(error))
        st.stop()
    ab = charts.ab_frame(shift, request["stimuli"])
    ab_chart = charts.ab_figure(ab, f"A/B: {title}", subtitle)
    st.plotly_chart(ab_chart, key="ab", theme=None, config={"displayModeBar": False})
    st.markdown(ab_sentence(shift))
    st.dataframe(shift.assign(measure=shift["measure"].map(AB_MEASURES)), hide_index=True, key="ab_shift",
                 alt="A/B shift with 95% intervals", column_config=AB_COLUMNS)
    st.caption(f"B - A: the weighted mean over the same personas of each one's difference (shares as fractions "
               f"of 1, the mean score on the scale's values). 95% interval: a paired bootstrap over the personas "
               f"({DEFAULT_RESAMPLES:,} resamples, seed {simulation.seed}) at T = {temperature:g}; **within noise** "
               "when it covers 0. It says whether the shift would hold for another draw of the same kind of "
               "people, not whether the model is right about it.")
    charts_for_export.append(export.Chart("ab_test", ab_chart, ab))
    ab_block = ab_manifest(question.labels, request["stimuli"], [snapshot.simulated, snapshot_b.simulated],
                           shift, simulation.seed)

# -- pilot + model -------------------------------------------------------------------------
pilot_chart, pilot_block = pilot_section(simulation, request["adapter"], temperature, title, subtitle)
if pilot_chart is not None:
    charts_for_export.append(pilot_chart)

# -- export -------------------------------------------------------------------------------
manifest = report_manifest(simulation, snapshot, request, model_name, temperature, pilot_block, ab_block)
export_section(charts_for_export, manifest, title, subtitle)
st.caption(f"Data: {survey.provenance}")
