"""Scoreboard: where to trust the model (distance / noise floor over questions x slices),
whether it tells slices apart at all (slice gaps against the real ones), and the
temperature trade-off between population and individual fidelity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, export, resources, state
from engine.baselines import best_classical
from engine.errors import FocusgroupError
from engine.evaluate import coverage_summary
from engine.gaps import ALARM
from engine.models import unseen_questions

TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
DEFAULT_QUESTIONS = 4
# No-data baselines first (what a researcher has for a new question), then those fitted on
# the question's own train answers: on unseen questions only the first are a fair match.
NO_DATA_COLUMNS = {"scale_prior": "without answers: scale prior", "uniform": "without answers: uniform"}
DATA_COLUMNS = ("with answers: marginal", "with answers: best classical")

survey, adapter, model_label = state.sidebar_pickers()
st.title("Scoreboard")
st.caption(f"{model_label} on the held-out **test** respondents of {survey.title}. {survey.provenance}")

with st.form("scoreboard"):
    ids = [q.id for q in survey.questions]
    questions = st.multiselect("Questions", ids, default=ids[:DEFAULT_QUESTIONS], key=f"board_{survey.id}",
                               help="Each question scores every test respondent once; later views are instant.")
    submitted = st.form_submit_button("Score", type="primary")
if submitted:
    st.session_state["board_request"] = {"survey": survey.id, "adapter": adapter, "questions": tuple(questions)}
request = st.session_state.get("board_request")
if not request or request["survey"] != survey.id or not request["questions"]:
    st.info("Pick questions and press **Score**: the model answers as every test respondent.")
    st.stop()

bar = st.progress(0.0, text="Scoring test respondents...")
try:
    result = resources.run_evaluation(request["survey"], request["adapter"], request["questions"],
                                      progress=lambda done, total: bar.progress(done / max(total, 1)))
    curve = resources.run_temperature_curve(request["survey"], request["adapter"], request["questions"], TEMPERATURES)
except FocusgroupError as error:
    bar.empty()
    st.error(str(error))
    st.stop()
bar.empty()

unseen = unseen_questions(request["adapter"], survey)
rows = []
for question in result["questions"]:
    label = f"{question['id']} (unseen)" if question["id"] in unseen and request["adapter"] else question["id"]
    for block in question["slices"]:
        floor = block["noise_floor"]["js"]
        rows.append({"question": label, "slice": block["slice"], "n": block["n"],
                     "js": block["model"]["js"], "noise_floor": floor,
                     "ratio": block["model"]["js"] / floor if floor else np.nan})
table = pd.DataFrame(rows)
st.subheader("Where to trust it")
st.markdown("Each cell: Jensen-Shannon distance between simulated and real answers of a slice, divided by what "
            "sampling alone would give for a slice of that size. **Near 1: as close as a second real sample. "
            "Above 2: the simulation misses something.**")
if table.empty:
    st.info("No slice of the test split is large enough to score; choose a larger survey.")
else:
    heatmap = charts.fidelity_heatmap(table, "Fidelity by question and slice", f"{survey.title} · {model_label} · T = 1")
    st.plotly_chart(heatmap, key="heatmap")
    st.download_button("CSV of the heat map", export.csv_bytes(table), "focusgroup_scoreboard.csv", "text/csv")

st.subheader("Questions it trained on, and questions it never saw")
coverage = []
for group, summary in coverage_summary(result, unseen).items():
    slices = summary["slices"]
    js = {name: scores["js"] for name, scores in slices["baselines"].items()}
    try:
        best = best_classical(slices["baselines"], js)
    except FocusgroupError:
        best = None
    coverage.append({
        "questions": {"trained": "trained on their answers", "unseen": "never saw their answers"}[group],
        "n": summary["n_questions"], "slices": summary["n_slices"], "model": slices["model"]["js"],
        **{column: js.get(name) for name, column in NO_DATA_COLUMNS.items()},
        DATA_COLUMNS[0]: js.get("marginal"), DATA_COLUMNS[1]: js.get(best), "best classical is": best,
        "noise floor": slices["noise_floor"]["js"],
    })
st.dataframe(pd.DataFrame(coverage), hide_index=True, column_config={
    c: st.column_config.NumberColumn(format="%.3f")
    for c in ("model", *NO_DATA_COLUMNS.values(), *DATA_COLUMNS, "noise floor")})
st.caption("Mean Jensen-Shannon distance over question x slice pairs, T = 1. **Without answers**: baselines a "
           "researcher has for a new question: the scale prior (how the survey's other questions on the same "
           "scale were answered, in the same slice) and uniform shares. **With answers**: baselines fitted on "
           "the question's own train answers (the marginal gives everyone the overall shares; the best "
           "classical model uses the demographics). On questions the model never saw, beating the first is the "
           "claim to make; the second is the bar a model that saw the answers would have to reach.")

st.subheader("Do slices differ?")
gap_rows = []
for question in result["questions"]:
    report = question.get("gaps")
    if report is None:
        continue
    summary = report["tables"][report["measure"]]["summary"]
    gap_rows.append({"question": question["id"], "measure": report["measure"].replace("_", " "),
                     "gap r": summary["correlation"], "spread ratio": summary["spread_ratio"],
                     "logistic gap r": summary["logistic_correlation"],
                     "logistic spread ratio": summary["logistic_spread_ratio"],
                     "barely distinguishes slices": report["alarm"]})
    if report["alarm"]:
        st.warning(f"**{question['id']}**: {ALARM}")
if gap_rows:
    st.dataframe(pd.DataFrame(gap_rows), hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%.2f")
        for c in ("gap r", "spread ratio", "logistic gap r", "logistic spread ratio")})
st.caption("Gap: a slice's top-box share (or option shares) minus the whole test split's, for every single-field "
           "slice. Gap r: correlation of simulated with real gaps (blank: undefined, e.g. the model answers every "
           "slice alike). Spread ratio: SD of simulated gaps over SD of real gaps; 1 is as varied as the real "
           "slices, under 0.25 raises the warning.")

st.subheader("Temperature trade-off")
frame = pd.DataFrame(curve)
individual = "rmse" if frame["rmse"].notna().all() else "log_loss"
frame["individual"] = frame[individual]
frame["individual_label"] = "RMSE of the expected answer" if individual == "rmse" else "Log loss"
best = float(frame.loc[frame["slice_js"].idxmin(), "temperature"])
tradeoff = charts.tradeoff_figure(frame, best, "Population vs individual fidelity across temperatures",
                                  f"{survey.title} · {model_label}")
st.plotly_chart(tradeoff, key="tradeoff")
st.markdown(f"Population distance is lowest at **T = {best:g}**. Low temperatures give each persona's most "
            "likely answer (better individual guesses, too little spread); higher ones spread answers out.")
st.download_button("CSV of the curve", export.csv_bytes(frame), "focusgroup_temperature.csv", "text/csv")
