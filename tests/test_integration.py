"""End to end with the real embedded SmolLM2-135M-Instruct (a few seconds each on 2 cores)."""

import json

import numpy as np
import pytest

from engine.cli import main
from engine.evaluate import EvaluationConfig, coverage_summary, evaluate, summarize
from engine.models import ModelConfig, load_model
from engine.scoring import full_prompt_logits, option_logits
from engine.simulate import personas_for

pytestmark = pytest.mark.slow


def test_simulate_strong_democrats_with_the_real_model(capsys):
    code = main(["simulate", "--survey", "gss2018", "--question", "natenrgy",
                 "--slice", "partyid=strong democrat", "--format", "json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["model"] == "SmolLM2-135M-Instruct + gss2018-smollm2"  # the shipped adapter, by default
    assert result["n_real"] == 368
    assert sum(result["simulated"].values()) == pytest.approx(1.0, abs=1e-5)
    assert result["real"]["Too little"] == pytest.approx(253 / 368, abs=1e-4)
    for key in ("kl", "js", "wasserstein", "tv"):
        assert result["metrics"][key] > 0 and result["noise_floor"][key] > 0


def test_real_model_shared_prefix_matches_plain_forward_passes(gss):
    loaded = load_model(ModelConfig(dtype="float32"))
    question = gss.question("natheal")
    personas = personas_for(gss, gss.demographics.index[100:108])
    shared = option_logits(loaded, question, gss.fields, personas, use_cache=False)
    full = np.stack([full_prompt_logits(loaded, question, gss.fields, p) for p in personas])
    np.testing.assert_allclose(shared, full, atol=2e-3)
    # the personas differ, and so do the model's answers for them
    assert np.ptp(shared[:, 0]) > 0


def test_evaluate_reports_questions_slices_baselines_and_noise(default_model, gss):
    config = EvaluationConfig(questions=("natenrgy", "natspac"), min_slice=40)
    result = evaluate(default_model, gss, config)
    assert [q["id"] for q in result["questions"]] == ["natenrgy", "natspac"]
    first = result["questions"][0]
    assert first["held_out"] and not result["questions"][1]["held_out"]
    assert first["population"]["n"] == 220
    assert {"uniform", "marginal", "logistic", "gradient_boosting", "svr"} <= set(first["population"]["baselines"])
    assert first["slices"] and all(block["n"] >= 40 for block in first["slices"])
    summary = result["summary"]
    assert summary["held_out"]["n_questions"] == 1 and summary["trained"]["n_questions"] == 1
    assert summary["all"]["slices"]["noise_floor"]["js"] > 0
    # grouped by what the model trained on: the bare model saw neither, an adapter that held out natspac saw natenrgy
    assert set(coverage_summary(result, {"natenrgy", "natspac"})) == {"unseen"}
    grouped = coverage_summary(result, {"natspac"})
    assert grouped["trained"]["slices"] == summarize(result["questions"][:1])["slices"]
    assert grouped["unseen"]["n_questions"] == 1


def test_the_command_line_prints_no_library_notices():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "engine.cli", "simulate", "--question", "natspac", "--personas", "8",
                          "--no-baselines", "--format", "json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["model"].endswith("gss2018-smollm2")  # the adapter went through peft
    for notice in ("kernels-community", "is_gradient_checkpointing", "Warning"):
        assert notice not in run.stderr, run.stderr


def test_base_flag_uses_the_bare_model(capsys):
    code = main(["simulate", "--question", "natspac", "--personas", "16", "--base", "--no-baselines",
                 "--format", "json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["model"] == "SmolLM2-135M-Instruct"


def test_the_shipped_adapter_loads_and_moves_answers_towards_the_survey(gss):
    from engine.metrics import answer_distribution, apply_temperature, js_distance
    from engine.models import shipped_adapter

    adapter = shipped_adapter("gss2018")
    assert adapter is not None and (adapter / "adapter_model.safetensors").is_file()
    question = gss.question("natsci")
    index = gss.demographics.index[:120]
    personas = personas_for(gss, index)
    real = answer_distribution(gss.answers.loc[index, "natsci"].to_numpy(), 3)
    distances = {}
    for name, config in (("base", ModelConfig()), ("adapter", ModelConfig(adapter=str(adapter)))):
        logits = option_logits(load_model(config), question, gss.fields, personas, use_cache=False)
        distances[name] = js_distance(real, apply_temperature(logits, 1.0).mean(axis=0))
    assert distances["adapter"] < distances["base"]
