"""Fine-tuning with LoRA or QLoRA: the loop and validation (the run's folder, its checkpoints
and the atomic output are `engine.training.run_folder`).

    focusgroup train --survey gss2018 --method lora --max-steps 5 --out /tmp/adapter
    focusgroup train --surveys all --max-steps 5 --out /tmp/adapter

Phases, top to bottom in `train`:
1. the output folder: writable, what a killed run left half done finished
   (`engine.training.run_folder.recover_run`), refused when it holds a different run,
   resumed from its checkpoint;
2. data: train-split examples of the trained questions of one survey or several, capped,
   and validation-split examples (`engine.training.mixture`);
3. model: the base (4-bit NF4 for QLoRA) with a fresh LoRA adapter (peft);
4. the loop: one question per batch, its options shown in an order drawn for the step
   (`engine.training.examples.step_batch`), its prompt prefix run once, loss = cross-entropy
   + W x numeric distance (`engine.training.loss`) + L x a slice's KL
   (`engine.training.distribution`); validation loss (identity order, as inference shows
   the options; per-respondent loss only) every `eval_every` steps,
   the best adapter kept, early stop after `patience` evaluations without improvement;
   a loss that is not finite stops the run (it would write NaN weights);
5. output: the best adapter and `manifest.json` written to a staging folder and swapped
   into place in one step, so a killed run leaves its checkpoint or its adapter, whole.

Progress goes to a callback with step, loss and ETA: the CLI draws a tqdm bar from it, and
the dashboard a progress bar. Multi-GPU runs use accelerate's launcher (see the README).
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import __version__
from engine.atomic import fault_point
from engine.errors import FocusgroupError
from engine.models import DEFAULT_MODEL_NAME, ModelConfig, _load_model, default_model_folder, quiet_transformers
from engine.prompts import PROMPT_VERSION
from engine.scoring import (
    batch_option_logprobs,
    option_logprobs_from_hidden,
    option_token_groups,
    split_model,
    tokenize_prompts,
)
from engine.training.adapter_init import attach_adapter
from engine.training.config import TrainConfig
from engine.training.distribution import step_loss
from engine.training.examples import Batch, batch_sources, make_batches, step_batch, validation_batches
from engine.training.mixture import load_training_data, resolve_surveys
from engine.training.run_folder import (
    CHECKPOINT,
    adapter_state,
    check_output_folder,
    check_writable,
    finished_run,
    load_checkpoint,
    recover_run,
    save_checkpoint,
    write_adapter,
)

WARMUP_FRACTION = 0.05


@dataclass
class TrainProgress:
    """What a progress callback receives after every step."""

    step: int
    total_steps: int
    loss: float
    validation_loss: float | None
    best_validation_loss: float | None
    eta_seconds: float


ProgressCallback = Callable[[TrainProgress], None]


def weights_sha256(folder: Path) -> str:
    """A hash of a model folder's weight files (safetensors, else bin)."""
    digest = hashlib.sha256()
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    for path in files:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_base(config: TrainConfig, held_out: dict[str, tuple[str, ...]] | None = None):
    """A fresh (uncached) base model with the run's adapter (`engine.training.adapter_init`),
    and its loaded-model record."""
    quiet_transformers()
    model_config = ModelConfig(base=config.base_model, load_in_4bit=config.method == "qlora")
    if config.method == "qlora":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise FocusgroupError("QLoRA needs a working bitsandbytes: `pip install bitsandbytes`.") from None
    loaded = _load_model.__wrapped__(model_config)
    model = loaded.model
    if config.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    loaded.model = attach_adapter(model, config, held_out)
    return loaded


def batch_logprobs(loaded, survey, batch: Batch, gradient_checkpointing: bool):
    """Option log-probabilities [B, k] for one single-question batch (with gradients), its
    examples' personas then its slice's, in the survey's option order whatever order the
    prompt showed (`engine.scoring.option_token_groups`)."""
    import torch

    question = survey.question(batch.question_id)
    tokenizer, model = loaded.tokenizer, loaded.model
    device = next(p for p in model.parameters()).device
    decoder, head = split_model(model)
    option_tokens = option_token_groups(tokenizer, question, device, batch.option_order)
    prefix_ids, suffixes = tokenize_prompts(tokenizer, question, survey.fields, batch.personas, None,
                                            batch.option_order)
    if not gradient_checkpointing:
        cache = decoder(input_ids=prefix_ids.to(device), use_cache=True).cache
        return batch_option_logprobs(decoder, head, cache, suffixes, option_tokens, tokenizer.pad_token_id)
    # Gradient checkpointing turns the key/value cache off, so each row carries its prefix.
    rows = [prefix_ids[0].tolist() + suffix for suffix in suffixes]
    lengths = [len(row) for row in rows]
    batch_ids = torch.full((len(rows), max(lengths)), tokenizer.pad_token_id, dtype=torch.long)
    for index, row in enumerate(rows):
        batch_ids[index, : len(row)] = torch.tensor(row)
    hidden = decoder(input_ids=batch_ids.to(device), use_cache=False).last_hidden_state
    last = hidden[torch.arange(len(rows)), torch.tensor(lengths) - 1]
    return option_logprobs_from_hidden(head, last, option_tokens)


