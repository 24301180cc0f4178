"""Every dashboard page under Streamlit's AppTest, with real interactions (tiny model)."""

import base64
import importlib.metadata
import json
import tomllib
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


def manifest_of(app: AppTest) -> dict:
    """The manifest the page's exports carry, as shown in its Manifest expander."""
    return json.loads(app.json[0].value)


def strings_in(value) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.items() for s in strings_in(list(item))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return [value] if isinstance(value, str) else []


def test_focus_group_slice_question_temperature_and_exports(monkeypatch):
    app = page("focus_group")
    assert "Choose a slice" in app.info[0].value
    app.multiselect(key="slice_gss2018_partyid").set_value(["Strong Democrat"])
    app.button(key="simulate").click().run()
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

    labels = [button.label for button in app.get("download_button")]
    assert {"Excel", "PowerPoint", "CSV", "HTML", "Report bundle (ZIP)"} <= set(labels)
    manifest = manifest_of(app)
    assert manifest["slice"] == {"partyid": ["Strong Democrat"]} and manifest["temperature"] == 0.0
    assert manifest["n_personas"] == 379 and manifest["survey"] == "gss2018"
    assert manifest["app"]["version"] == importlib.metadata.version("focusgroup")
    assert manifest["scale"] == {"type": "ordinal", "positive_end": "first", "top_box": "Too little",
                                 "off_scale": []}
    assert set(manifest["individual_metrics"]) >= {"accuracy", "log_loss", "rmse"}
    assert 0 <= manifest["individual_metrics"]["accuracy"] <= 1
    assert manifest["model"] == "tiny (no adapter)" and manifest["adapter"] is None
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert "tiny (no adapter)" in json.dumps(figure["layout"]["title"])  # the chart names model and adapter
    home, root = str(Path.home()), str(DASHBOARD.parent)
    assert not [s for s in strings_in(manifest) if s.startswith("/") or home in s or root in s]


def test_the_slice_count_follows_each_pick_before_simulate():
    app = page("focus_group")
    assert "everyone: **2,348**" in app.markdown[0].value
    app.multiselect(key="slice_gss2018_partyid").set_value(["Strong Democrat"]).run()
    assert "**379** real respondents" in app.markdown[0].value
    app.multiselect(key="slice_gss2018_sex").set_value(["Female"]).run()
    assert "Sex: Female; Party: Strong Democrat: **223** real respondents" in app.markdown[0].value
    assert any("Choose a slice" in info.value for info in app.info)  # nothing was simulated
    from dashboard import resources

    assert not resources.SIMULATIONS


def test_inputs_that_do_not_apply_are_hidden():
    app = page("focus_group")
    assert "new_text" not in [widget.key for widget in app.text_input]
    assert "stimulus_b" not in [widget.key for widget in app.text_area]
    assert "context_k" not in [widget.key for widget in app.slider]
    app.radio(key="kind_gss2018").set_value("New product question").run()
    assert "new_text" in [widget.key for widget in app.text_input]
    assert "question_gss2018" not in [widget.key for widget in app.selectbox]
    app.selectbox(key="new_type").set_value("nominal").run()
    assert "new_positive" not in [widget.key for widget in app.selectbox]  # no favourable end without a scale
    app.checkbox(key="compare").check().run()
    assert "stimulus_b" in [widget.key for widget in app.text_area]
    app.radio(key="kind_gss2018").set_value("Survey question").run()
    assert "new_text" not in [widget.key for widget in app.text_input]


def test_everyone_shows_the_marginal_baseline_as_its_exact_reference():
    app = page("focus_group")
    app.button(key="simulate").click().run()
    assert not app.exception, app.exception
    metrics = app.dataframe[0].value
    assert "marginal" not in metrics.columns and "uniform" in metrics.columns
    assert any("exactly by construction (JS 0.000)" in caption.value for caption in app.caption)
    assert any("fitted out of fold (5-fold) over everyone" in caption.value for caption in app.caption)


