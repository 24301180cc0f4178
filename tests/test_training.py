"""Fine-tuning: the numeric loss by hand, examples without leaks, adapters that learn, safe saves."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.errors import FocusgroupError
from engine.training.config import TrainConfig
from engine.training.examples import build_examples
from engine.training.loss import answer_loss, distance_weights
from engine.training.trainer import check_output_folder, load_base, train, write_adapter
from engine.surveys.split import split_index


def test_distance_weights_fall_linearly_to_zero_at_the_width():
    weights = distance_weights(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0, 2]), width=2.0)
    assert weights.tolist() == [[1.0, 0.5, 0.0, 0.0], [0.0, 0.5, 1.0, 0.5]]


def test_an_off_scale_option_is_near_nothing_but_itself():
    # positions 1, 2, 3 and "Don't know" (no position); answers 1 (on the scale) and 3 (off it)
    values = torch.tensor([1.0, 2.0, 3.0, float("nan")])
    weights = distance_weights(values, torch.tensor([1, 3]), width=2.0)
    assert weights.tolist() == [[0.5, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]]
    logprobs = torch.log(torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.1, 0.4, 0.2, 0.3]]))
    loss, parts = answer_loss(logprobs, torch.tensor([1, 3]), values, 1.0, 2.0)
    assert math.isfinite(float(loss))
    assert parts["numeric"] == pytest.approx((-math.log(0.05 + 0.4 + 0.1) - math.log(0.3)) / 2, rel=1e-5)


def test_numeric_loss_on_hand_computed_logits():
    # Options at positions 1, 2, 3 with probabilities 0.2, 0.5, 0.3 over the whole vocabulary
    # except 0.0 left elsewhere; the true answer is option 0 (value 1), width D = 2.
    logprobs = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    loss, parts = answer_loss(logprobs, torch.tensor([0]), torch.tensor([1.0, 2.0, 3.0]), 0.5, 2.0)
    cross_entropy = -math.log(0.2)
    numeric = -math.log(1.0 * 0.2 + 0.5 * 0.5 + 0.0 * 0.3)
    assert parts["cross_entropy"] == pytest.approx(cross_entropy)
    assert parts["numeric"] == pytest.approx(numeric, rel=1e-5)
    assert float(loss) == pytest.approx(cross_entropy + 0.5 * numeric, rel=1e-5)


def test_numeric_term_uses_the_distribution_among_options():
    # Only 40% of the mass is on option tokens: the numeric term renormalises over options.
    logprobs = torch.log(torch.tensor([[0.1, 0.2, 0.1]]))
    _, parts = answer_loss(logprobs, torch.tensor([1]), torch.tensor([1.0, 2.0, 3.0]), 1.0, 2.0)
    assert parts["numeric"] == pytest.approx(-math.log(0.25 * 0.5 + 0.5 * 1.0 + 0.25 * 0.5), rel=1e-5)


def test_numeric_loss_prefers_near_misses():
    values, target = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), torch.tensor([0])
    near = torch.log(torch.tensor([[0.1, 0.6, 0.1, 0.1, 0.1]]))
    far = torch.log(torch.tensor([[0.1, 0.1, 0.1, 0.1, 0.6]]))
    near_loss, near_parts = answer_loss(near, target, values, 1.0, 2.0)
    far_loss, far_parts = answer_loss(far, target, values, 1.0, 2.0)
    assert near_parts["cross_entropy"] == pytest.approx(far_parts["cross_entropy"])
    assert near_loss < far_loss


def test_weight_zero_is_plain_cross_entropy():
    logprobs = torch.log_softmax(torch.randn(6, 4), dim=1)
    targets = torch.tensor([0, 1, 2, 3, 0, 1])
    loss, parts = answer_loss(logprobs, targets, torch.arange(4.0), 0.0, 2.0)
    assert float(loss) == pytest.approx(float(torch.nn.functional.nll_loss(logprobs, targets)))
    assert "numeric" not in parts


def best_answer_distribution(true: torch.Tensor, weight: float) -> torch.Tensor:
    """The option distribution that minimises the expected loss when answers follow `true`."""
    values, targets = torch.arange(1.0, len(true) + 1), torch.arange(len(true))
    logits = torch.zeros(len(true), requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.05)
    for _ in range(800):
        logprobs = torch.log_softmax(logits, dim=0).expand(len(true), -1)
        losses = torch.stack([answer_loss(logprobs[t : t + 1], targets[t : t + 1], values, weight, 2.0)[0]
                              for t in range(len(true))])
        optimiser.zero_grad()
        (true * losses).sum().backward()
        optimiser.step()
    return torch.softmax(logits.detach(), dim=0)


def test_the_numeric_term_pulls_the_best_distribution_towards_the_middle():
    # Cross-entropy alone is minimised by the true distribution; the numeric term is not a
    # proper scoring rule and rewards mass on the middle option (which is near every answer).
    true = torch.tensor([0.2, 0.5, 0.3])
    torch.testing.assert_close(best_answer_distribution(true, 0.0), true, atol=5e-3, rtol=0)
    light, heavy = best_answer_distribution(true, 0.25), best_answer_distribution(true, 1.0)
    assert true[1] < light[1] < heavy[1] and heavy[1] > 0.55
    assert heavy[0] < light[0] < true[0] and heavy[2] < light[2] < true[2]


def test_nominal_questions_get_cross_entropy_only():
    logprobs = torch.log_softmax(torch.randn(3, 3), dim=1)
    loss, parts = answer_loss(logprobs, torch.tensor([0, 1, 2]), None, 1.0, 2.0)
    assert "numeric" not in parts


def test_examples_come_from_the_train_split_and_skip_held_out_questions(gss):
    examples = build_examples(gss, "train", 0, ("natenrgy", "natenvir"))
    train_ids = set(split_index(gss, "train", 0))
    assert {e.respondent for e in examples} <= train_ids
    assert not {e.question_id for e in examples} & {"natenrgy", "natenvir"}
    assert len({e.question_id for e in examples}) == 16
    answered = sum(int((gss.answers.loc[list(train_ids), q.id] != -1).sum())
                   for q in gss.questions if q.id not in ("natenrgy", "natenvir"))
    assert len(examples) == answered


def test_one_step_changes_the_adapter_and_not_the_base(gss):
    config = TrainConfig(out="unused", base_model="tiny", learning_rate=1e-2)
    loaded = load_base(config)
    model = loaded.model
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    from engine.training.examples import Batch
    from engine.training.trainer import answer_scorer, batch_loss
    examples = build_examples(gss, "train", 0, ("natenrgy",))[:8]
    surveys = {gss.id: gss}
    loss, _ = batch_loss(answer_scorer(loaded, surveys, False), surveys, Batch(tuple(examples)), config)
    loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}
    assert changed and all("lora_" in name for name in changed)
    assert any("lora_B" in name for name in changed)


def test_training_writes_a_loadable_adapter_and_manifest(tmp_path):
    out = tmp_path / "adapter"
    manifest = train(TrainConfig(out=str(out), base_model="tiny", max_steps=3, eval_every=2, eval_examples=16,
                                 batch_size=4, max_examples=40))
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    stored = json.loads((out / "manifest.json").read_text())
    assert stored["steps"] == manifest["steps"] == 3 and stored["survey"] == "gss2018"
    assert stored["held_out_questions"] == ["natenrgy", "natenvir"]
    assert [r["step"] for r in stored["loss_curve"]] == [1, 2, 3]
    assert "validation_loss" in stored["loss_curve"][1] and stored["best_step"] in (2, 3)
    assert stored["hyperparameters"]["rank"] == 16 and stored["machine"]["cpu_count"]
    from safetensors.torch import load_file
    assert {t.dtype for t in load_file(out / "adapter_model.safetensors").values()} == {torch.bfloat16}
    from engine.models import ModelConfig, load_model
    assert load_model(ModelConfig(base="tiny", adapter=str(out))).model is not None
    with pytest.raises(FocusgroupError, match="already holds"):
        check_output_folder(out, TrainConfig(out=str(out), base_model="tiny", max_steps=3), resume=False)
    with pytest.raises(FocusgroupError, match="different"):
        check_output_folder(out, TrainConfig(out=str(out), base_model="tiny", max_steps=4), resume=False)


def test_a_killed_save_leaves_the_previous_adapter_intact(tmp_path, monkeypatch):
    out = tmp_path / "adapter"
    train(TrainConfig(out=str(out), base_model="tiny", max_steps=1, eval_examples=8, batch_size=4, max_examples=8))
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    class Killed(Exception):
        pass

    class DyingModel:
        def save_pretrained(self, folder):
            (folder / "adapter_model.safetensors").write_bytes(b"half of a file")
            raise Killed()

    with pytest.raises(Killed):
        write_adapter(out, DyingModel(), {"steps": 99})
    after = {path.name: path.read_bytes() for path in out.iterdir()}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_non_empty_foreign_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FocusgroupError, match="not empty"):
        check_output_folder(tmp_path, TrainConfig(out=str(tmp_path)), resume=False)


def test_resume_continues_an_interrupted_run(tmp_path, monkeypatch):
    import engine.training.trainer as trainer

    out = tmp_path / "adapter"
    config = TrainConfig(out=str(out), base_model="tiny", max_steps=4, eval_every=2, eval_examples=8,
                         batch_size=4, max_examples=40)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "write_adapter", crash)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    assert (out / ".checkpoint" / "state.json").is_file() and not (out / "manifest.json").exists()
    with pytest.raises(FocusgroupError, match="--resume"):
        check_output_folder(out, config, resume=False)
    monkeypatch.undo()
    manifest = train(config, resume=True)
    assert manifest["steps"] == 4 and [r["step"] for r in manifest["loss_curve"]] == [1, 2, 3, 4]


def test_checkpoints_hold_no_pickle_and_resume_restores_the_optimizer(tmp_path, monkeypatch):
    import engine.training.trainer as trainer
    from engine.training.run_folder import load_checkpoint

    out = tmp_path / "adapter"
    config = TrainConfig(out=str(out), base_model="tiny", max_steps=3, eval_every=2, eval_examples=8, batch_size=4,
                         max_examples=40)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "write_adapter", crash)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    checkpoint = out / ".checkpoint"
    assert sorted(path.name for path in checkpoint.iterdir()) == [
        "adapter.safetensors", "best_adapter.safetensors", "optimizer.safetensors", "state.json"]
    loaded = load_base(config)
    trainable = [p for p in loaded.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    load_checkpoint(checkpoint, loaded.model, optimizer, scheduler)
    state = optimizer.state_dict()
    assert state["param_groups"][0]["lr"] != 1.0 and state["param_groups"][0]["betas"] == (0.9, 0.999)
    assert len(state["state"]) == len(trainable) and float(state["state"][0]["step"]) == 2
    assert scheduler.last_epoch == 2


@pytest.mark.parametrize("setting", [{"learning_rate": 1e30, "eval_every": 100}, {"numeric_loss_weight": 1e38}],
                         ids=["lr", "numeric-loss-weight"])
def test_a_loss_that_is_not_finite_stops_training_and_writes_nothing(tmp_path, setting):
    out = tmp_path / "adapter"
    config = TrainConfig(out=str(out), base_model="tiny", max_steps=3, batch_size=4, eval_examples=8, max_examples=40,
                         **setting)
    option = "--lr 1e\\+30" if "learning_rate" in setting else "--numeric-loss-weight 1e\\+38"
    with pytest.raises(FocusgroupError, match=f"no longer a finite number.*{option}.*too large"):
        train(config)
    assert not out.exists()


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def test_a_loss_gone_bad_late_leaves_the_last_good_checkpoint_resumable(tmp_path, monkeypatch):
    import engine.training.trainer as trainer

    out = tmp_path / "adapter"
    config = TrainConfig(out=str(out), base_model="tiny", max_steps=4, eval_every=1, eval_examples=8, batch_size=4,
                         max_examples=40)
    original, training_steps = trainer.batch_loss, []

    def poisoned_at_step_three(*args):
        loss, parts = original(*args)
        if torch.is_grad_enabled():  # a training step, not a validation batch
            training_steps.append(len(training_steps) + 1)
            if len(training_steps) == 3:
                loss = loss * float("nan")
        return loss, parts

    monkeypatch.setattr(trainer, "batch_loss", poisoned_at_step_three)
    with pytest.raises(FocusgroupError, match="step 3"):
        train(config)
    assert sorted(path.name for path in out.iterdir()) == [".checkpoint"]
    state = json.loads((out / ".checkpoint" / "state.json").read_text(), parse_constant=reject_constant)
    assert state["run"]["step"] == 2
    assert check_output_folder(out, config, resume=True)["step"] == 2


def test_manifests_are_strict_json_with_null_for_numbers_that_are_not_finite(tmp_path):
    from engine.atomic import atomic_write_json

    atomic_write_json(tmp_path / "manifest.json", {"loss": float("nan"), "curve": [1.0, float("-inf")], "steps": 2})
    text = (tmp_path / "manifest.json").read_text()
    assert json.loads(text, parse_constant=reject_constant) == {"loss": None, "curve": [1.0, None], "steps": 2}


@pytest.mark.parametrize("where", ["below a file", "in a read-only folder"])
def test_an_unwritable_out_is_refused_before_any_slow_work(tmp_path, monkeypatch, where):
    import engine.training.mixture as mixture

    if where == "below a file":
        (tmp_path / "a-file").write_text("not a folder")
        out = tmp_path / "a-file" / "adapter"
    elif os.geteuid() == 0:
        out = Path("/proc/focusgroup-adapter")  # root writes anywhere but in /proc
    else:
        (tmp_path / "locked").mkdir(mode=0o555)
        out = tmp_path / "locked" / "adapter"

    def forbidden(*args, **kwargs):
        raise AssertionError("the survey was loaded before --out was checked")

    monkeypatch.setattr(mixture, "load_survey", forbidden)
    monkeypatch.setattr(mixture, "list_surveys", forbidden)
    with pytest.raises(FocusgroupError, match=f"Cannot write the adapter to --out {out}"):
        train(TrainConfig(out=str(out), base_model="tiny"))
    with pytest.raises(FocusgroupError, match=f"Cannot write the adapter to --out {out}"):
        train(TrainConfig(out=str(out), base_model="tiny", surveys=("all",)))


def test_bad_training_options_are_explained():
    with pytest.raises(FocusgroupError, match="--out"):
        TrainConfig()
    with pytest.raises(FocusgroupError, match="lora or qlora"):
        TrainConfig(out="x", method="full")
    with pytest.raises(FocusgroupError, match="numeric-loss-width"):
        TrainConfig(out="x", numeric_loss_width=0)


@pytest.mark.slow
def test_qlora_trains_adapters_on_a_4bit_base(tmp_path):
    import bitsandbytes

    config = TrainConfig(out=str(tmp_path / "q"), method="qlora", max_steps=1, eval_examples=8, batch_size=4,
                         max_examples=8)
    loaded = load_base(config)
    layer = loaded.model.get_base_model().model.layers[0].self_attn.q_proj
    assert isinstance(layer.base_layer, bitsandbytes.nn.Linear4bit)
    manifest = train(config)
    assert manifest["hyperparameters"]["method"] == "qlora"
    assert (tmp_path / "q" / "adapter_model.safetensors").is_file()


def test_cli_train_refuses_a_folder_holding_another_run(tmp_path, capsys):
    from engine.cli import main

    (tmp_path / "manifest.json").write_text(json.dumps({"hyperparameters": {"rank": 1}}))
    assert main(["train", "--out", str(tmp_path), "--max-steps", "1"]) == 2
    assert "different trained adapter" in capsys.readouterr().err


def test_the_checkpointing_path_scores_like_the_shared_prefix_path(gss):
    from engine.training.examples import Batch
    from engine.training.trainer import batch_logprobs

    loaded = load_base(TrainConfig(out="unused", base_model="tiny"))
    loaded.model.eval()
    batch = Batch(tuple(build_examples(gss, "train", 0, ())[:6]), option_order=(2, 0, 1))
    with torch.no_grad():
        shared = batch_logprobs(loaded, gss, batch, gradient_checkpointing=False)
        separate = batch_logprobs(loaded, gss, batch, gradient_checkpointing=True)
    assert shared.shape == (6, 3)
    torch.testing.assert_close(shared, separate, atol=2e-2, rtol=0)


def test_sharded_launches_are_refused_before_training():
    from engine.training.trainer import check_parallelism

    for accepted in ("NO", "MULTI_CPU", "MULTI_GPU"):
        check_parallelism(accepted)
    for sharded in ("FSDP", "DEEPSPEED"):
        with pytest.raises(FocusgroupError, match=f"configured for {sharded}.*--multi_gpu"):
            check_parallelism(sharded)


@pytest.mark.slow
def test_two_processes_train_one_adapter_under_accelerate_launch(tmp_path):
    out = tmp_path / "adapter"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "engine.cli", "train", "--base-model", "tiny", "--max-steps", "2", "--batch-size", "4",
               "--max-examples", "64", "--eval-every", "1", "--eval-examples", "16", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["processes"] == 2 and manifest["steps"] == 2
    assert all("validation_loss" in record for record in manifest["loss_curve"])
    assert (out / "adapter_model.safetensors").is_file() and not (out / ".checkpoint").exists()


def test_a_run_resumes_with_gradient_checkpointing_turned_on_but_not_with_another_rate():
    from engine.training.run_folder import same_settings

    saved = TrainConfig(out="run", base_model="tiny").hyperparameters()
    assert same_settings(saved, TrainConfig(out="run", base_model="tiny", gradient_checkpointing=True).hyperparameters())
    assert not same_settings(saved, TrainConfig(out="run", base_model="tiny", learning_rate=5e-4).hyperparameters())
    older = {key: value for key, value in saved.items() if key not in ("max_context", "warm_start")}
    assert same_settings(older, saved)  # a run from before those options resumes
