"""focusgroup's engine: surveys, personas and prompts, models, simulation, metrics.

A plain Python library with no user interface. The `focusgroup` command line
(`engine.cli`) and the Streamlit dashboard (`dashboard/`) are thin clients of it.
"""

__version__ = "0.1.0"
