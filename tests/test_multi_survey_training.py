"""One adapter across several surveys: the survey list, caps, no leaks, the manifest, resume."""

import json

import numpy as np
import pytest

from engine.errors import FocusgroupError
from engine.surveys import list_surveys, load_survey
from engine.surveys.split import held_out_questions, split_index
from engine.training.config import MULTI_SURVEY_CAPS, TrainConfig
from engine.training.examples import build_examples, by_question, subsample
from engine.training.mixture import cap_examples, load_training_data, resolve_surveys
from engine.training.trainer import train

SMALL = dict(base_model="tiny", batch_size=4, max_examples_per_survey=24, max_examples_per_question=6,
             eval_examples=14, eval_every=1)


def draw(config: TrainConfig):
    return load_training_data(resolve_surveys(config), np.random.default_rng(config.seed),
                              np.random.default_rng(config.seed + 1))


def test_all_means_every_listed_survey_with_data(data_dir):
    config = resolve_surveys(TrainConfig(out="x", surveys=("all",), data_dir=str(data_dir)))
    expected = [entry.id for entry in list_surveys(data_dir) if entry.data_present and not entry.error]
    assert list(config.surveys) == expected and len(expected) >= 7
    assert config.hyperparameters()["surveys"] == expected


@pytest.mark.parametrize("settings, message", [
    ({"surveys": ("gss2018", "no-such-survey")}, "--surveys names 'no-such-survey', which is not a survey"),
    ({"surveys": ("gss2018", "steak-survey"), "held_out_surveys": ("gss2018", "steak-survey")}, "Every survey"),
    ({"surveys": ("gss2018",), "held_out_surveys": ("steak-survey",)}, "not among --surveys"),
])
def test_bad_survey_lists_are_explained(data_dir, settings, message):
    with pytest.raises(FocusgroupError, match=message):
        resolve_surveys(TrainConfig(out="x", data_dir=str(data_dir), **settings))


@pytest.mark.parametrize("settings, message", [
    ({"survey": "gss2018", "surveys": ("steak-survey",)}, "--survey or --surveys, not both"),
    ({"surveys": ("all", "gss2018")}, "stands alone"),
    ({"surveys": ()}, "at least one"),
    ({"surveys": ("gss2018", "steak-survey"), "held_out_questions": ("natspac",)}, "--held-out-questions"),
    ({"held_out_surveys": ("gss2018",)}, "--held-out-surveys needs --surveys"),
    ({"surveys": ("gss2018",), "max_examples_per_survey": 0}, "--max-examples-per-survey must be positive"),
    ({"max_examples_per_question": 0}, "--max-examples-per-question must be positive"),
    ({"distribution_loss_weight": -1.0}, "--distribution-loss-weight"),
    ({"option_order": "sorted"}, "--option-order"),
])
def test_contradictory_settings_are_refused_in_one_line(settings, message):
    with pytest.raises(FocusgroupError, match=message) as error:
        TrainConfig(out="x", **settings)
    assert "\n" not in str(error.value)


def test_the_multi_survey_caps_are_filled_in_and_a_single_survey_is_uncapped():
    several = TrainConfig(out="x", surveys=("gss2018", "steak-survey"))
    assert (several.max_examples_per_survey, several.max_examples_per_question) == (
        MULTI_SURVEY_CAPS["max_examples_per_survey"], MULTI_SURVEY_CAPS["max_examples_per_question"])
    one = TrainConfig(out="x")
    assert one.survey == "gss2018" and one.max_examples_per_survey is None and one.max_examples_per_question is None


def test_caps_hold_per_question_then_per_survey(data_dir):
    examples = [e for name in ("gss2018", "steak-survey") for e in build_examples(
        load_survey(name, data_dir), "train", 0, ())]
    capped = cap_examples(examples, 50, 300, np.random.default_rng(0))
    groups = by_question(capped)
    assert max(len(group) for group in groups.values()) <= 50
    per_survey = {name: sum(e.survey_id == name for e in capped) for name in ("gss2018", "steak-survey")}
    assert per_survey == {"gss2018": 300, "steak-survey": 300}
    assert set(capped) <= set(examples) and len(set(capped)) == len(capped)
    assert capped == cap_examples(examples, 50, 300, np.random.default_rng(0))
    assert capped != cap_examples(examples, 50, 300, np.random.default_rng(1))
    assert cap_examples(examples, None, None, np.random.default_rng(0)) == examples


def test_no_held_out_question_or_survey_reaches_the_examples(data_dir):
    config = TrainConfig(out="x", surveys=("gss2018", "steak-survey", "thanksgiving-2015"),
                         held_out_surveys=("steak-survey",), data_dir=str(data_dir), eval_examples=600)
    data = draw(config)
    assert set(data.surveys) == {"gss2018", "thanksgiving-2015"}
    for examples, split in ((data.train_examples, "train"), (data.validation_examples, "validation")):
        assert {e.survey_id for e in examples} == {"gss2018", "thanksgiving-2015"}
        for survey_id, survey in data.surveys.items():
            mine = [e for e in examples if e.survey_id == survey_id]
            assert not {e.question_id for e in mine} & set(held_out_questions(survey))
            assert {e.respondent for e in mine} <= set(split_index(survey, split, 0))
    assert sum(e.survey_id == "gss2018" for e in data.validation_examples) == 300  # 600 shared by two


