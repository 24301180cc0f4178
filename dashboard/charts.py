"""Figures for the dashboard: pure functions from tidy DataFrames to Plotly figures.

Each figure carries its own title, axis labels, colours and the "Simulated" label, so a
PNG or SVG exported from it looks like the screen. Nothing here calls the engine.
"""

from __future__ import annotations

import html
import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.ab_test import WITHIN_NOISE

SIMULATED = "#4C4CD8"
REAL = "#7F7F7F"
BASELINE = "#E08A2E"
WHISKER = "#333333"
FONT = dict(family="Inter, Helvetica, Arial, sans-serif", size=13, color="#222222")
NOTE = "Simulated by a language model"
AB_TAGS = ("A", "B")

# Plotly draws text without wrapping, and a figure cannot know the width it is shown at, so
# lines are cut to fit the narrowest place a chart goes: a phone (about 340 pixels for the
# chart). At the fonts below, average characters are about half as wide as they are high.
TITLE_SIZE, SUBTITLE_SIZE, LABEL_SIZE = 16, 12, 12  # LABEL_SIZE: the smallest text on a chart
TITLE_CHARS, SUBTITLE_CHARS, TICK_CHARS = 40, 54, 10
LINE_SPACING = 1.3  # Plotly's own: every line of a multi-line text is 1.3 em of its element's font
PLOT_HEIGHT = 300  # the plotting area; margins are added around it
SHIFT_HEIGHT, PANEL_GAP = 180, 36  # the A/B chart's shift panel under its bars, and the space between
STIMULUS_CHARS = 40  # of a stimulus in the A/B legend; its full text stands above the chart
# The shift panel's points sit on their answers: the bars above (on axes matched to these)
# are grouped apart from them, not into slots shared with them.
SHIFT_SLOT = dict(alignmentgroup="shift", offsetgroup="shift")
TOP_PAD, AXIS_SPACE, LEGEND_ROW, LABEL_ROOM = 10, 50, 26, 24  # AXIS_SPACE: the axis title and its gaps


