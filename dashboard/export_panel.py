"""The Focus group page's "Export" row: the chart as PNG, SVG, HTML, CSV, Excel and
PowerPoint, the report bundle (ZIP), and the manifest those files carry.

Every file is made when its button is pressed (`st.download_button` with a callable), and
no button reruns the page (`on_click="ignore"`), so the row is the same before and after a
download: each button stays where it was, and nothing is rendered that nobody asked for.
"""

from __future__ import annotations

import datetime

import numpy as np
import streamlit as st

from dashboard import deck, export, resources
from dashboard.charts import AB_TAGS
from engine.ab_test import DEFAULT_RESAMPLES, LEVEL
from engine.atomic import finite_json
from engine.slices import describe_slice

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def ab_manifest(labels, stimuli, distributions, shift, seed: int) -> dict:
    """The manifest's A/B block: both stimuli, both simulated distributions, and the shift
    table (`engine.ab_test.stimulus_shift`) with its intervals, verdicts and how they were drawn."""
    return {
        "stimuli": dict(zip(AB_TAGS, stimuli)),
        "simulated": {tag: dict(zip(labels, np.round(shares, 6).tolist()))
                      for tag, shares in zip(AB_TAGS, distributions)},
        "shift": finite_json(shift.round(6).to_dict("records")),
        "interval": {"level": LEVEL, "method": "paired percentile bootstrap over personas",
                     "resamples": DEFAULT_RESAMPLES, "seed": seed},
        "verdict": "within noise where the interval covers 0, else B higher or B lower",
    }


def report_manifest(simulation, snapshot, request: dict, model: str, temperature: float, pilot: dict | None,
                    ab: dict | None = None) -> dict:
    """Everything needed to reproduce the charts: survey, slice, question and its scale,
    stimuli, context, model and adapter (by name and weights hash: no local path), seed,
    temperature, the population and individual metrics, the A/B block (`ab_manifest`) where
    two stimuli were compared, the app's version and the date."""
    question = simulation.question
    labels = question.labels
    return {
        "app": {"name": "focusgroup", "version": export.app_version()},
        "survey": simulation.survey.id, "provenance": simulation.survey.provenance,
        "slice": {k: list(v) for k, v in request["filters"].items()},
        "slice_description": describe_slice(request["filters"]),
        "n_personas": simulation.n_personas, "n_real": simulation.n_real,
        "question": question.id, "question_text": question.text, "options": labels,
        "scale": {"type": question.type, "positive_end": question.positive if question.is_scale else None,
                  "top_box": None if question.positive_index is None else labels[question.positive_index],
                  "off_scale": question.off_scale_labels},
        "stimuli": request["stimuli"], "context": list(simulation.context),
        "model": model, "adapter": export.adapter_identity(request["adapter"]),
        "model_fingerprint": resources.model(resources.base_model(), request["adapter"]).fingerprint,
        "temperature": temperature, "seed": simulation.seed,
        "metrics": snapshot.metrics, "individual_metrics": snapshot.individual,
        "noise_floor": simulation.noise, "baselines": snapshot.baselines,
        "gaps": None if snapshot.gaps is None else finite_json(snapshot.gaps.to_dict()),
        "simulated": dict(zip(labels, snapshot.simulated.round(6).tolist())),
        "real": None if simulation.real is None else dict(zip(labels, simulation.real.round(6).tolist())),
        "pilot": pilot, "ab": ab,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def export_section(charts: list[export.Chart], manifest: dict, title: str, subtitle: str) -> None:
    """The download buttons for the first chart (the distribution) and the bundle of all."""
    st.subheader("Export")
    main = charts[0]
    stem = f"focusgroup_{manifest['question']}"
    images = export.find_browser() is not None
    files = [("Excel", lambda: export.xlsx_bytes(charts, manifest), "xlsx", XLSX),
             ("PowerPoint", lambda: deck.deck_bytes(main.figure, title, manifest, subtitle), "pptx", PPTX),
             ("CSV", lambda: export.csv_bytes(main.data), "csv", "text/csv"),
             ("HTML", lambda: export.html_document(main.figure), "html", "text/html")]
    if images:
        files += [("PNG", lambda: export.static_image(main.figure, "png"), "png", "image/png"),
                  ("SVG", lambda: export.static_image(main.figure, "svg"), "svg", "image/svg+xml")]
    files.append(("Report bundle (ZIP)", lambda: export.report_bundle(charts, manifest, images)[0], "zip",
                  "application/zip"))
    for column, (label, data, extension, mime) in zip(st.columns(len(files)), files):
        column.download_button(label, data, f"{stem}.{extension}", mime, key=f"download_{extension}",
                               on_click="ignore", width="stretch")
    contents = ", ".join(chart.name for chart in charts)
    st.caption(f"The bundle holds each chart ({contents}) as HTML and CSV{', PNG and SVG' if images else ''}, "
               "their numbers in report.xlsx, and manifest.json. The PowerPoint slide is a native chart "
               "(editable, no browser needed) with the manifest in its speaker notes. A CSV begins with "
               "`#` lines saying what each column means: read it with `pandas.read_csv(path, comment=\"#\")`."
               + ("" if images else f" PNG/SVG: {export.INSTALL_HINT}."))
    with st.expander("Manifest: what the exports record to reproduce this chart"):
        st.json(manifest, expanded=False)