def test_several_surveys_validate_on_a_few_questions_each_so_evaluations_stay_cheap(data_dir):
    data = draw(TrainConfig(out="x", surveys=("gss2018", "food-world-cup"), eval_examples=64, data_dir=str(data_dir)))
    for survey_id in ("gss2018", "food-world-cup"):
        mine = [e for e in data.validation_examples if e.survey_id == survey_id]
        assert len(mine) == 32 and len({e.question_id for e in mine}) == 2  # 32 / VALIDATION_PER_QUESTION


def test_a_single_survey_draws_the_examples_it_always_drew(gss):
    config = TrainConfig(out="x", max_examples=500, eval_examples=64, seed=3)
    data = draw(config)
    rng = np.random.default_rng(3)
    held_out = ("natenrgy", "natenvir")
    assert data.train_examples == subsample(build_examples(gss, "train", 0, held_out), 500, rng)
    assert data.validation_examples == subsample(build_examples(gss, "validation", 0, held_out), 64,
                                                 np.random.default_rng(4))
    assert data.manifest_fields() == {"survey": "gss2018", "held_out_questions": list(held_out),
                                      "n_train_examples": 500, "n_validation_examples": 64, "option_counts": [3]}


def test_surveys_all_trains_a_loadable_adapter_whose_manifest_lists_the_surveys(tmp_path, data_dir, capsys):
    from engine.cli import main

    out = tmp_path / "adapter"
    assert main(["train", "--surveys", "all", "--max-steps", "2", "--base-model", "tiny", "--batch-size", "4",
                 "--max-examples-per-survey", "24", "--max-examples-per-question", "6", "--eval-examples", "14",
                 "--data-dir", str(data_dir), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    expected = [entry.id for entry in list_surveys(data_dir) if entry.data_present and not entry.error]
    assert [entry["id"] for entry in manifest["surveys"]] == expected and "survey" not in manifest
    assert manifest["held_out_surveys"] == [] and manifest["steps"] == 2
    gss_entry = next(entry for entry in manifest["surveys"] if entry["id"] == "gss2018")
    assert gss_entry["held_out_questions"] == ["natenrgy", "natenvir"]
    assert all(entry["n_train_examples"] == 24 and entry["n_validation_examples"] == 2
               for entry in manifest["surveys"])
    assert manifest["n_train_examples"] == 24 * len(expected)
    assert manifest["hyperparameters"]["surveys"] == expected
    shown = {len(question.options) for entry in list_surveys(data_dir) if entry.id in expected
             for question in load_survey(entry.id, data_dir).questions}
    assert set(manifest["option_counts"]) <= shown and {2, 3, 4, 5} <= set(manifest["option_counts"])
    capsys.readouterr()
    assert main(["simulate", "--survey", "gss2018", "--question", "natspac", "--model", "tiny", "--adapter", str(out),
                 "--personas", "5", "--no-baselines", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_personas"] == 5


def test_held_out_surveys_are_listed_and_add_no_examples(tmp_path, data_dir):
    manifest = train(TrainConfig(out=str(tmp_path / "a"), surveys=("gss2018", "steak-survey"),
                                 held_out_surveys=("steak-survey",), max_steps=1, data_dir=str(data_dir), **SMALL))
    assert [entry["id"] for entry in manifest["surveys"]] == ["gss2018"]
    assert manifest["held_out_surveys"] == ["steak-survey"]


def test_the_distribution_term_trains_and_is_logged(tmp_path, data_dir):
    manifest = train(TrainConfig(out=str(tmp_path / "a"), surveys=("gss2018", "steak-survey"), max_steps=2,
                                 distribution_loss_weight=0.5, slice_personas=4, data_dir=str(data_dir), **SMALL))
    assert all(record["distribution"] > 0 for record in manifest["loss_curve"])


def test_resume_continues_a_multi_survey_run_and_refuses_another_list(tmp_path, data_dir, monkeypatch):
    import engine.training.trainer as trainer

    out = tmp_path / "adapter"
    config = TrainConfig(out=str(out), surveys=("gss2018", "steak-survey"), max_steps=3, data_dir=str(data_dir),
                         **SMALL)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "write_adapter", crash)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.undo()
    state = json.loads((out / ".checkpoint" / "state.json").read_text())
    assert state["run"]["hyperparameters"]["surveys"] == ["gss2018", "steak-survey"]
    other = TrainConfig(out=str(out), surveys=("gss2018", "thanksgiving-2015"), max_steps=3, data_dir=str(data_dir),
                        **SMALL)
    with pytest.raises(FocusgroupError, match="other settings"):
        train(other, resume=True)
    manifest = train(config, resume=True)
    assert manifest["steps"] == 3 and [r["step"] for r in manifest["loss_curve"]] == [1, 2, 3]
    assert [entry["id"] for entry in manifest["surveys"]] == ["gss2018", "steak-survey"]


def test_a_run_saved_before_an_option_existed_still_matches_at_its_old_behaviour():
    from engine.training.run_folder import same_settings

    current = TrainConfig(out="x").hyperparameters()
    older = {key: value for key, value in current.items() if key != "max_context"}
    assert same_settings(older, current)
    assert not same_settings(older, TrainConfig(out="x", max_context=4).hyperparameters())
    assert not same_settings({**older, "learning_rate": 1.0}, current) and not same_settings(None, current)
