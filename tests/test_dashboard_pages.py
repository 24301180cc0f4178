"""The Scoreboard and Train pages under Streamlit's AppTest (tiny model): what they say is
read off the numbers they show, and their results and jobs outlive a page switch or a reload."""

import base64
import json
import re
import threading
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_dashboard import DASHBOARD, TIMEOUT, page

from dashboard import resources

QUESTIONS = ["natspac", "natenrgy"]


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch, tmp_path):
    monkeypatch.setenv("FOCUSGROUP_MODEL", "tiny")
    monkeypatch.setattr(resources, "trained_adapters_root", lambda: tmp_path / "adapters")
    resources.SIMULATIONS.clear()
    resources.JOBS.clear()
    yield
    resources.JOBS.clear()


def figure(app: AppTest, index: int) -> dict:
    return json.loads(app.get("plotly_chart")[index].proto.spec)


def values(array) -> np.ndarray:
    """A trace's values as floats, NaN where missing (Plotly may send them as base64-typed arrays)."""
    if isinstance(array, dict):
        decoded = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        return decoded.reshape([int(n) for n in str(array.get("shape", len(decoded))).split(",")]).astype(float)
    return np.array(array, dtype=float)


def scored(app: AppTest) -> AppTest:
    app.multiselect(key="board_gss2018").set_value(QUESTIONS)
    app.button(key="FormSubmitter:scoreboard-Score").click().run()
    assert not app.exception, app.exception
    return app


@pytest.fixture(scope="module")
def scoreboard(tmp_path_factory):
    """The scoreboard of two questions, scored once for the tests that only read it."""
    import engine.scoring as scoring

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FOCUSGROUP_MODEL", "tiny")
        patch.setattr(scoring, "_default_store", scoring.LogitStore(tmp_path_factory.mktemp("logits")))
        resources.SIMULATIONS.clear()
        yield scored(page("scoreboard"))


def test_the_tradeoff_sentence_names_the_minima_of_the_curve_shown(scoreboard):
    curve = figure(scoreboard, 1)["data"]
    temperatures = values(curve[0]["x"])
    population, individual = values(curve[0]["y"]), values(curve[1]["y"])
    best, closest = temperatures[int(np.argmin(population))], temperatures[int(np.argmin(individual))]
    sentence = next(m.value for m in scoreboard.markdown if m.value.startswith("Population distance"))
    named = re.findall(r"lowest at \*\*T = ([0-9.]+)\*\*", sentence)
    assert named == [f"{best:g}", f"{closest:g}"], sentence
    assert ("no trade-off" in sentence) == (best == closest)


def test_a_tradeoff_is_described_with_the_numbers_of_the_curve_shown(scoreboard, monkeypatch):
    kept = scoreboard.session_state["scoreboard_results"]
    curve = [{"temperature": t, "slice_js": js, "split_js": js, "log_loss": 1.0, "rmse": rmse}
             for t, js, rmse in ((0.0, 0.30, 0.70), (0.5, 0.20, 0.60), (1.0, 0.10, 0.80), (2.0, 0.15, 0.90))]
    monkeypatch.setattr(resources, "run_evaluation", lambda *args, **kwargs: next(iter(kept.values()))["result"])
    monkeypatch.setattr(resources, "run_temperature_curve", lambda *args, **kwargs: curve)
    app = scored(page("scoreboard"))  # a new session: the made-up curve is what it shows
    sentence = next(m.value for m in app.markdown if m.value.startswith("Population distance"))
    assert sentence == (
        "Population distance is lowest at **T = 1** (mean JS over slices); individual error (RMSE of the expected "
        "answer) is lowest at **T = 0.5**. The two pull apart: at T = 1 the individual error is 0.800 against 0.600 "
        "at T = 0.5, and at T = 0.5 the population distance is 0.200 against 0.100.")
    assert app.button(key="use_temperature").label == "Use T = 1 on the Focus group page"


def test_the_best_temperature_can_be_used_on_the_focus_group_page(scoreboard):
    curve = figure(scoreboard, 1)["data"][0]
    best = values(curve["x"])[int(np.argmin(values(curve["y"])))]
    button = scoreboard.button(key="use_temperature")
    assert button.label == f"Use T = {best:g} on the Focus group page"
    button.click().run()
    assert not scoreboard.exception, scoreboard.exception
    assert scoreboard.session_state["temperature"] == best
    assert any(f"now shows its simulations at T = {best:g}" in message.value for message in scoreboard.success)


def test_heat_map_cells_are_labelled_from_the_spec_and_blank_ones_explained(scoreboard):
    heatmap = figure(scoreboard, 0)["data"][0]
    assert "Party: Strong Democrat" in heatmap["x"] and not [x for x in heatmap["x"] if " = " in x]
    assert heatmap["x"][:2] == ["Age: 18-29", "Age: 30-44"]  # the spec's order: age is its first field
    assert sorted(heatmap["y"]) == sorted(QUESTIONS)
    from engine.surveys import load_survey

    wording = load_survey("gss2018").question(heatmap["y"][0]).text
    notes = heatmap["customdata"]
    assert notes[0][0][0].replace("<br>", " ").startswith(wording[:60])
    z = values(heatmap["z"])
    blank = [notes[i][j][1] for i, j in zip(*np.nonzero(np.isnan(z)))]
    assert blank and all(note.startswith("Blank: ") for note in blank)  # these two questions leave some
    caption = next(c.value for c in scoreboard.caption if "cells are blank" in c.value)
    assert caption.startswith("Rows: questions") and f"{len(blank)} of {z.size} cells are blank" in caption
    assert "fewer than 30 test respondents in the slice answered the question" in caption