def test_a_slice_says_its_baselines_were_fitted_outside_it():
    app = page("focus_group")
    app.multiselect(key="slice_gss2018_partyid").set_value(["Strong Democrat"]).run()
    app.button(key="simulate").click().run()
    assert not app.exception, app.exception
    assert "marginal" in app.dataframe[0].value.columns
    assert any("marginal, logistic, gradient boosting, svr fitted outside the slice" in caption.value
               for caption in app.caption)


def test_an_empty_slice_is_explained_not_an_error():
    app = page("focus_group")
    app.multiselect(key="slice_gss2018_race").set_value(["Other"])
    app.multiselect(key="slice_gss2018_partyid").set_value(["Other party"])
    app.multiselect(key="slice_gss2018_age").set_value(["75+"]).run()
    assert not app.exception
    assert any("No respondent" in info.value for info in app.info)
    assert app.button(key="simulate").disabled


def simulate_ab(app: AppTest, stimuli: tuple[str, str]) -> AppTest:
    """Tick A/B, write both stimuli and press Simulate, as a researcher would."""
    app.text_area(key="stimulus_a").set_value(stimuli[0])
    app.checkbox(key="compare").check().run()
    app.text_area(key="stimulus_b").set_value(stimuli[1])
    app.button(key="simulate").click().run()
    assert not app.exception, app.exception
    return app


