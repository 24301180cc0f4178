"""Scoreboard: where to trust the model (distance / noise floor over questions x slices),
whether it tells slices apart at all (slice gaps against the real ones), and the
temperature trade-off between population and individual fidelity.

Scoring runs the model once per test respondent and question (minutes on a CPU) under a bar
that names the question; the last results stay in the session, so leaving the page and
coming back shows them without scoring again. Every statement about the trade-off is read
off the curve shown, and its best temperature can be handed to the Focus group page.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, export, resources, state
from engine.baselines import best_classical
from engine.errors import FocusgroupError
from engine.evaluate import EvaluationConfig, answered_in_split, coverage_summary
from engine.gaps import ALARM
from engine.models import unseen_questions
from engine.slices import describe_slice

TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
DEFAULT_QUESTIONS = 4
# No-data baselines first (what a researcher has for a new question), then those fitted on
# the question's own train answers: on unseen questions only the first are a fair match.
NO_DATA_COLUMNS = {"scale_prior": "without answers: scale prior", "uniform": "without answers: uniform"}
DATA_COLUMNS = ("with answers: marginal", "with answers: best classical")
RESULTS = "scoreboard_results"  # session key: the last results, by survey, model and questions
KEPT_RESULTS = 4
APPLIED = "scoreboard_applied_temperature"
# Each persona's error, as the chart's axis names it and as a sentence does.
INDIVIDUAL_ERRORS = {"rmse": ("RMSE of the expected answer", "RMSE of the expected answer"),
                     "log_loss": ("Log loss", "log loss")}


def score(request: dict) -> dict:
    """The evaluation and the temperature curve of a request, under a progress bar whose text
    always names the question being scored."""
    questions = request["questions"]
    bar = st.progress(0.0, text=f"Scoring question 1 of {len(questions)}: {questions[0]}")
    current = {"position": 0, "id": questions[0]}

    def on_question(position: int, total: int, question_id: str) -> None:
        current.update(position=position, id=question_id)
        bar.progress(position / total, text=f"Scoring question {position + 1} of {total}: {question_id}")

    def on_respondents(done: int, total: int) -> None:
        share = (current["position"] + done / max(total, 1)) / len(questions)
        bar.progress(share, text=f"Scoring question {current['position'] + 1} of {len(questions)}: {current['id']} "
                                 f"({done:,} of {total:,} test respondents)")

    try:
        result = resources.run_evaluation(request["survey"], request["adapter"], questions, progress=on_respondents,
                                          on_question=on_question)
        bar.progress(1.0, text="Temperature curve: re-reading the stored scores at each temperature")
        curve = resources.run_temperature_curve(request["survey"], request["adapter"], questions, TEMPERATURES)
    except FocusgroupError as error:
        bar.empty()
        st.error(str(error))
        st.stop()
    bar.empty()
    return {"result": result, "curve": curve}


def slice_labels(survey) -> dict[str, str]:
    """Each single-field slice as the evaluation names it ("partyid = Strong Democrat") -> as
    the survey's spec labels it ("Party: Strong Democrat")."""
    return {describe_slice({field.name: (value,)}): f"{field.label}: {value}"
            for field in survey.fields for value in field.values}


def answered_counts(survey, result: dict, question_id: str) -> dict[str, int]:
    """Slice label -> how many respondents of the evaluated split in it answered the question."""
    config = EvaluationConfig(split=result["split"], split_seed=result["split_seed"])
    index, _, _ = answered_in_split(survey, question_id, config)
    demographics = survey.demographics.loc[index]
    return {f"{field.label}: {value}": int((demographics[field.name] == value).sum())
            for field in survey.fields for value in field.values}


def cell_notes(survey, result: dict, table: pd.DataFrame, figure) -> tuple[list, dict[str, int]]:
    """Hover text for every cell of the heat map, in the figure's own row and column order
    ([question wording, what the cell shows or why it is blank]), and how many blank cells
    there are for each reason."""
    trace = figure.data[0]
    scored = table.set_index(["question", "slice"])["ratio"]
    reasons = {"floor": "the noise floor is 0 (every real answer alike), so the ratio is undefined",
               "none": "no test respondent in the slice answered the question",
               "few": f"fewer than {result['min_slice']} test respondents in the slice answered the question"}
    blanks: dict[str, int] = {}
    notes = []
    for row in trace.y:
        question = survey.question(table.loc[table["question"] == row, "id"].iloc[0])
        counts = answered_counts(survey, result, question.id)
        wording = "<br>".join(html.escape(line, quote=False) for line in charts.wrap_lines(question.text, 60))
        cells = []
        for column in trace.x:
            n = counts.get(column, 0)
            if (row, column) in scored.index and not np.isnan(scored[(row, column)]):
                cells.append([wording, f"JS ÷ noise floor: {scored[(row, column)]:.2f} ({n:,} test respondents)"])
                continue
            reason = reasons["floor" if (row, column) in scored.index else "none" if n == 0 else "few"]
            blanks[reason] = blanks.get(reason, 0) + 1
            cells.append([wording, f"Blank: {reason}" + (f" (only {n:,} did)" if 0 < n < result["min_slice"] else "")])
        notes.append(cells)
    return notes, blanks


