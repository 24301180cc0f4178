"""Warm starts (`focusgroup train --warm-start ADAPTER`): a run begins from a trained adapter's
weights, and refuses one that would make its held-out questions a lie or does not fit."""

from __future__ import annotations

import json
import re

import pytest
import torch

from engine.errors import FocusgroupError
from engine.training.adapter_init import check_trained_outside
from engine.training.config import TrainConfig
from engine.training.trainer import load_base, train


@pytest.fixture(scope="module")
def starting_adapter(tmp_path_factory):
    """A tiny gss2018 adapter (natenrgy and natenvir held out), trained for two steps."""
    out = tmp_path_factory.mktemp("warm") / "start"
    train(TrainConfig(out=str(out), base_model="tiny", max_steps=2, eval_examples=8, batch_size=4,
                      max_examples=16, learning_rate=1e-2))
    return out


def lora_weights(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}


def test_a_warm_start_begins_from_the_adapter_weights_and_trains_on(starting_adapter, tmp_path):
    from safetensors.torch import load_file

    saved = load_file(starting_adapter / "adapter_model.safetensors")
    warm = lora_weights(load_base(TrainConfig(out="unused", base_model="tiny", warm_start=str(starting_adapter)),
                                  {"gss2018": ("natenrgy", "natenvir")}).model)
    fresh = lora_weights(load_base(TrainConfig(out="unused", base_model="tiny")).model)
    assert len(warm) == len(saved) > 0
    for name, value in warm.items():
        stored = saved[name.replace(".default.", ".")]
        assert torch.equal(value.to(stored.dtype), stored)
    assert any("lora_B" in name and fresh[name].abs().sum() == 0 < warm[name].abs().sum() for name in warm)

    out = tmp_path / "next"
    manifest = train(TrainConfig(out=str(out), base_model="tiny", max_steps=1, eval_examples=8, batch_size=4,
                                 max_examples=8, warm_start=str(starting_adapter), max_context=2))
    assert manifest["hyperparameters"]["warm_start"] == str(starting_adapter)
    assert json.loads((out / "manifest.json").read_text())["hyperparameters"]["max_context"] == 2


def test_a_warm_start_of_another_rank_is_refused(starting_adapter):
    with pytest.raises(FocusgroupError, match=re.escape("pass --rank 16 --alpha 32")):
        load_base(TrainConfig(out="unused", base_model="tiny", rank=8, warm_start=str(starting_adapter)))


def test_a_warm_start_that_trained_on_a_held_out_question_is_refused(starting_adapter, tmp_path):
    with pytest.raises(FocusgroupError, match="trained on gss2018's natsci, held out in this run"):
        load_base(TrainConfig(out="unused", base_model="tiny", warm_start=str(starting_adapter)),
                  {"gss2018": ("natenrgy", "natsci")})
    with pytest.raises(FocusgroupError, match="not an adapter folder"):
        TrainConfig(out="unused", base_model="tiny", warm_start=str(tmp_path))


def test_what_a_starting_adapter_trained_on_is_checked_against_the_run():
    many = {"surveys": [{"id": "gss2018", "held_out_questions": ["natenrgy", "natenvir"]},
                        {"id": "non-voters", "held_out_questions": ["Q8_3"]}], "held_out_surveys": ["steak-survey"]}
    check_trained_outside("a", many, {"gss2018": ("natenvir",), "steak-survey": ("steak",)}, ())
    check_trained_outside("a", many, {"non-voters": ("Q8_3",)}, ("steak-survey",))
    with pytest.raises(FocusgroupError, match="trained on non-voters, which this run holds out whole"):
        check_trained_outside("a", many, {}, ("non-voters",))
    with pytest.raises(FocusgroupError, match="non-voters's Q3_4"):
        check_trained_outside("a", many, {"non-voters": ("Q3_4", "Q8_3")}, ())
    with pytest.raises(FocusgroupError, match="no manifest saying which surveys"):
        check_trained_outside("a", {}, {"gss2018": ("natenrgy",)}, ())