def test_the_progress_text_names_the_question_while_respondents_are_scored(monkeypatch):
    import streamlit as st

    def interrupted(survey_id, adapter, questions, progress=None, on_question=None):
        on_question(1, 2, "natenrgy")
        progress(50, 200)
        st.stop()  # the page as it looks in the middle of the run

    monkeypatch.setattr(resources, "run_evaluation", interrupted)
    app = page("scoreboard")
    app.multiselect(key="board_gss2018").set_value(QUESTIONS)
    app.button(key="FormSubmitter:scoreboard-Score").click().run()
    bar = app.get("progress")[0].proto
    assert bar.text == "Scoring question 2 of 2: natenrgy (50 of 200 test respondents)"
    assert bar.value == 62  # (1 + 50 / 200) of 2 questions


def test_a_scoreboard_result_and_its_temperature_survive_a_page_switch(monkeypatch):
    app = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=TIMEOUT)
    app.run()
    app.switch_page("pages/scoreboard.py").run()
    scored(app)
    shown = [m.value for m in app.markdown]
    best = float(app.button(key="use_temperature").label.split()[3])
    app.button(key="use_temperature").click().run()

    def again(*args, **kwargs):
        raise AssertionError("the scoreboard scored again")

    monkeypatch.setattr(resources, "run_evaluation", again)
    monkeypatch.setattr(resources, "run_temperature_curve", again)
    resources.SIMULATIONS.clear()
    app.switch_page("pages/focus_group.py").run()
    assert app.title[0].value == "Focus group" and app.session_state["temperature"] == best
    app.switch_page("pages/scoreboard.py").run()
    assert not app.exception, app.exception
    assert [m.value for m in app.markdown] == shown and len(app.get("plotly_chart")) == 2


class FakeTraining:
    """Stands in for `engine.training.trainer.train`: records its config and the job's
    progress callback, then waits, as a run does, until released."""

    def __init__(self):
        self.configs, self.reports = [], []
        self.release = threading.Event()

    def __call__(self, config, report):
        self.configs.append(config)
        self.reports.append(report)
        self.release.wait(60)
        return {}

    def started(self):
        deadline = time.monotonic() + 10
        while not self.reports and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.reports[0]


@pytest.fixture
def training(monkeypatch):
    fake = FakeTraining()
    monkeypatch.setattr("engine.training.trainer.train", fake)
    yield fake
    fake.release.set()


def start(steps: int) -> AppTest:
    app = page("train")
    app.number_input(key="train_steps").set_value(steps)
    app.button(key="FormSubmitter:train-Start training").click().run()
    assert not app.exception, app.exception
    assert not app.error, [error.value for error in app.error]
    return app


def step(report, number: int, total: int, loss: float = 1.0) -> None:
    from engine.training.trainer import TrainProgress

    report(TrainProgress(number, total, loss, None, None, eta_seconds=0.0))


def test_a_two_step_run_is_accepted_and_starts(training):
    assert page("train").number_input(key="train_steps").min == 1
    app = start(2)
    training.started()
    assert [config.max_steps for config in training.configs] == [2]
    assert app.session_state["train_job"] in resources.JOBS


def test_no_loss_chart_is_drawn_before_it_has_a_line(training):
    app = start(2)
    report = training.started()
    app.run()
    assert not app.get("plotly_chart")
    assert any(caption.value.startswith("Waiting for the first step") for caption in app.caption)
    step(report, 1, 2, loss=2.5)
    app.run()
    assert not app.get("plotly_chart")
    assert any(caption.value.startswith("Step 1 loss: 2.500") for caption in app.caption)
    step(report, 2, 2)
    app.run()
    assert len(app.get("plotly_chart")) == 1


def test_time_left_is_measured_from_the_runs_own_steps_and_a_reload_finds_the_run(training, monkeypatch):
    times = iter([0.0, 30.0, 40.0, 50.0])  # the job starts; steps 1, 2 and 3 are reported
    monkeypatch.setattr(resources, "clock", lambda: next(times))
    app = start(40)
    report = training.started()
    for number in (1, 2, 3):
        step(report, number, 40)
    app.run()
    # (50 - 30) s over 2 steps: 10 s a step, and 37 steps left: 370 s.
    text = app.get("progress")[0].proto.text
    assert text == "Step 3 of 40, about 6 minutes left (10.0 s a step, measured on this run)"
    # The next run's estimate: 30 s to step 1, less its 10 s step, is 20 s of loading; 20 + 40 x 10 s.
    assert any(caption.value.startswith("About 7 minutes for 40 steps on this machine: 10.0 s a step and 20 s "
                                        "of loading") for caption in app.caption)

    reloaded = page("train")  # a new session: the job is found in the process's table
    assert reloaded.get("progress")[0].proto.text.startswith("Step 3 of 40, about 6 minutes left")
    assert any("still running" in caption.value for caption in reloaded.caption)
    assert reloaded.session_state["train_job"] == app.session_state["train_job"]


def test_a_finished_run_says_where_its_adapter_is(training):
    app = start(1)
    report = training.started()
    step(report, 1, 1)
    training.release.set()
    job = resources.JOBS[app.session_state["train_job"]]
    deadline = time.monotonic() + 10
    while not job["done"] and time.monotonic() < deadline:
        time.sleep(0.01)
    app.run()
    assert app.get("progress")[0].proto.text == "Step 1 of 1: finished"
    assert any("Adapter saved to" in message.value for message in app.success)