DATA_PARALLEL = ("NO", "MULTI_CPU", "MULTI_GPU")


def check_parallelism(distributed_type: str) -> None:
    """Accept data parallelism (every process holds the whole model), refuse the rest.

    Under FSDP or DeepSpeed the LoRA weights are sharded across processes, and the adapter
    and checkpoints here are written from one process's full tensors; rather than fail at
    the end of a run, or write a part of an adapter, such a launch stops at once.
    """
    if distributed_type not in DATA_PARALLEL:
        raise FocusgroupError(
            f"accelerate was configured for {distributed_type}; focusgroup train runs data parallel on CPUs or "
            "CUDA GPUs only (FSDP and DeepSpeed shard the weights; a LoRA or QLoRA adapter on a 7B base fits on "
            "one GPU per process). Launch with `accelerate launch --multi_gpu --num_processes N -m engine.cli "
            "train ...` and no FSDP or DeepSpeed settings."
        )


@dataclass
class Team:
    """The processes training together: one, or several started by `accelerate launch`."""

    size: int = 1
    rank: int = 0
    accelerator: object | None = None

    @classmethod
    def join(cls) -> "Team":
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        import torch
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=not torch.cuda.is_available())  # CPU processes talk over gloo
        check_parallelism(accelerator.distributed_type.value)
        if accelerator.num_processes <= 1:
            raise FocusgroupError("Launched as one of several processes, but accelerate found no process group; "
                                  "start distributed runs with `accelerate launch`.")
        return cls(accelerator.num_processes, accelerator.process_index, accelerator)

    @property
    def leads(self) -> bool:
        return self.rank == 0

    def wrap(self, scorer):
        """Data-parallel wrapping (gradients averaged across processes) when there are several."""
        return scorer if self.accelerator is None else self.accelerator.prepare_model(scorer)

    def sum(self, *values: float) -> tuple[float, ...]:
        if self.accelerator is None:
            return values
        import torch

        summed = self.accelerator.reduce(torch.tensor(values, dtype=torch.float64,
                                                      device=self.accelerator.device), "sum")
        return tuple(summed.tolist())

    def wait(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()


def answer_scorer(loaded, surveys: dict, gradient_checkpointing: bool):
    """The model as one module whose forward maps a `Batch` (of any of `surveys`, by id) to
    option log-probabilities, so the data-parallel wrapper (DDP) sees every forward pass."""
    import torch

    class AnswerScorer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = loaded.model

        def forward(self, batch: Batch):
            return batch_logprobs(loaded, surveys[batch.survey_id], batch, gradient_checkpointing)

    return AnswerScorer()


def batch_loss(scorer, surveys: dict, batch: Batch, config: TrainConfig):
    """The step's loss and its parts (`engine.training.distribution.step_loss`)."""
    question = surveys[batch.survey_id].question(batch.question_id)
    return step_loss(scorer(batch), batch, question, config)


def validation_loss(scorer, surveys: dict, batches: list[Batch], config: TrainConfig, team: Team) -> float:
    """Mean loss over the validation batches; each process takes its share and the sums are
    added up, so every process gets the same number (and makes the same early-stop choice)."""
    import torch

    scorer.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches[team.rank::team.size]:
            loss, _ = batch_loss(scorer, surveys, batch, config)
            total += float(loss) * len(batch.examples)
            count += len(batch.examples)
    scorer.train()
    total, count = team.sum(total, count)
    return total / count


def stop_unless_finite(team: Team, step: int, config: TrainConfig, *values: float) -> None:
    """A loss of inf or NaN poisons every weight it touches: stop before it is applied.
    Every process of a team learns of any process's bad loss, so all stop together."""
    (bad,) = team.sum(0.0 if all(math.isfinite(value) for value in values) else 1.0)
    if bad:
        raise FocusgroupError(
            f"Training stopped at step {step}: the loss is no longer a finite number, most likely because the "
            f"learning rate (--lr {config.learning_rate:g}) or the numeric loss weight (--numeric-loss-weight "
            f"{config.numeric_loss_weight:g}) is too large; lower it and train again."
        )


def machine_description(loaded) -> dict:
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "device": loaded.device,
            "dtype": loaded.dtype, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def train(config: TrainConfig, progress: ProgressCallback | None = None, resume: bool = False) -> dict:
    """Fine-tune, write the best adapter and its manifest to `config.out`, return the manifest."""
    import torch

    started = time.perf_counter()
    out = Path(config.out).expanduser()

    # Phase 1: the output folder, before any slow work ("all" spelled out first: the run's
    # hyperparameters name every survey, so a resumed run trains on the same ones).
    check_writable(out)
    config = resolve_surveys(config)
    recover_run(out, config.hyperparameters())
    finished = finished_run(out, config.hyperparameters()) if resume else None
    if finished is not None:
        return finished  # killed after its adapter was written: nothing left to do
    resumed = check_output_folder(out, config, resume)

    # Phase 2: data.
    rng = np.random.default_rng(config.seed)
    data = load_training_data(config, rng, np.random.default_rng(config.seed + 1))
    train_examples, surveys = data.train_examples, data.surveys
    slices, contexts = batch_sources(config, surveys, data.held_out)
    validation_set = validation_batches(data.validation_examples, config, contexts, data.question)
    # Under `accelerate launch` each of the team's processes takes its own batch at every
    # step (batch_size examples per process), so an epoch takes proportionally fewer steps.
    team = Team.join()
    epoch_batches = math.ceil(len(train_examples) / config.batch_size)
    total_steps = math.ceil(config.epochs * epoch_batches / team.size)
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    schedule: list[list] = []
    while len(schedule) < total_steps * team.size:
        schedule.extend(make_batches(train_examples, config.batch_size, rng))
    schedule = schedule[team.rank : total_steps * team.size : team.size]

    # Phase 3: the model with a fresh adapter (or a warm start's).
    torch.manual_seed(config.seed)
    loaded = load_base(config, data.held_out)
    model = loaded.model
    model.train()
    scorer = team.wrap(answer_scorer(loaded, surveys, config.gradient_checkpointing))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    warmup = max(1, int(WARMUP_FRACTION * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup))),
    )
    state = {"step": 0, "curve": [], "best_validation_loss": None, "best_step": None, "stale": 0,
             "hyperparameters": config.hyperparameters()}
    best_adapter = None
    if resumed is not None:
        best_adapter = load_checkpoint(out / CHECKPOINT, model, optimizer, scheduler)
        state = resumed
        torch.manual_seed(config.seed + state["step"])

    # Phase 4: the loop.
    loop_started, first_step = time.perf_counter(), state["step"]
    validation = None
    for step in range(state["step"], total_steps):
        examples = schedule[step]
        batch = step_batch(examples, data.question(examples[0]), config, slices, contexts, step, team.rank)
        loss, parts = batch_loss(scorer, surveys, batch, config)
        stop_unless_finite(team, step + 1, config, float(loss.detach()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        state["step"] = step + 1
        record = {"step": step + 1, "loss": float(loss.detach()), **parts}
        state["curve"].append(record)
        last_step = step + 1 == total_steps
        if (step + 1) % config.eval_every == 0 or last_step:
            validation = validation_loss(scorer, surveys, validation_set, config, team)
            stop_unless_finite(team, step + 1, config, validation)
            record["validation_loss"] = validation
            if state["best_validation_loss"] is None or validation < state["best_validation_loss"]:
                state.update(best_validation_loss=validation, best_step=step + 1, stale=0)
                best_adapter = adapter_state(model)
            else:
                state["stale"] += 1
            if not last_step and team.leads:
                save_checkpoint(out, model, optimizer, scheduler, state, best_adapter)
                fault_point("train:checkpointed", str(step + 1))
        if progress is not None and team.leads:
            per_step = (time.perf_counter() - loop_started) / (step + 1 - first_step)
            progress(TrainProgress(step + 1, total_steps, record["loss"], validation,
                                   state["best_validation_loss"], per_step * (total_steps - step - 1)))
        if state["stale"] >= config.patience:
            break

    # Phase 5: the best adapter and its manifest, atomically.
    if best_adapter is not None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, best_adapter)
    base_folder = default_model_folder() if config.base_model in ("default", "tiny") else Path(config.base_model)
    base_name = {"default": DEFAULT_MODEL_NAME, "tiny": "tiny"}.get(config.base_model, base_folder.name)
    manifest = {
        "focusgroup_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["focusgroup"] + sys.argv[1:]) if sys.argv and "focusgroup" in sys.argv[0] else None,
        "base_model": {"name": base_name, "path": str(base_folder),
                       "weights_sha256": "random-init" if base_name == "tiny" else weights_sha256(base_folder)},
        **data.manifest_fields(),
        "split_seed": config.split_seed,
        "prompt_version": PROMPT_VERSION,
        "hyperparameters": config.hyperparameters(),
        "steps": state["step"],
        "total_steps": total_steps,
        "stopped_early": state["step"] < total_steps,
        "best_step": state["best_step"],
        "best_validation_loss": state["best_validation_loss"],
        "loss_curve": state["curve"],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": machine_description(loaded),
        "processes": team.size,
    }
    if team.leads:
        write_adapter(out, model, manifest)
    team.wait()
    return manifest


__all__ = ["TrainConfig", "TrainProgress", "train", "check_output_folder", "write_adapter"]
