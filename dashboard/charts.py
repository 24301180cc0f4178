"""Figures for the dashboard: pure functions from tidy DataFrames to Plotly figures.

Each figure carries its own title, axis labels, colours and the "Simulated" label, so a
PNG or SVG exported from it looks like the screen. Nothing here calls the engine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

SIMULATED = "#4C4CD8"
REAL = "#7F7F7F"
BASELINE = "#E08A2E"
FONT = dict(family="Inter, Helvetica, Arial, sans-serif", size=14, color="#222222")


def base_layout(figure: go.Figure, title: str, subtitle: str | None = None) -> go.Figure:
    text = title if not subtitle else f"{title}<br><span style='font-size:12px;color:#666'>{subtitle}</span>"
    figure.update_layout(
        title=dict(text=text, x=0.0, xanchor="left", xref="paper"), font=FONT, template="plotly_white",
        margin=dict(l=60, r=20, t=90, b=60), legend=dict(orientation="h", y=-0.18, x=0.0),
        paper_bgcolor="white", plot_bgcolor="white",
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


def distribution_figure(frame: pd.DataFrame, title: str, subtitle: str | None = None) -> go.Figure:
    """Grouped bars: simulated beside real share per option, the real bars with their noise band."""
    figure = go.Figure()
    figure.add_bar(
        name="Simulated", x=frame["option"], y=frame["simulated"], marker_color=SIMULATED,
        text=[f"{v:.0%}" for v in frame["simulated"]], textposition="inside", insidetextanchor="end",
        textfont=dict(color="white"), hovertemplate="%{x}<br>Simulated: %{y:.1%}<extra></extra>",
    )
    if frame["real"].notna().any():
        figure.add_bar(
            name="Real respondents", x=frame["option"], y=frame["real"], marker_color=REAL,
            text=[f"{v:.0%}" for v in frame["real"]], textposition="inside", insidetextanchor="end",
            textfont=dict(color="white"),
            error_y=dict(type="data", array=frame["real_band"].fillna(0), color="#333333", thickness=1.2, width=6),
            hovertemplate="%{x}<br>Real: %{y:.1%}<extra></extra>",
        )
    top = float(np.nanmax([frame["simulated"].max(), (frame["real"] + frame["real_band"].fillna(0)).max()]))
    figure.update_layout(barmode="group", bargap=0.25)
    figure.update_yaxes(title="Share of respondents", tickformat=".0%", range=[0, min(1.0, top * 1.2 + 0.05)],
                        gridcolor="#EEEEEE")
    figure.update_xaxes(title="Answer")
    figure.add_annotation(text="Simulated by a language model", xref="paper", yref="paper", x=1.0, y=1.06,
                          showarrow=False, font=dict(size=11, color=SIMULATED), xanchor="right")
    return base_layout(figure, title, subtitle)


def ab_figure(frame: pd.DataFrame, title: str, subtitle: str | None = None) -> go.Figure:
    """Two simulated variants side by side: columns option, variant, share."""
    figure = go.Figure()
    for variant, colour in zip(frame["variant"].unique(), (SIMULATED, BASELINE)):
        rows = frame[frame["variant"] == variant]
        figure.add_bar(name=f"Simulated: {variant}", x=rows["option"], y=rows["share"], marker_color=colour,
                       text=[f"{v:.0%}" for v in rows["share"]], textposition="outside")
    figure.update_layout(barmode="group")
    figure.update_yaxes(title="Share of simulated respondents", tickformat=".0%", gridcolor="#EEEEEE")
    figure.update_xaxes(title="Answer")
    return base_layout(figure, title, subtitle)


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
    figure.update_xaxes(title="Answer")
    return base_layout(figure, title, subtitle)


def fidelity_heatmap(frame: pd.DataFrame, title: str, subtitle: str | None = None) -> go.Figure:
    """Questions x slices, coloured by distance / noise floor (1 = as close as a resample)."""
    table = frame.pivot(index="question", columns="slice", values="ratio")
    figure = go.Figure(go.Heatmap(
        z=table.to_numpy(), x=list(table.columns), y=list(table.index), zmin=0, zmax=max(4.0, np.nanmax(table.to_numpy())),
        colorscale=[[0, "#2E7D32"], [0.25, "#C8E6C9"], [0.5, "#FFF59D"], [1, "#C62828"]],
        colorbar=dict(title="JS ÷ noise"), hovertemplate="%{y} / %{x}<br>JS ÷ noise floor: %{z:.2f}<extra></extra>",
    ))
    figure.update_xaxes(title="Slice", tickangle=-40)
    figure.update_yaxes(title="Question")
    return base_layout(figure, title, subtitle)


def tradeoff_figure(frame: pd.DataFrame, best_temperature: float, title: str, subtitle: str | None = None) -> go.Figure:
    """Population distance and individual error across temperatures (columns temperature,
    slice_js, individual, individual_label), with the best temperature marked."""
    figure = go.Figure()
    figure.add_scatter(x=frame["temperature"], y=frame["slice_js"], name="Population: mean slice JS",
                       mode="lines+markers", line=dict(color=SIMULATED))
    figure.add_scatter(x=frame["temperature"], y=frame["individual"], name=f"Individual: {frame['individual_label'].iloc[0]}",
                       mode="lines+markers", line=dict(color=BASELINE), yaxis="y2")
    figure.add_vline(x=best_temperature, line_dash="dash", line_color="#333333",
                     annotation_text=f"best T = {best_temperature:g}", annotation_position="top")
    figure.update_layout(yaxis=dict(title="Mean slice JS distance", gridcolor="#EEEEEE"),
                         yaxis2=dict(title=frame["individual_label"].iloc[0], overlaying="y", side="right"))
    figure.update_xaxes(title="Temperature")
    return base_layout(figure, title, subtitle)


def loss_figure(curve: pd.DataFrame, title: str = "Training loss") -> go.Figure:
    """Training loss per step and validation loss where measured."""
    figure = go.Figure()
    figure.add_scatter(x=curve["step"], y=curve["loss"], name="Training loss", mode="lines",
                       line=dict(color=SIMULATED))
    if "validation_loss" in curve and curve["validation_loss"].notna().any():
        points = curve.dropna(subset=["validation_loss"])
        figure.add_scatter(x=points["step"], y=points["validation_loss"], name="Validation loss",
                           mode="lines+markers", line=dict(color=BASELINE))
    figure.update_xaxes(title="Step")
    figure.update_yaxes(title="Loss", gridcolor="#EEEEEE")
    return base_layout(figure, title)