def wrap_lines(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` characters, broken at " · " between parts first,
    then between words (a word longer than a line is cut)."""
    lines: list[str] = []
    for part in text.split(" · "):
        pieces = textwrap.wrap(part, width) or [""]
        if lines and len(lines[-1]) + 3 + len(pieces[0]) <= width:
            lines[-1] += " · " + pieces.pop(0)
        lines += pieces
    return lines


def title_block(title: str, subtitle: str | None, note: str | None, details=()) -> tuple[str, int]:
    """The text above a chart, in Plotly's markup: the title, the subtitle in grey, each of
    `details` on lines of its own in dark grey, and the note in the simulated colour, each
    wrapped (`wrap_lines`); with its height in pixels."""
    lines = [html.escape(line, quote=False) for line in wrap_lines(title, TITLE_CHARS)]
    small = f"<span style='font-size:{SUBTITLE_SIZE}px;color:%s'>%s</span>"
    lines += [small % ("#555555", html.escape(line, quote=False))
              for line in (wrap_lines(subtitle, SUBTITLE_CHARS) if subtitle else [])]
    lines += [small % (FONT["color"], html.escape(line, quote=False))
              for detail in details for line in wrap_lines(detail, SUBTITLE_CHARS)]
    lines += [small % (SIMULATED, f"<b>{note}</b>")] if note else []
    return "<br>".join(lines), round(len(lines) * LINE_SPACING * TITLE_SIZE)


def legend_rows(names: list[str]) -> int:
    """How many rows a horizontal legend of these entries takes at phone width (each entry
    is its symbol, about 40 pixels, and its text)."""
    widths = [40 + 0.55 * FONT["size"] * len(name) for name in names]
    rows, used = 1, 0.0
    for width in widths:
        if used and used + width > 330:
            rows, used = rows + 1, 0.0
        used += width
    return rows


def wrapped_ticks(labels) -> dict:
    """Axis settings that show each category label in lines of at most TICK_CHARS."""
    labels = list(labels)
    return dict(tickmode="array", tickvals=labels,
                ticktext=["<br>".join(wrap_lines(str(label), TICK_CHARS)) for label in labels])


def base_layout(figure: go.Figure, title: str, subtitle: str | None = None, note: str | None = NOTE,
                plot_height: int = PLOT_HEIGHT, tick_height: int | None = None, details=()) -> go.Figure:
    """Title, subtitle and note as one wrapped text block above the plot (`title_block`),
    its height counted into the top margin, and the legend anchored to the figure's bottom
    edge, where Plotly reserves its room below the axis: pixel positions rather than
    fractions of the plot, so no text runs into another at any width. The figure's height
    is the plot's plus its text, and is also the exported height.
    `tick_height`: the pixels the x tick labels take where they are not one line each
    (default: from the lines of wrapped tick text, `wrapped_ticks`); `details`: more lines
    for the text block (`title_block`)."""
    text, title_height = title_block(title, subtitle, note, details)
    entries = [trace.name for trace in figure.data if trace.showlegend is not False and trace.name]
    legend_height = LEGEND_ROW * legend_rows(entries) if len(entries) > 1 else 0
    if tick_height is None:
        tick_lines = max(len(label.split("<br>")) for label in (figure.layout.xaxis.ticktext or ["x"]))
        tick_height = round(tick_lines * LINE_SPACING * FONT["size"])
    bottom = AXIS_SPACE + tick_height
    figure.update_layout(
        title=dict(text=text, x=0.0, xanchor="left", xref="container", y=1.0, yanchor="top", yref="container",
                   pad=dict(t=TOP_PAD + TITLE_SIZE, l=12), automargin=False, font=dict(size=TITLE_SIZE)),
        font=FONT, template="plotly_white", paper_bgcolor="white", plot_bgcolor="white",
        legend=dict(orientation="h", x=0.0, xanchor="left", xref="container", y=0.0, yanchor="bottom",
                    yref="container", font=dict(size=LABEL_SIZE)),
        margin=dict(l=64, r=24, t=TOP_PAD + title_height + 12, b=bottom, autoexpand=True),
        height=TOP_PAD + title_height + 12 + plot_height + bottom + legend_height,
    )
    return figure


def distribution_frame(options: list[str], simulated: np.ndarray, real: np.ndarray | None,
                       real_band: np.ndarray | None) -> pd.DataFrame:
    """One row per option: simulated share, real share and its noise half-width (or NaN)."""
    return pd.DataFrame({
        "option": options,
        "simulated": np.asarray(simulated, dtype=float),
        "real": np.full(len(options), np.nan) if real is None else np.asarray(real, dtype=float),
        "real_band": np.full(len(options), np.nan) if real_band is None else np.asarray(real_band, dtype=float),
    })


def noise_band(real: np.ndarray, effective_n: float) -> np.ndarray:
    """Half-width of the 95% sampling band of each real share: 1.96 sqrt(p (1 - p) / n)."""
    real = np.asarray(real, dtype=float)
    return 1.96 * np.sqrt(real * (1 - real) / max(effective_n, 1.0))


def value_labels(x, y, text, group: str) -> go.Scatter:
    """Value labels drawn above points `y` of the bars in offset group `group` (Plotly's
    scattermode "group" puts them over their own bar), at the labels' font size whatever the
    bar's height, so 3% reads as well as 60%."""
    return go.Scatter(x=x, y=y, text=text, mode="text", textposition="top center", offsetgroup=group,
                      textfont=dict(size=LABEL_SIZE, color=FONT["color"]), showlegend=False, hoverinfo="skip",
                      cliponaxis=False)


def distribution_figure(frame: pd.DataFrame, title: str, subtitle: str | None = None, details=()) -> go.Figure:
    """Grouped bars: simulated beside real share per option, the real bars with their 95%
    sampling band as whiskers (a legend entry of its own), each value printed above its bar
    or, for the real share, above its whisker, so no label is crossed by a line. `details`:
    lines for the text block above the chart (the stimulus the personas saw)."""
    has_real = bool(frame["real"].notna().any())
    band = frame["real_band"].fillna(0)
    figure = go.Figure()
    figure.add_bar(name="Simulated", x=frame["option"], y=frame["simulated"], marker_color=SIMULATED,
                   offsetgroup="simulated", hovertemplate="%{x}<br>Simulated: %{y:.1%}<extra></extra>")
    figure.add_trace(value_labels(frame["option"], frame["simulated"], [f"{v:.0%}" for v in frame["simulated"]],
                                  "simulated"))
    if has_real:
        figure.add_bar(name="Real respondents", x=frame["option"], y=frame["real"], marker_color=REAL,
                       offsetgroup="real", hovertemplate="%{x}<br>Real: %{y:.1%}<extra></extra>")
        figure.add_scatter(
            name="95% sampling band (real)", x=frame["option"], y=frame["real"], offsetgroup="real", mode="markers",
            marker=dict(symbol="line-ns-open", size=14, color=WHISKER, line=dict(width=1.5, color=WHISKER)),
            error_y=dict(type="data", array=band, color=WHISKER, thickness=1.5, width=6), customdata=band,
            hovertemplate="%{x}<br>Real: %{y:.1%} ± %{customdata:.1%} (95% sampling band)<extra></extra>",
        )
        figure.add_trace(value_labels(frame["option"], frame["real"] + band, [f"{v:.0%}" for v in frame["real"]],
                                      "real"))
    figure.update_layout(barmode="group", scattermode="group", bargap=0.25)
    share_axis(figure, float(np.nanmax([frame["simulated"].max(), (frame["real"] + band).max()])),
               "Share of respondents")
    figure.update_xaxes(title="Answer", **wrapped_ticks(frame["option"]))
    return base_layout(figure, title, subtitle, details=details)


def share_axis(figure: go.Figure, top: float, title: str, **where) -> None:
    """A 0-to-`top` share axis with room above the tallest bar for its label, ticks to 100%
    (`where`: the panel's row and col, in a figure of several)."""
    upper = top / (1 - LABEL_ROOM / PLOT_HEIGHT) + 0.01
    step = 1 if upper < 0.5 else 2
    figure.update_yaxes(title=title, tickformat=".0%", range=[0, upper], gridcolor="#EEEEEE",
                        tickvals=[tenth / 10 for tenth in range(0, 11, step) if tenth / 10 <= upper], **where)


def stimulus_name(tag: str, text: str | None) -> str:
    """A stimulus in a few words, for a legend: "A: " and at most its first STIMULUS_CHARS
    characters, cut between words where it can be."""
    text = " ".join((text or "").split())
    if len(text) <= STIMULUS_CHARS:
        return f"{tag}: {text or 'no stimulus'}"
    words = text[:STIMULUS_CHARS + 1].rsplit(" ", 1)[0]  # the +1 keeps a last word that ends at the limit
    return f"{tag}: {(words if len(words) <= STIMULUS_CHARS else text[:STIMULUS_CHARS]).rstrip(' ,;:.')}…"


def ab_frame(shift: pd.DataFrame, stimuli) -> pd.DataFrame:
    """The A/B test's numbers for its chart and its exports: the shift table of
    `engine.ab_test` (columns measure, label, a, b, shift, low, high, verdict; one row per
    option, then the top box and mean score of a scale) with each stimulus's full text in
    the columns stimulus_a and stimulus_b (empty where there was none)."""
    return shift.assign(stimulus_a=stimuli[0] or "", stimulus_b=stimuli[1] or "")


def ab_figure(frame: pd.DataFrame, title: str, subtitle: str | None = None) -> go.Figure:
    """The A/B test (`ab_frame`) in two panels over the same answers: the shares under A and
    under B side by side, and under them each option's shift B - A in percentage points
    with its 95% interval as whiskers, filled where the interval leaves out 0 and hollow
    where it covers 0 (within noise). The legend names each stimulus by its first words;
    their full texts stand in the text block above the chart, where nothing else is drawn."""
    options = frame[frame["measure"] == "option"]
    stimuli = [frame[column].iloc[0] for column in ("stimulus_a", "stimulus_b")]
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[PLOT_HEIGHT, SHIFT_HEIGHT],
                           vertical_spacing=PANEL_GAP / (PLOT_HEIGHT + SHIFT_HEIGHT + PANEL_GAP))
    for tag, column, colour, text in zip(AB_TAGS, ("a", "b"), (SIMULATED, BASELINE), stimuli):
        figure.add_bar(name=html.escape(stimulus_name(tag, text), quote=False), x=options["label"],
                       y=options[column], marker_color=colour, offsetgroup=tag, row=1, col=1,
                       hovertemplate=f"%{{x}}<br>{tag}: %{{y:.1%}}<extra></extra>")
        figure.add_trace(value_labels(options["label"], options[column], [f"{v:.0%}" for v in options[column]],
                                      tag), row=1, col=1)
    share_axis(figure, float(options[["a", "b"]].to_numpy().max()), "Share of simulated respondents", row=1, col=1)
    shift_panel(figure, options, row=2, col=1)
    figure.update_layout(barmode="group", scattermode="group")
    figure.update_xaxes(**wrapped_ticks(options["label"]))
    figure.update_xaxes(title="Answer", row=2, col=1)
    details = [f"Stimulus {tag}: {' '.join(text.split()) or 'none'}" for tag, text in zip(AB_TAGS, stimuli)]
    details.append("Lower panel: B - A in points, whiskers its 95% interval (paired bootstrap over personas).")
    return base_layout(figure, title, subtitle, plot_height=PLOT_HEIGHT + SHIFT_HEIGHT + PANEL_GAP,
                       details=details)


def points_text(value: float) -> str:
    """A shift in points as printed on a chart: signed, one decimal, Plotly's minus sign, and
    no sign on a value that rounds to 0."""
    text = f"{value:+.1f}"
    return "0.0" if float(text) == 0 else text.replace("-", "−")


def shift_panel(figure: go.Figure, options: pd.DataFrame, **where) -> None:
    """Each option's shift B - A in points with its interval as whiskers, hollow where the
    interval covers 0; its value printed beyond the whisker's end away from 0, a line at 0,
    and room on the axis for the labels."""
    points = options[["shift", "low", "high"]].to_numpy(dtype=float) * 100
    within = (options["verdict"] == WITHIN_NOISE).to_numpy()
    for name, chosen, symbol in (("B - A beyond noise", ~within, "circle"),
                                 ("B - A within noise (interval covers 0)", within, "circle-open")):
        if not chosen.any():
            continue
        shift, low, high = points[chosen].T
        figure.add_scatter(
            name=name, x=options["label"][chosen], y=shift, mode="markers", **SHIFT_SLOT,
            marker=dict(symbol=symbol, size=9, color=SIMULATED, line=dict(width=1.5, color=SIMULATED)),
            error_y=dict(type="data", symmetric=False, array=high - shift, arrayminus=shift - low, color=WHISKER,
                         thickness=1.5, width=6),
            customdata=np.column_stack([low, high]), **where,
            hovertemplate="%{x}<br>B - A: %{y:+.1f} points (95%: %{customdata[0]:+.1f} to "
                          "%{customdata[1]:+.1f})<extra></extra>")
    shift, low, high = points.T
    above = shift >= 0
    # An unseen marker the size of a whisker's cap keeps each label clear of its whisker's end.
    figure.add_trace(go.Scatter(
        x=options["label"], y=np.where(above, high, low), text=[points_text(v) for v in shift],
        mode="markers+text", marker=dict(size=10, color="rgba(0,0,0,0)"), **SHIFT_SLOT,
        textposition=["top center" if up else "bottom center" for up in above],
        textfont=dict(size=LABEL_SIZE, color=FONT["color"]), showlegend=False, hoverinfo="skip",
        cliponaxis=False), **where)
    figure.add_hline(y=0, line=dict(color=WHISKER, width=1), **where)
    bottom, top = min(low.min(), 0.0), max(high.max(), 0.0)
    room = max(top - bottom, 1.0) * LABEL_ROOM / (SHIFT_HEIGHT - 2 * LABEL_ROOM)
    figure.update_yaxes(title="B - A, points", range=[bottom - room, top + room], zeroline=False,
                        gridcolor="#EEEEEE", **where)


PILOT_COLOURS = {"Pilot alone": REAL, "Model alone": SIMULATED, "Pilot + model": "#2E8B57"}


def pilot_frame(labels: list[str], block: dict) -> pd.DataFrame:
    """Tidy rows (option, estimate, share, low, high) from a pilot block
    (`engine.pilot_survey.PilotReport.to_dict`): pilot alone, model alone and pilot + model,
    the bounds NaN where the method has no interval; the real share outside the pilot too."""
    rows = []
    for method, name in (("pilot", "Pilot alone"), ("model", "Model alone"), ("ppi", "Pilot + model")):
        estimate = block["estimates"][method]
        if estimate is None:
            continue
        for label in labels:
            low = np.nan if estimate["low"] is None else estimate["low"][label]
            high = np.nan if estimate["high"] is None else estimate["high"][label]
            rows.append({"option": label, "estimate": name, "share": estimate["shares"][label], "low": low,
                         "high": high})
    if block["truth"] is not None:
        rows += [{"option": label, "estimate": "Real, outside the pilot", "share": block["truth"][label],
                  "low": np.nan, "high": np.nan} for label in labels]
    return pd.DataFrame(rows, columns=["option", "estimate", "share", "low", "high"])


def pilot_figure(frame: pd.DataFrame, title: str, subtitle: str | None = None) -> go.Figure:
    """Grouped bars per option: pilot alone, model alone, pilot + model (95% intervals as
    error bars where the estimate has one) and the real share outside the pilot."""
    figure = go.Figure()
    for name in frame["estimate"].unique():
        rows = frame[frame["estimate"] == name]
        has_interval = rows["low"].notna().any()
        figure.add_bar(
            name=name, x=rows["option"], y=rows["share"], marker_color=PILOT_COLOURS.get(name, BASELINE),
            error_y=dict(type="data", symmetric=False, array=(rows["high"] - rows["share"]).fillna(0),
                         arrayminus=(rows["share"] - rows["low"]).fillna(0), color="#333333", thickness=1.2,
                         width=6) if has_interval else None,
            hovertemplate="%{x}<br>" + name + ": %{y:.1%}<extra></extra>",
        )
    figure.update_layout(barmode="group", bargap=0.2)
    figure.update_yaxes(title="Share of the slice", tickformat=".0%", range=[0, 1], gridcolor="#EEEEEE")
    figure.update_xaxes(title="Answer", **wrapped_ticks(frame["option"].unique()))
    return base_layout(figure, title, subtitle)


def fidelity_heatmap(frame: pd.DataFrame, title: str, subtitle: str | None = None) -> go.Figure:
    """Questions x slices, coloured by distance / noise floor (1 = as close as a resample)."""
    table = frame.pivot(index="question", columns="slice", values="ratio")
    figure = go.Figure(go.Heatmap(
        z=table.to_numpy(), x=list(table.columns), y=list(table.index), zmin=0, zmax=max(4.0, np.nanmax(table.to_numpy())),
        colorscale=[[0, "#2E7D32"], [0.25, "#C8E6C9"], [0.5, "#FFF59D"], [1, "#C62828"]],
        colorbar=dict(title=dict(text="JS ÷ noise", side="right")),
        hovertemplate="%{y} / %{x}<br>JS ÷ noise floor: %{z:.2f}<extra></extra>",
    ))
    figure.update_xaxes(title="Slice", tickangle=-40)
    figure.update_yaxes(title="Question")
    longest = max(len(str(column)) for column in table.columns)  # slice labels, turned 40 degrees
    return base_layout(figure, title, subtitle, plot_height=max(PLOT_HEIGHT, 22 * len(table.index)),
                       tick_height=round(0.55 * FONT["size"] * longest * 0.65) + FONT["size"])


def tradeoff_figure(frame: pd.DataFrame, best_temperature: float, title: str, subtitle: str | None = None) -> go.Figure:
    """Population distance and individual error across temperatures (columns temperature,
    slice_js, individual, individual_label), with the best temperature marked."""
    figure = go.Figure()
    figure.add_scatter(x=frame["temperature"], y=frame["slice_js"], name="Population: mean slice JS",
                       mode="lines+markers", line=dict(color=SIMULATED))
    figure.add_scatter(x=frame["temperature"], y=frame["individual"], name=f"Individual: {frame['individual_label'].iloc[0]}",
                       mode="lines+markers", line=dict(color=BASELINE), yaxis="y2")
    figure.add_vline(x=best_temperature, line_dash="dash", line_color="#333333",
                     annotation_text=f"best T = {best_temperature:g}", annotation_position="top right",
                     annotation_yanchor="top")  # inside the plot, clear of the title block
    figure.update_layout(yaxis=dict(title="Mean slice JS distance", gridcolor="#EEEEEE"),
                         yaxis2=dict(title=frame["individual_label"].iloc[0], overlaying="y", side="right"))
    figure.update_xaxes(title="Temperature")
    return base_layout(figure, title, subtitle)


def loss_figure(curve: pd.DataFrame, title: str = "Training loss") -> go.Figure:
    """Training loss per step and validation loss where measured."""
    figure = go.Figure()
    figure.add_scatter(x=curve["step"], y=curve["loss"], name="Training loss", mode="lines+markers",
                       line=dict(color=SIMULATED))
    if "validation_loss" in curve and curve["validation_loss"].notna().any():
        points = curve.dropna(subset=["validation_loss"])
        figure.add_scatter(x=points["step"], y=points["validation_loss"], name="Validation loss",
                           mode="lines+markers", line=dict(color=BASELINE))
    figure.update_xaxes(title="Step")
    figure.update_yaxes(title="Loss", gridcolor="#EEEEEE")
    return base_layout(figure, title, note=None)
