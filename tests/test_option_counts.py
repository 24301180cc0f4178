"""Which scale lengths an adapter trained on, and the warning for one it never saw."""

import json
import shutil
from pathlib import Path

import pytest

from engine.ask_command import new_question
from engine.option_counts import (describe_counts, manifest_option_counts, option_count_warning,
                                  trained_option_counts)

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "adapters"
EV = "How likely would you be to buy an electric car in the next 3 years?"


def labels(count: int) -> list[str]:
    return [f"Option {index}" for index in range(1, count + 1)]


def adapter_with(tmp_path: Path, manifest: dict) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_the_gss2018_adapter_saw_only_three_options_and_warns_on_four():
    adapter = SHIPPED / "gss2018-smollm2"
    assert trained_option_counts(adapter) == {3}
    assert option_count_warning(adapter, new_question(EV, labels(3))) is None
    warning = option_count_warning(adapter, new_question(EV, labels(4)))
    assert warning.startswith("The adapter gss2018-smollm2 never trained on a question with 4 options (it saw 3)")


def test_the_general_adapter_saw_the_common_scale_lengths():
    adapter = SHIPPED / "general-smollm2"
    counts = trained_option_counts(adapter)
    assert {2, 3, 4, 5, 7} <= counts
    for count in (2, 3, 4, 5, 7):
        assert option_count_warning(adapter, new_question(EV, labels(count))) is None
    unseen = min(set(range(2, 27)) - counts)
    assert f"with {unseen} options" in option_count_warning(adapter, new_question(EV, labels(unseen)))


@pytest.mark.parametrize("name", ["gss2018-smollm2", "general-smollm2"])
def test_the_shipped_manifests_list_the_counts_of_the_questions_they_trained_on(name):
    """The shipped manifests carry `option_counts` (so `simulate` loads no other survey to
    warn), equal to what their surveys give without the held-out questions."""
    from engine.models import read_manifest, trained_surveys
    from engine.option_counts import surveys_option_counts
    from engine.surveys import load_survey

    manifest = read_manifest(SHIPPED / name)
    assert manifest_option_counts(manifest) == surveys_option_counts(trained_surveys(manifest), load_survey)


def test_the_manifest_counts_win_over_the_surveys(tmp_path):
    adapter = adapter_with(tmp_path, {"survey": "gss2018", "option_counts": [4, 5]})
    assert trained_option_counts(adapter, load=pytest.fail) == {4, 5}


def test_counts_from_the_surveys_leave_the_held_out_questions_out(tmp_path):
    class Question:
        def __init__(self, id, count):
            self.id, self.options = id, labels(count)

    class Survey:
        questions = [Question("a", 3), Question("b", 3), Question("held", 7)]

    adapter = adapter_with(tmp_path, {"survey": "made-up", "held_out_questions": ["held"]})
    assert trained_option_counts(adapter, load={"made-up": Survey}.get) == {3}
    assert trained_option_counts(adapter, load={}.get) is None  # the survey cannot be found


@pytest.mark.parametrize("counts", ["3", [], [3, "4"], [True, 3], [1, 3], {"3": 1}])
def test_hostile_option_counts_are_ignored(counts):
    assert manifest_option_counts({"option_counts": counts}) is None


def test_an_unknown_adapter_warns_of_nothing(tmp_path):
    assert option_count_warning(None, new_question(EV, labels(4))) is None
    assert option_count_warning(tmp_path, new_question(EV, labels(4))) is None  # no manifest
    bare = tmp_path / "bare"
    shutil.copytree(SHIPPED / "gss2018-smollm2", bare, ignore=shutil.ignore_patterns("*.safetensors"))
    (bare / "manifest.json").write_text("{not json")
    assert option_count_warning(bare, new_question(EV, labels(4))) is None


def test_counts_are_listed_in_words():
    assert describe_counts({3}) == "3"
    assert describe_counts({5, 2, 3}) == "2, 3 and 5"


def test_the_focus_group_page_warns_when_the_adapter_never_saw_this_many_options(monkeypatch, tmp_path, data_dir):
    """A tiny adapter trained on gss2018 (three options only), picked for a new 4-option
    question: the page names the scale length it never saw; with three options it does not."""
    from streamlit.testing.v1 import AppTest

    from dashboard import resources
    from engine.training.config import TrainConfig
    from engine.training.trainer import train

    adapter = tmp_path / "gss2018-tiny"
    train(TrainConfig(out=str(adapter), base_model="tiny", max_steps=1, batch_size=4, max_examples=8,
                      eval_examples=4, data_dir=str(data_dir)))
    monkeypatch.setenv("FOCUSGROUP_MODEL", "tiny")
    monkeypatch.setattr(resources, "adapter_choices", lambda survey_id: {"gss2018-tiny": str(adapter),
                                                                         resources.BARE_MODEL: None})
    monkeypatch.setattr("dashboard.state.shipped_adapter", lambda survey_id: adapter)
    resources.SIMULATIONS.clear()
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "pages" / "focus_group.py"),
                            default_timeout=120)
    app.run()
    app.radio(key="kind_gss2018").set_value("New product question").run()
    app.text_input(key="new_text").set_value(EV)
    app.button(key="simulate").click().run()
    assert not app.exception, app.exception
    assert any("never trained on a question with 4 options (it saw 3)" in each.value for each in app.warning)
    app.text_area(key="new_options").set_value("Likely\nNot sure\nUnlikely")
    app.button(key="simulate").click().run()
    assert not app.exception, app.exception
    assert not any("never trained on a question with" in each.value for each in app.warning)