def tradeoff_text(frame: pd.DataFrame, name: str) -> tuple[float, str]:
    """The temperature with the lowest population distance, and the trade-off in words, every
    number read off the curve shown (columns temperature, slice_js, individual: the error
    called `name`)."""
    population = frame.loc[frame["slice_js"].idxmin()]
    individual = frame.loc[frame["individual"].idxmin()]
    best, closest = float(population["temperature"]), float(individual["temperature"])
    text = (f"Population distance is lowest at **T = {best:g}** (mean JS over slices); individual error "
            f"({name}) is lowest at **T = {closest:g}**.")
    if best == closest:
        return best, text + " On these questions one temperature is best for both: there is no trade-off to make."
    return best, text + (f" The two pull apart: at T = {best:g} the individual error is {population['individual']:.3f} "
                         f"against {individual['individual']:.3f} at T = {closest:g}, and at T = {closest:g} the "
                         f"population distance is {individual['slice_js']:.3f} against {population['slice_js']:.3f}.")


def use_temperature(temperature: float) -> None:
    """Set the temperature the Focus group page opens at (its slider's key)."""
    st.session_state[state.TEMPERATURE] = temperature
    st.session_state[APPLIED] = temperature


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

key = resources.simulation_key(request["survey"], request["adapter"], request["questions"])
kept = st.session_state.setdefault(RESULTS, {})  # the last few, so a page switch shows them again
if key not in kept:
    kept[key] = score(request)
    while len(kept) > KEPT_RESULTS:
        kept.pop(next(iter(kept)))
result, curve = kept[key]["result"], kept[key]["curve"]

unseen = unseen_questions(request["adapter"], survey)
labels = slice_labels(survey)
rows = []
for question in result["questions"]:
    label = f"{question['id']} (unseen)" if question["id"] in unseen and request["adapter"] else question["id"]
    for block in question["slices"]:
        floor = block["noise_floor"]["js"]
        rows.append({"question": label, "id": question["id"], "slice": labels.get(block["slice"], block["slice"]),
                     "n": block["n"], "js": block["model"]["js"], "noise_floor": floor,
                     "ratio": block["model"]["js"] / floor if floor else np.nan})
table = pd.DataFrame(rows)
if not table.empty:  # slices in the spec's order of fields and values, not alphabetical
    shown = set(table["slice"])
    table["slice"] = pd.Categorical(table["slice"], [label for label in labels.values() if label in shown])
st.subheader("Where to trust it")
st.markdown("Each cell: Jensen-Shannon distance between simulated and real answers of a slice, divided by what "
            "sampling alone would give for a slice of that size. **Near 1: as close as a second real sample. "
            "Above 2: the simulation misses something.**")
if table.empty:
    st.info("No slice of the test split is large enough to score; choose a larger survey.")
else:
    heatmap = charts.fidelity_heatmap(table, "Fidelity by question and slice", f"{survey.title} · {model_label} · T = 1")
    notes, blanks = cell_notes(survey, result, table, heatmap)
    heatmap.update_traces(customdata=notes, hovertemplate="<b>%{y}</b> · %{x}<br>%{customdata[1]}"
                                                          "<br><br>%{customdata[0]}<extra></extra>")
    st.plotly_chart(heatmap, key="heatmap")
    cells = sum(len(row) for row in notes)
    explained = "; ".join(f"{count} because {reason}" for reason, count in blanks.items())
    st.caption("Rows: questions (hover a cell for the full wording); columns: single-field slices. "
               + (f"{sum(blanks.values())} of {cells} cells are blank: {explained}. Hover a cell for its count."
                  if blanks else f"All {cells} cells are scored."))
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
frame["slice_js"] = pd.to_numeric(frame["slice_js"])
individual = "rmse" if frame["rmse"].notna().all() else "log_loss"
frame["individual"] = frame[individual]
axis_label, individual_words = INDIVIDUAL_ERRORS[individual]
frame["individual_label"] = axis_label
if frame["slice_js"].isna().all():
    st.info("No slice of the test split is large enough to measure population distance across temperatures.")
    st.stop()
best, tradeoff_words = tradeoff_text(frame, individual_words)
tradeoff = charts.tradeoff_figure(frame, best, "Population vs individual fidelity across temperatures",
                                  f"{survey.title} · {model_label}")
st.plotly_chart(tradeoff, key="tradeoff")
st.markdown(tradeoff_words)
st.caption("Temperature rescales each persona's answer probabilities: T = 0 always gives its most likely answer, "
           "T = 1 the model's probabilities as they are, a higher T flatter ones.")
st.button(f"Use T = {best:g} on the Focus group page", key="use_temperature", on_click=use_temperature, args=(best,),
          help="Sets the temperature slider of the Focus group page, where simulations re-read at it.")
if st.session_state.get(APPLIED) == best == st.session_state.get(state.TEMPERATURE):
    st.success(f"The Focus group page now shows its simulations at T = {best:g}, the temperature with the lowest "
               "population distance here.")
st.download_button("CSV of the curve", export.csv_bytes(frame), "focusgroup_temperature.csv", "text/csv")
