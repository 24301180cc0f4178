"""PowerPoint export: one 16:9 slide of the current chart, ready to paste into a deck.

The chart is a native PowerPoint column chart built from the figure's bars (python-pptx's
`CategoryChartData`), so it needs no browser, stays editable and restyles with the deck's
theme; whiskers drawn on a bar trace (the real share's 95% sampling band) become the
series' error bars, and the values sit in a data table under the axis, where no whisker
can cross them. The slide carries the title, the chart's subtitle (slice, model and
adapter, temperature), a "Simulated by a language model" label, and the manifest as JSON
in the speaker notes, so whoever reads the deck can reproduce the figure.

    from dashboard.deck import deck_bytes
    open("chart.pptx", "wb").write(deck_bytes(figure, title, manifest, subtitle))
"""

from __future__ import annotations

import io
import json

import numpy as np
import plotly.graph_objects as go
from lxml import etree
from pptx import Presentation
from pptx.chart.data import CategoryChartData
from pptx.dml.color import RGBColor
from pptx.enum.chart import XL_CHART_TYPE
from pptx.enum.text import MSO_AUTO_SIZE
from pptx.oxml.ns import qn
from pptx.util import Inches, Pt

from dashboard.charts import NOTE, SIMULATED

SLIDE_WIDTH, SLIDE_HEIGHT = Inches(13.333), Inches(7.5)
TITLE_ONLY = 5  # the default template's "Title Only" layout
MARGIN = Inches(0.5)


def bar_series(figure: go.Figure) -> tuple[list[str], list[dict]]:
    """The categories and, per bar trace, its name, values, colour and whisker half-widths
    (from the trace's own error bars or a non-bar trace of the same offset group: how
    `charts.distribution_figure` draws the real share's band)."""
    bars = [trace for trace in figure.data if trace.type == "bar"]
    if not bars:
        raise ValueError("The figure has no bars to put on a slide.")
    categories = [str(value) for value in bars[0].x]
    whiskers = {trace.offsetgroup: trace.error_y.array for trace in figure.data
                if trace.type != "bar" and trace.offsetgroup and trace.error_y.array is not None}
    series = []
    for trace in bars:
        values = dict(zip(map(str, trace.x), np.asarray(trace.y, dtype=float)))
        whisker = trace.error_y.array if trace.error_y.array is not None else whiskers.get(trace.offsetgroup)
        series.append({
            "name": trace.name, "colour": trace.marker.color if isinstance(trace.marker.color, str) else None,
            "values": [None if np.isnan(values.get(c, np.nan)) else float(values[c]) for c in categories],
            "whisker": None if whisker is None else [float(w) for w in whisker],
        })
    return categories, series


def add_error_bars(series_element, half_widths: list[float]) -> None:
    """Symmetric custom error bars on a bar series (python-pptx has no API for them): a
    `c:errBars` element, placed before `c:cat` as the DrawingML schema orders it."""
    def literal(tag: str):
        holder = etree.SubElement(error_bars, qn(tag))
        numbers = etree.SubElement(holder, qn("c:numLit"))
        etree.SubElement(numbers, qn("c:formatCode")).text = "0.0%"
        etree.SubElement(numbers, qn("c:ptCount"), val=str(len(half_widths)))
        for index, value in enumerate(half_widths):
            point = etree.SubElement(numbers, qn("c:pt"), idx=str(index))
            etree.SubElement(point, qn("c:v")).text = repr(value)

    error_bars = etree.Element(qn("c:errBars"))
    for tag, value in (("c:errDir", "y"), ("c:errBarType", "both"), ("c:errValType", "cust"),
                       ("c:noEndCap", "0")):
        etree.SubElement(error_bars, qn(tag), val=value)
    literal("c:plus")
    literal("c:minus")
    series_element.find(qn("c:cat")).addprevious(error_bars)


def add_data_table(chart) -> None:
    """The chart's numbers in a table under its axis, with each series' key, instead of
    value labels on the bars, which the whiskers would cross (`c:dTable`, placed after
    the axes as the DrawingML schema orders it; python-pptx has no API for it)."""
    plot_area = chart._chartSpace.find(qn("c:chart")).find(qn("c:plotArea"))
    table = etree.Element(qn("c:dTable"))
    for tag in ("c:showHorzBorder", "c:showVertBorder", "c:showOutline", "c:showKeys"):
        etree.SubElement(table, qn(tag), val="1")
    axes = [child for child in plot_area if child.tag in (qn("c:catAx"), qn("c:valAx"))]
    axes[-1].addnext(table)


def add_text(slide, text: str, top, height, size: int, colour: str = "#555555", bold: bool = False):
    box = slide.shapes.add_textbox(MARGIN, top, SLIDE_WIDTH - 2 * MARGIN, height)
    frame = box.text_frame
    frame.word_wrap = True
    run = frame.paragraphs[0].add_run()
    run.text = text
    run.font.size, run.font.bold = Pt(size), bold
    run.font.color.rgb = RGBColor.from_string(colour.lstrip("#").upper())
    return box


def deck_bytes(figure: go.Figure, title: str, manifest: dict, subtitle: str | None = None) -> bytes:
    """A one-slide .pptx: title, subtitle, the figure's bars as a native column chart (with
    the whiskers as error bars), the simulated label, and `manifest` as JSON in the notes."""
    categories, series = bar_series(figure)
    presentation = Presentation()
    presentation.slide_width, presentation.slide_height = SLIDE_WIDTH, SLIDE_HEIGHT
    slide = presentation.slides.add_slide(presentation.slide_layouts[TITLE_ONLY])

    heading = slide.shapes.title
    heading.left, heading.top = MARGIN, Inches(0.3)
    heading.width, heading.height = SLIDE_WIDTH - 2 * MARGIN, Inches(1.2)
    heading.text = title
    heading.text_frame.word_wrap = True
    heading.text_frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
    for paragraph in heading.text_frame.paragraphs:
        for run in paragraph.runs:
            run.font.size = Pt(26)
    if subtitle:
        add_text(slide, subtitle, Inches(1.5), Inches(0.5), 12)

    data = CategoryChartData(number_format="0%")
    data.categories = categories
    for entry in series:
        data.add_series(entry["name"], entry["values"])
    chart = slide.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, MARGIN, Inches(2.05), SLIDE_WIDTH - 2 * MARGIN,
                                   Inches(4.7), data).chart
    chart.has_legend = False  # the data table below the bars carries each series' key
    chart.value_axis.tick_labels.number_format, chart.value_axis.tick_labels.number_format_is_linked = "0%", False
    chart.value_axis.has_major_gridlines = True
    chart.font.size = Pt(12)
    add_data_table(chart)
    plot = chart.plots[0]
    plot.gap_width = 60
    for entry, chart_series in zip(series, plot.series):
        if entry["colour"]:
            chart_series.format.fill.solid()
            chart_series.format.fill.fore_color.rgb = RGBColor.from_string(entry["colour"].lstrip("#").upper())
        if entry["whisker"] is not None:
            add_error_bars(chart_series._element, entry["whisker"])

    add_text(slide, NOTE + (". Whiskers: the real share's 95% sampling band." if any(
        entry["whisker"] for entry in series) else "."), Inches(6.85), Inches(0.45), 14, SIMULATED, bold=True)
    slide.notes_slide.notes_text_frame.text = json.dumps(manifest, indent=2, default=str)
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()
