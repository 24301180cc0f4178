"""Routes the dashboard's pages; nothing else happens here.

    .venv/bin/streamlit run dashboard/app.py
"""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="focusgroup", page_icon="💬", layout="wide")
navigation = st.navigation([
    st.Page(PAGES / "focus_group.py", title="Focus group", icon="💬", default=True),
    st.Page(PAGES / "scoreboard.py", title="Scoreboard", icon="🎯"),
    st.Page(PAGES / "train.py", title="Train", icon="🛠️"),
    st.Page(PAGES / "data.py", title="Data", icon="📋"),
])
navigation.run()
