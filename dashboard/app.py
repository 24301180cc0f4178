"""Routes the dashboard's pages; nothing else happens here.

    .venv/bin/streamlit run dashboard/app.py
"""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="focusgroup", page_icon=":material/forum:", layout="wide")
navigation = st.navigation([
    st.Page(PAGES / "focus_group.py", title="Focus group", icon=":material/forum:", default=True),
    st.Page(PAGES / "banner.py", title="Banner", icon=":material/table_view:"),
    st.Page(PAGES / "scoreboard.py", title="Scoreboard", icon=":material/grid_on:"),
    st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:"),
    st.Page(PAGES / "data.py", title="Data", icon=":material/table_chart:"),
])
navigation.run()