def table_with(app: AppTest, column: str):
    """The table that has this column (a display table's key reaches the browser as a CSS
    class, not AppTest)."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def test_a_new_product_question_with_ab_stimuli_covers_b_in_the_chart_the_tables_and_the_manifest():
    from dashboard import resources

    app = page("focus_group")
    app.multiselect(key="slice_gss2018_sex").set_value(["Female"])
    app.radio(key="kind_gss2018").set_value("New product question").run()
    app.text_input(key="new_text").set_value("Would you try a solar roof subscription?")
    stimuli = ("No installation cost: panels are fitted free and you pay a monthly fee below your bill.",
               "Saves 30% on bills.")
    simulate_ab(app, stimuli)
    assert any("new question" in info.value for info in app.info)
    assert len(app.get("plotly_chart")) == 2  # the distribution and the A/B chart
    assert any("predicted shift" in header.value for header in app.subheader)

    figure = json.loads(app.get("plotly_chart")[1].proto.spec)
    legend = [trace["name"] for trace in figure["data"] if trace.get("name")]
    assert legend[:2] == ["A: No installation cost: panels are fitted…", "B: Saves 30% on bills."]  # 40 characters
    title = figure["layout"]["title"]["text"]
    assert "monthly fee below your bill." in title and "Saves 30% on bills." in title  # the full texts

    decisions = table_with(app, "simulated B")
    assert list(decisions.columns) == ["measure", "simulated A", "simulated B"]  # no real answers to a new question
    simulated = {each.stimulus: each.at(1.0).simulated for each in resources.SIMULATIONS.values()}
    assert decisions["simulated B"][0] == pytest.approx(simulated[stimuli[1]][0])  # top box under B

    ab = manifest_of(app)["ab"]
    assert ab["stimuli"] == {"A": stimuli[0], "B": stimuli[1]}
    for tag, stimulus in zip("AB", stimuli):
        assert list(ab["simulated"][tag].values()) == pytest.approx(simulated[stimulus], abs=1e-6)
    shown = table_with(app, "verdict")
    assert [row["shift"] for row in ab["shift"]] == pytest.approx(list(shown["shift"]), abs=1e-6)
    assert [row["verdict"] for row in ab["shift"]] == list(shown["verdict"])
    assert ab["interval"] == {"level": 0.95, "method": "paired percentile bootstrap over personas",
                              "resamples": 2000, "seed": 0}


def test_the_ab_interval_table_is_the_engines_paired_bootstrap_at_each_temperature(monkeypatch):
    import pandas as pd

    import engine.ab_test as ab_test
    from dashboard import resources

    app = page("focus_group")
    app.multiselect(key="slice_gss2018_partyid").set_value(["Strong Democrat"])
    stimuli = ("Energy bills doubled last winter.", "Solar power is now the cheapest electricity there is.")
    simulate_ab(app, stimuli)
    simulations = {each.stimulus: each for each in resources.SIMULATIONS.values()}
    pair = [simulations[stimulus] for stimulus in stimuli]
    engine_shift = ab_test.stimulus_shift

    def check(temperature: float) -> None:
        shown = table_with(app, "verdict")
        expected = engine_shift(*pair, temperature=temperature, seed=pair[0].seed)
        names = {"option": "share", "top_box": "top box", "mean": "mean score"}
        assert list(shown["measure"]) == [names[measure] for measure in expected["measure"]]
        pd.testing.assert_frame_equal(shown.drop(columns="measure"), expected.drop(columns="measure"))
        for row in shown.itertuples():
            assert row.low <= row.shift <= row.high
            assert row.verdict == ("within noise" if row.low <= 0 <= row.high else
                                   "B higher" if row.low > 0 else "B lower")
        top_box = expected[expected["measure"] == "top_box"].iloc[0]
        sentence = next(m.value for m in app.markdown if m.value.startswith("**Top box (Too little): B - A = "))
        assert f"{100 * top_box['shift']:+.2f} points" in sentence and f"): {top_box['verdict']}.**" in sentence

    check(1.0)
    assert list(table_with(app, "verdict")["measure"]).count("top box") == 1
    app.slider(key="temperature").set_value(0.5).run()
    assert not app.exception, app.exception
    check(0.5)

    def forbidden(*args, **kwargs):
        raise AssertionError("the bootstrap ran again for a temperature it had already done")

    monkeypatch.setattr(ab_test, "stimulus_shift", forbidden)
    app.slider(key="temperature").set_value(1.0).run()
    assert not app.exception, app.exception
    check(1.0)


def test_a_link_carries_the_whole_view_to_a_fresh_session():
    app = page("focus_group")
    app.selectbox(key="question_gss2018").set_value("natenrgy")
    both = ["Strong Democrat", "Independent, close to Democrat"]  # a value with a comma of its own
    app.multiselect(key="slice_gss2018_partyid").set_value(both)
    app.multiselect(key="slice_gss2018_sex").set_value(["Female"])
    app.button(key="simulate").click().run()
    app.slider(key="temperature").set_value(0.55).run()
    assert not app.exception, app.exception
    link = dict(app.query_params)
    assert link["question"] == "natenrgy" and link["temperature"] == "0.55" and link["survey"] == "gss2018"
    assert link["partyid"] == both and link["model"] == "none"

    shared = AppTest.from_file(str(DASHBOARD / "pages" / "focus_group.py"), default_timeout=TIMEOUT)
    shared.query_params.update(link)
    shared.run()
    assert not shared.exception, shared.exception
    assert not shared.warning  # every value of the link exists
    assert shared.selectbox(key="survey_id").value == "gss2018"
    assert shared.selectbox(key="question_gss2018").value == "natenrgy"
    assert shared.multiselect(key="slice_gss2018_partyid").value == both
    assert shared.multiselect(key="slice_gss2018_sex").value == ["Female"]
    assert shared.session_state["temperature"] == 0.55
    assert shared.markdown[0].value == app.markdown[0].value  # the same slice and its count


def test_a_link_naming_what_does_not_exist_is_warned_about_not_replaced_silently():
    app = AppTest.from_file(str(DASHBOARD / "pages" / "focus_group.py"), default_timeout=TIMEOUT)
    app.query_params.update({"question": "natenergy", "partyid": "Strong Democrats,strong democrat",
                             "colour": "blue", "temperature": "7", "model": "gss2019-smollm2"})
    app.run()
    assert not app.exception, app.exception
    warnings = " ".join(warning.value for warning in app.warning)
    for unknown in ("natenergy", "Strong Democrats", "colour", "temperature **7**", "gss2019-smollm2"):
        assert unknown in warnings, unknown
    assert app.multiselect(key="slice_gss2018_partyid").value == ["Strong Democrat"]  # the known value kept
    assert app.query_params["question"] == "natspac"  # the address now says what is shown
    app.multiselect(key="slice_gss2018_sex").set_value(["Male"]).run()
    assert "natenergy" in " ".join(warning.value for warning in app.warning)  # still there until Simulate


def test_comma_separated_link_values_keep_values_that_contain_commas():
    from dashboard.link import split_values

    values = ("Strong Democrat", "Independent, close to Democrat", "Independent")
    assert split_values("independent, close to democrat,Strong Democrat,Independent", values) == (
        ["Independent, close to Democrat", "Strong Democrat", "Independent"], [])
    assert split_values("Independent,Strong Democrats", values) == (["Independent"], ["Strong Democrats"])


def test_a_trained_adapter_is_listed_but_never_preselected(monkeypatch, tmp_path):
    from dashboard import resources, state
    from engine.models import SHIPPED_ADAPTERS

    shipped = SHIPPED_ADAPTERS / "gss2018-smollm2"
    choices = {"gss2018-lora-new (trained on gss2018)": str(tmp_path / "gss2018-lora-new"),
               "gss2018-smollm2 (trained on gss2018, default)": str(shipped), resources.BARE_MODEL: None}
    monkeypatch.setattr("dashboard.state.shipped_adapter", lambda survey_id: shipped)
    assert state.default_model(choices, "gss2018") == "gss2018-smollm2 (trained on gss2018, default)"
    monkeypatch.setattr("dashboard.state.shipped_adapter", lambda survey_id: None)
    assert state.default_model(choices, "gss2018") == resources.BARE_MODEL

    monkeypatch.setattr(resources, "adapter_choices", lambda survey_id: choices)
    monkeypatch.setattr("dashboard.state.shipped_adapter", lambda survey_id: shipped)
    app = page("focus_group")
    picker = app.selectbox(key="model_choice")
    assert picker.value == "gss2018-smollm2 (trained on gss2018, default)"
    assert "gss2018-lora-new (trained on gss2018)" in picker.options


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


def test_the_dashboard_listens_only_on_this_machine_unless_told_otherwise():
    config = tomllib.loads((DASHBOARD.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_focus_group_twins_carry_context_answers_into_the_chart_and_the_export():
    app = page("focus_group")
    app.multiselect(key="slice_gss2018_sex").set_value(["Female"])
    app.multiselect(key="context_gss2018").set_value(["auto"])
    app.run()  # the number of auto context answers shows once auto is picked
    app.slider(key="context_k").set_value(3)
    app.button(key="simulate").click().run()
    assert not app.exception, app.exception
    simulation_request = app.session_state["simulation_request"]
    context = simulation_request["context"]
    assert len(context) == 3 and "natspac" not in context  # the first question is asked by default
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert f"context (3): {', '.join(context)}" in json.dumps(figure["layout"]["title"])
    app.multiselect(key="context_gss2018").set_value([app.selectbox(key="question_gss2018").value])
    app.button(key="simulate").click().run()
    assert any("cannot be its own context" in error.value for error in app.error)


def test_focus_group_combines_a_drawn_pilot_with_the_model():
    app = page("focus_group")
    app.selectbox(key="question_gss2018").set_value("natenvir")
    app.multiselect(key="slice_gss2018_sex").set_value(["Female"])
    app.button(key="simulate").click().run()
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
    assert any("(distribution, pilot)" in caption.value for caption in app.caption)  # the bundle's charts
    assert manifest_of(app)["pilot"]["source"] == "300 respondents drawn with seed 0"


def test_questions_are_labelled_by_their_wording_with_the_id_in_a_tooltip(gss):
    from types import SimpleNamespace

    from dashboard.state import question_labeler

    label = question_labeler(gss)
    assert label("natspac") == ("Are we spending too much, too little, or about the right amount on the space "
                                "exploration program?")  # the shared preamble cut at a sentence, no id
    twins = [SimpleNamespace(id=id, text=text) for id, text in
             (("q1", "Do you like tea?"), ("q2", "Do you like tea?"), ("q3", "Do you like coffee?"))]
    alike = SimpleNamespace(questions=twins, question=lambda id: next(q for q in twins if q.id == id))
    assert [question_labeler(alike)(q.id) for q in twins] == ["Do you like tea? (q1)", "Do you like tea? (q2)",
                                                              "Do you like coffee?"]
    app = page("focus_group")
    assert "`natspac`" in app.selectbox(key="question_gss2018").help
    app.selectbox(key="question_gss2018").set_value("natenvir").run()
    assert "`natenvir`" in app.selectbox(key="question_gss2018").help
