"""Model loading: automatic device and dtype, clear errors, the converted default cached once."""

import json

import pytest

from engine.errors import FocusgroupError
from engine.models import (
    DEFAULT_MODEL_NAME,
    ModelConfig,
    adapter_manifest,
    check_adapter_base,
    choose_device_and_dtype,
    default_model_folder,
    read_manifest,
    quantization_config,
    general_adapter,
    shipped_adapter,
    unseen_questions,
)


def test_default_model_is_converted_once_into_a_safetensors_folder():
    folder = default_model_folder()
    assert (folder / "config.json").is_file() and list(folder.glob("*.safetensors"))
    assert default_model_folder() == folder


def test_the_conversion_notice_goes_to_stderr_so_json_output_stays_clean(tmp_path, monkeypatch, capsys):
    import transformers

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setenv("FOCUSGROUP_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", stop)  # end right after the notice
    with pytest.raises(Stop):
        default_model_folder()
    captured = capsys.readouterr()
    assert captured.out == "" and "Converting" in captured.err


def test_a_cache_that_is_a_file_is_refused_before_converting(tmp_path, monkeypatch, capsys):
    (tmp_path / "cache").write_text("")
    monkeypatch.setenv("FOCUSGROUP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FocusgroupError, match="FOCUSGROUP_CACHE"):
        default_model_folder()
    assert "Converting" not in capsys.readouterr().err


def test_cpu_dtype_follows_the_processors_bf16_support(monkeypatch):
    import engine.models as models

    monkeypatch.setattr(models, "cpu_has_fast_bf16", lambda: True)
    assert choose_device_and_dtype(ModelConfig(device="cpu")) == ("cpu", "bfloat16")
    monkeypatch.setattr(models, "cpu_has_fast_bf16", lambda: False)
    assert choose_device_and_dtype(ModelConfig(device="cpu")) == ("cpu", "float32")
    assert choose_device_and_dtype(ModelConfig(device="cpu", dtype="bfloat16")) == ("cpu", "bfloat16")


@pytest.mark.parametrize("kwargs,message", [
    ({"device": "tpu"}, "Unknown device"),
    ({"dtype": "int3"}, "Unknown dtype"),
    ({"base": "/no/such/folder"}, "does not exist"),
    ({"adapter": "/no/such/adapter"}, "not a peft adapter"),
    ({"base": "tiny", "load_in_4bit": True}, "needs real weights"),
])
def test_bad_model_options_are_explained(kwargs, message):
    with pytest.raises(FocusgroupError, match=message):
        ModelConfig(**kwargs)


def test_four_bit_settings_are_nf4_with_double_quantisation():
    import torch

    assert quantization_config(ModelConfig(), torch.bfloat16) is None
    settings = quantization_config(ModelConfig(load_in_4bit=True), torch.bfloat16)
    assert settings.load_in_4bit and settings.bnb_4bit_quant_type == "nf4"
    assert settings.bnb_4bit_use_double_quant and settings.bnb_4bit_compute_dtype == torch.bfloat16


def test_an_adapter_for_another_base_model_is_refused(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "manifest.json").write_text(json.dumps({"base_model": {"name": "Llama-3-8B"}}))
    with pytest.raises(FocusgroupError, match="trained on Llama-3-8B"):
        check_adapter_base(tmp_path, default_model_folder(), ModelConfig())
    (tmp_path / "manifest.json").write_text(json.dumps({"base_model": {"name": DEFAULT_MODEL_NAME}}))
    check_adapter_base(tmp_path, default_model_folder(), ModelConfig())


def test_unseen_questions_follow_the_adapters_manifest(tmp_path, gss):
    every = {q.id for q in gss.questions}
    assert unseen_questions(shipped_adapter("gss2018"), gss) == {"natenrgy", "natenvir"}
    assert unseen_questions(None, gss) == every  # the bare model trained on nothing
    (tmp_path / "manifest.json").write_text(json.dumps({"survey": "non-voters", "held_out_questions": ["Q8_3"]}))
    assert unseen_questions(tmp_path, gss) == every  # trained on another survey
    (tmp_path / "manifest.json").write_text(json.dumps({"survey": "gss2018", "held_out_questions": ["natsci"]}))
    assert unseen_questions(tmp_path, gss) == {"natsci"}
    (tmp_path / "manifest.json").write_text("{not json")
    assert unseen_questions(tmp_path, gss) == every  # unreadable: assume nothing was seen



def test_a_multi_survey_adapter_knows_what_it_saw_of_each_survey(tmp_path, gss):
    every = {q.id for q in gss.questions}
    manifest = {"surveys": [{"id": "gss2018", "held_out_questions": ["natenrgy", "natenvir"]},
                            {"id": "non-voters", "held_out_questions": ["Q8_3"]}],
                "held_out_surveys": ["steak-survey"]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert unseen_questions(tmp_path, gss) == {"natenrgy", "natenvir"}
    manifest["surveys"] = manifest["surveys"][1:]  # gss2018 held out, or never in the mix
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert unseen_questions(tmp_path, gss) == every

def test_tiny_model_has_the_default_vocabulary(tiny):
    assert tiny.model.config.num_hidden_layers == 2
    assert tiny.model.config.vocab_size == len(tiny.tokenizer)


@pytest.mark.parametrize("text,message", [
    ("{not json", "cannot be read"),
    ("[1, 2]", "not a JSON object"),
    ('{"base_model": "SmolLM2"}', "base_model of the wrong type"),
    ('{"survey": "gss2018", "held_out_questions": 5}', "held_out_questions of the wrong type"),
])
def test_a_corrupt_manifest_is_refused_at_load_and_skipped_when_listing(tmp_path, monkeypatch, text, message):
    import engine.models as models

    bad, good = tmp_path / "a_bad", tmp_path / "b_good"  # the bad one is read first
    for folder in (good, bad):
        folder.mkdir()
        (folder / "adapter_config.json").write_text("{}")
    (good / "manifest.json").write_text(json.dumps({"survey": "gss2018", "base_model": {"name": DEFAULT_MODEL_NAME}}))
    (bad / "manifest.json").write_text(text)
    with pytest.raises(FocusgroupError, match=message):
        check_adapter_base(bad, default_model_folder(), ModelConfig())
    monkeypatch.setattr(models, "SHIPPED_ADAPTERS", tmp_path)
    assert shipped_adapter("gss2018") == good  # one bad manifest hides no other adapter
    assert read_manifest(good)["survey"] == "gss2018" and read_manifest(tmp_path) is None
    assert adapter_manifest(bad) == {}  # read after a load, which refused it: nothing is assumed


def test_a_surveys_own_adapter_comes_first_and_the_general_one_serves_every_other(tmp_path, monkeypatch):
    import engine.models as models

    def adapter(name, manifest):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "adapter_config.json").write_text("{}")
        (folder / "manifest.json").write_text(json.dumps({"base_model": {"name": DEFAULT_MODEL_NAME}, **manifest}))
        return folder

    monkeypatch.setattr(models, "SHIPPED_ADAPTERS", tmp_path)
    specific = adapter("a-gss2018", {"survey": "gss2018"})
    assert shipped_adapter("gss2018") == specific and shipped_adapter("steak-survey") is None
    assert general_adapter() is None
    adapter("b-other-model", {"surveys": [{"id": "gss2018"}, {"id": "non-voters"}, {"id": "star-wars-survey"}],
                              "base_model": {"name": "Llama-3-8B"}})
    pair = adapter("c-pair", {"surveys": [{"id": "gss2018"}, {"id": "non-voters"}]})
    assert general_adapter() == pair
    general = adapter("d-general", {"surveys": [{"id": s} for s in ("gss2018", "non-voters", "food-world-cup")],
                                    "held_out_surveys": ["steak-survey"]})
    assert general_adapter() == general  # the widest
    assert shipped_adapter("gss2018") == specific
    for survey_id in ("non-voters", "steak-survey", "an-upload", None):
        assert shipped_adapter(survey_id) == general  # seen, held-out and new surveys alike
