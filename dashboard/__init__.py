"""The focusgroup dashboard (Streamlit + Plotly). Start it with `make demo`, or:

    .venv/bin/streamlit run dashboard/app.py
"""
