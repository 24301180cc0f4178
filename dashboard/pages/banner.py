"""Banner: several survey questions cut by several demographic fields in one run, the market
researcher's daily view (`engine.banner`). Per question, the Total and every value of each
chosen field are columns, simulated beside real, with ▲/▼ where a column differs from the
rest of the base beyond sampling noise; an Excel workbook holds the same tables.

Only **Build banner** runs the model (once per question, for everyone in the base); the
temperature slider re-reads the stored logits (`Banner.at`). The last banner is kept in the
session, so it is still here after a visit to another page.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import resources, state
from engine.banner import BASE_ROW, DOWN, UP, BannerConfig
from engine.banner_export import SIMULATED_LABEL, banner_workbook
from engine.errors import FocusgroupError
from engine.slices import describe_slice, normalize_slice, slice_index

BANNER = "banner_result"  # the last banner built: {"banner", "adapter", "model"}
DEFAULT_QUESTIONS = 3
PREFERRED_FIELDS = ("age", "partyid")
SIDES = {"simulated": "Simulated", "real": "Real"}
MARK_COLOURS = {UP: "color: #1a7f37", DOWN: "color: #cf222e"}
REAL_SHADE = "background-color: rgba(128, 128, 128, 0.08)"
PREAMBLE = 40  # a wording every question opens with is cut from the labels when at least this long
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def shared_introduction(survey) -> str:
    """The words every question opens with, when there are at least PREAMBLE characters of
    them (surveys often repeat one introduction before each item), else ""."""
    texts = [question.text for question in survey.questions]
    shared = os.path.commonprefix(texts) if len(texts) > 1 else ""
    return shared[: shared.rfind(" ") + 1] if len(shared) >= PREAMBLE else ""


def default_fields(names: list[str]) -> list[str]:
    preferred = [name for name in PREFERRED_FIELDS if name in names]
    return (preferred + [name for name in names if name not in preferred])[:2]


def styled_table(shown, question):
    """One question's banner for the screen: the numbers of `Banner.table` (base counts,
    shares, mean score), columns (field, value, Simulated | Real), each flagged cell's mark
    written after its number and coloured."""
    table = shown.table(question.id)
    labels = {name: shown.survey.field(name).label or name for name in shown.config.fields}
    numbers = table.loc[:, [column for column in table.columns if column[2] in SIDES]].astype(float)
    marks = table.loc[:, [(name, value, f"{side}_flag") for name, value, side in numbers.columns]].fillna("")
    numbers.columns = pd.MultiIndex.from_tuples([(labels.get(name, ""), value, SIDES[side])
                                                 for name, value, side in numbers.columns])
    marks.columns = numbers.columns
    numbers.index.name = None
    kinds = dict(zip(shown.cells["row"], shown.cells["kind"]))
    styler = numbers.style
    for row in numbers.index:
        number = "{:,.0f}" if row == BASE_ROW else "{:.2f}" if kinds.get(row) == "mean" else "{:.1%}"
        styler = styler.format(number, subset=pd.IndexSlice[[row], :], na_rep="–")
        for column in numbers.columns[marks.loc[row].to_numpy() != ""]:
            styler = styler.format(f"{number} {marks.loc[row, column]}", subset=pd.IndexSlice[[row], [column]])
    shade = np.where(numbers.columns.get_level_values(2) == SIDES["real"], REAL_SHADE, "")
    css = pd.DataFrame(np.broadcast_to(shade, numbers.shape), index=numbers.index, columns=numbers.columns)
    css = css.where(marks == "", css + ";" + marks.replace(MARK_COLOURS))
    return styler.apply(lambda _: css, axis=None)


survey, adapter, model_label = state.sidebar_pickers()
st.session_state.setdefault(BANNER, None)
st.title("Banner")
st.caption(f"{model_label} answers each question as every respondent of the base; each column is a group of "
           f"them, beside the same group's real answers. {survey.provenance}")

# -- inputs: every pick reruns the page (cheap); only Build banner runs the model -------
ids = [question.id for question in survey.questions]
introduction = shared_introduction(survey)
wording = {question.id: ("…" if introduction else "") + question.text[len(introduction):]
           for question in survey.questions}
question_key = f"banner_questions_{survey.id}"
chosen = st.session_state.get(question_key) or ids[:DEFAULT_QUESTIONS]
cut = f", after the introduction they all share (“{introduction.strip()}”)" if introduction else ""
question_help = (f"Each question's wording from the survey spec{cut}. Tables are headed by ids; chosen: "
                 f"{', '.join(chosen)}.")
names = [field.name for field in survey.fields]
picks, columns = st.columns([3, 2], gap="large")
with picks:
    questions = st.multiselect("Questions", ids, default=ids[:DEFAULT_QUESTIONS], format_func=wording.get,
                               key=question_key, persist_state="session", placeholder="Choose questions",
                               help=question_help)
with columns:
    fields = st.multiselect(
        "Columns: demographic fields", names, default=default_fields(names),
        format_func=lambda name: survey.field(name).label or name, key=f"banner_fields_{survey.id}",
        persist_state="session", placeholder="Choose fields",
        help="Every value of each field becomes a column, after the Total.")
with st.expander("Base (optional): cut every column from a slice instead of everyone"):
    selections = {field.name: st.multiselect(field.label, field.values, key=f"banner_base_{survey.id}_{field.name}",
                                             persist_state="session", placeholder="Everyone")
                  for field in survey.fields}
filters = normalize_slice(survey, selections)
base = slice_index(survey, filters)
st.markdown(f"**Base:** {describe_slice(filters, survey)}: **{len(base):,}** real respondents")
if not questions:
    st.info("Choose at least one question: each becomes a table.")
    st.stop()
if not fields:
    st.info("Choose at least one demographic field: its values become the columns.")
    st.stop()
if len(base) == 0:
    st.info("No respondent of this survey is in the base. Remove a value or a field under **Base** to widen it.")
    st.stop()

if st.button("Build banner", type="primary", key="banner_build",
             help="Simulates each question once for everyone in the base; later builds of the same questions "
                  "and base are instant."):
    bar = st.progress(0.0, text="Simulating the base...")
    try:
        config = BannerConfig(questions=tuple(questions), fields=tuple(fields), filters=filters)
        built = resources.run_banner(survey.id, config, adapter, progress=lambda done, total: bar.progress(
            done / max(total, 1), text=f"Simulating the base: {done:,} of {total:,} persona answers"))
    except FocusgroupError as error:
        bar.empty()
        st.error(str(error))
        st.stop()
    bar.empty()
    st.session_state[BANNER] = {"banner": built, "adapter": adapter, "model": model_label}

kept = st.session_state[BANNER]
if kept is None or kept["banner"].survey.id != survey.id or kept["adapter"] != adapter:
    st.info("Press **Build banner**: the model answers each question as every respondent of the base.")
    st.stop()

# -- the banner: re-read at the slider's temperature, no model call ----------------------
temperature = st.slider("Temperature", 0.0, 2.0, 1.0, 0.05, key="banner_temperature", persist_state="session",
                        help="Re-reads the stored logits: 0 gives each persona's most likely answer, higher "
                             "values spread the answers out. Never re-runs the model.")
shown = kept["banner"].at(temperature)
if (shown.config.questions, shown.config.fields, shown.config.filters) != (tuple(questions), tuple(fields), filters):
    st.warning("The tables below are the last banner built; press **Build banner** for the current choices.")
st.markdown(f"**{survey.title}** · base: {describe_slice(shown.config.filters, survey)} · {kept['model']} · "
            f"T = {temperature:g}")
for question in shown.questions:
    st.subheader(question.id)
    st.markdown(question.text)
    st.dataframe(styled_table(shown, question), height="content")
st.caption(f"Each column: **Simulated** (the model, as the group's personas) then **Real** (the group's "
           "respondents); shares in %, mean scores on the scale's positions; the base row counts personas, then "
           f"respondents who answered. {shown.significance} **{SIMULATED_LABEL}**")
st.download_button("Excel (XLSX)", banner_workbook(shown), f"focusgroup_banner_{survey.id}.xlsx", XLSX,
                   key="banner_xlsx", help="One sheet per question and a Notes sheet: what was run and how.")
