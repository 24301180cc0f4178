"""A training run's folder: the finished adapter, checkpoints in safetensors and JSON (never
pickle), and recovery from a killed run.

    out/                           the finished run: `write_adapter`
        adapter_model.safetensors, adapter_config.json, manifest.json
    out/.checkpoint/               an unfinished run: `save_checkpoint`, `load_checkpoint`
        adapter.safetensors        the adapter's weights after the last evaluated step
        best_adapter.safetensors   the best adapter so far
        optimizer.safetensors      the optimizer's per-parameter tensors, `state.<index>.<name>`
        state.json                 the run (step, loss curve, best, hyperparameters), the
                                   optimizer's parameter groups and the scheduler's state

A checkpoint loads no code: `torch.load` is not used, so a planted pickle is never opened.
Nothing read back is trusted either: a file that cannot be read, tensors whose names or
shapes are not this model's, or settings of another kind than the optimizer's and
scheduler's own stop the run with one line naming the file.

Both land with `engine.atomic.swap_into_place`: `out` holds the checkpoint until the moment
it holds the finished adapter. What a killed run leaves, `recover_run` finishes before the
folder is looked at: a finished adapter staged beside `out` is landed, a folder or
checkpoint that a killed swap left missing is put back, and the other leftovers removed.
Manifests and states are strict JSON: a number that is not finite is written as null.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.atomic import (
    atomic_write_json,
    dead_leftovers,
    fault_point,
    recover_leftovers,
    staging_folder,
    swap_into_place,
)
from engine.errors import FocusgroupError
from engine.training.config import TrainConfig

MANIFEST = "manifest.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
CHECKPOINT = ".checkpoint"
STATE = "state.json"
ADAPTER, BEST_ADAPTER, OPTIMIZER = "adapter.safetensors", "best_adapter.safetensors", "optimizer.safetensors"
ADAMW_STATE = ("step", "exp_avg", "exp_avg_sq")
# What `train` records about a run, and the JSON kinds each may hold.
RUN_FIELDS = {"step": (int,), "curve": (list,), "best_validation_loss": (int, float, type(None)),
              "best_step": (int, type(None)), "stale": (int,), "hyperparameters": (dict,)}


# -- reading ------------------------------------------------------------------------------

def read_json(path: Path):
    """The JSON value in `path`, or None when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


# -- the output folder -------------------------------------------------------------------

def check_writable(out: Path) -> None:
    """Fail before any work when `out` (or the folder beside it, where the adapter is staged)
    cannot be created or written, rather than after the whole run."""
    try:
        probes = [staging_folder(out)] + ([staging_folder(out / CHECKPOINT)] if out.is_dir() else [])
        for probe in probes:
            probe.rmdir()
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise FocusgroupError(f"Cannot write the adapter to --out {out}: {reason} ({error.filename}); "
                              "choose a folder you can create and write to.") from None


def check_output_folder(out: Path, config: TrainConfig, resume: bool) -> dict | None:
    """The checkpoint to resume from, or None; refuses to overwrite another run."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise FocusgroupError(f"--out {out} is a file; pass a folder.")
    manifest = out / MANIFEST
    if manifest.is_file():
        previous = read_json(manifest)
        previous_settings = previous.get("hyperparameters") if isinstance(previous, dict) else None
        if not same_settings(previous_settings, config.hyperparameters()):
            raise FocusgroupError(f"{out} already holds a different trained adapter; choose another --out.")
        raise FocusgroupError(f"{out} already holds this finished run; choose another --out to train again.")
    if (out / CHECKPOINT).is_dir():
        saved = read_run_state(out / CHECKPOINT)
        if not same_settings(saved["hyperparameters"], config.hyperparameters()):
            raise FocusgroupError(f"{out} holds an unfinished run with other settings; choose another --out.")
        if not resume:
            raise FocusgroupError(f"{out} holds an unfinished run; pass --resume to continue it.")
        return saved
    if any(out.iterdir()):
        raise FocusgroupError(f"{out} is not empty and holds no focusgroup run; choose an empty or new --out.")
    return None


# Options added after a run folder may have been written, with the value a run without them had.
LATER_OPTIONS = {"max_context": 0, "warm_start": None}


# Options that change how a run computes, not what it trains: a run resumes with them changed
# (a run killed for memory goes on with --gradient-checkpointing).
HOW_OPTIONS = ("gradient_checkpointing",)


def same_settings(saved, current: dict) -> bool:
    """Whether a run folder's saved hyperparameters are `current`'s: an option newer than the
    folder counts as its old behaviour (LATER_OPTIONS), so an older run still resumes, and
    HOW_OPTIONS do not count."""
    if not isinstance(saved, dict):
        return False
    what = lambda settings: {key: value for key, value in {**LATER_OPTIONS, **settings}.items()
                             if key not in HOW_OPTIONS}
    return what(saved) == what(current)


def finished_run(folder: Path, hyperparameters: dict) -> dict | None:
    """The manifest of a finished run of these settings in `folder`, or None."""
    manifest = read_json(folder / MANIFEST)
    return manifest if isinstance(manifest, dict) and same_settings(manifest.get("hyperparameters"),
                                                                   hyperparameters) else None


def recover_run(out: Path, hyperparameters: dict) -> None:
    """Finish what a killed run of these settings left half done, before `out` is read."""
    for leftover in dead_leftovers(out, ("staging", "new")):
        if finished_run(leftover, hyperparameters) is not None and (leftover / ADAPTER_WEIGHTS).is_file():
            try:
                swap_into_place(leftover, out)  # killed after staging its adapter: land it
            except FileNotFoundError:
                pass  # another process of the same run landed it first
            break
    recover_leftovers(out)
    if out.is_dir():
        recover_leftovers(out / CHECKPOINT)


# -- saving ------------------------------------------------------------------------------

def store_in_bfloat16(path: Path) -> None:
    """Rewrite a safetensors file with its float tensors in bfloat16: half the size of float32,
    and as precise as the bfloat16 base weights the adapter is merged into."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    save_file({name: tensor.to(torch.bfloat16) if tensor.is_floating_point() else tensor
               for name, tensor in tensors.items()}, path, metadata={"format": "pt"})


def write_adapter(out: Path, model, manifest: dict) -> None:
    """The adapter and its manifest, staged beside `out` and swapped into place in one step:
    `out` holds the run's checkpoint until the moment it holds the finished adapter."""
    staging = staging_folder(out)
    try:
        model.save_pretrained(staging)
        (staging / "README.md").unlink(missing_ok=True)  # peft's blank model card; the manifest says it all
        store_in_bfloat16(staging / ADAPTER_WEIGHTS)
        # The manifest goes last: recovery lands a staged folder with a manifest as finished.
        atomic_write_json(staging / MANIFEST, manifest, indent=2)
        staging.chmod(0o755)
        for path in staging.iterdir():
            path.chmod(0o644)
        fault_point("adapter:staged", out.name)
        swap_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def adapter_state(model) -> dict:
    from peft import get_peft_model_state_dict

    return {name: tensor.detach().clone().cpu().contiguous()
            for name, tensor in get_peft_model_state_dict(model).items()}


def save_checkpoint(out: Path, model, optimizer, scheduler, state: dict, best_adapter: dict | None) -> None:
    """Everything needed to resume, written to a staging folder and swapped in atomically."""
    from safetensors.torch import save_file

    target = out / CHECKPOINT
    staging = staging_folder(target)
    try:
        save_file(adapter_state(model), staging / ADAPTER)
        if best_adapter is not None:
            save_file(best_adapter, staging / BEST_ADAPTER)
        optimizer_state = optimizer.state_dict()
        save_file({f"state.{index}.{name}": tensor.detach().cpu().contiguous()
                   for index, tensors in optimizer_state["state"].items() for name, tensor in tensors.items()},
                  staging / OPTIMIZER)
        saved = {"run": state, "optimizer_param_groups": optimizer_state["param_groups"],
                 "scheduler": scheduler.state_dict()}
        atomic_write_json(staging / STATE, saved)
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- loading -----------------------------------------------------------------------------

def damaged(path: Path, reason: str) -> FocusgroupError:
    return FocusgroupError(f"The checkpoint file {path} is damaged or not from this run ({reason}); "
                           f"delete {path.parent} to train from the start.")


def read_run_state(folder: Path) -> dict:
    """The run recorded in a checkpoint's state.json: exactly RUN_FIELDS, of their kinds."""
    saved = read_json(folder / STATE)
    run = saved.get("run") if isinstance(saved, dict) else None
    if not isinstance(run, dict) or set(run) != set(RUN_FIELDS) \
            or any(isinstance(run[key], bool) or not isinstance(run[key], kinds) for key, kinds in RUN_FIELDS.items()) \
            or run["step"] < 0 or run["stale"] < 0:
        raise damaged(folder / STATE, "not the JSON state of a focusgroup run")
    return run


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> dict | None:
    """Restore the adapter, optimizer and scheduler from a checkpoint; return the best
    adapter. Everything is checked before anything is restored."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    shapes = {name: tuple(tensor.shape) for name, tensor in get_peft_model_state_dict(model).items()}
    adapter = read_tensors(folder / ADAPTER, shapes)
    best_adapter = read_tensors(folder / BEST_ADAPTER, shapes) if (folder / BEST_ADAPTER).exists() else None
    saved = read_json(folder / STATE)
    current = optimizer.state_dict()
    groups = saved.get("optimizer_param_groups") if isinstance(saved, dict) else None
    if not isinstance(groups, list) or len(groups) != len(current["param_groups"]):
        raise damaged(folder / STATE, "the optimizer's parameter groups are missing")
    groups = [conform(group, now, folder / STATE) for group, now in zip(groups, current["param_groups"])]
    scheduler_state = conform(saved.get("scheduler"), scheduler.state_dict(), folder / STATE)
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    optimizer_state = read_optimizer_state(folder / OPTIMIZER, [tuple(p.shape) for p in parameters])

    set_peft_model_state_dict(model, adapter)
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": groups})
    scheduler.load_state_dict(scheduler_state)
    return best_adapter


def load_tensors(path: Path) -> dict:
    """A safetensors file's tensors (safetensors holds data only: reading it runs no code)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError):
        raise damaged(path, "not a readable safetensors file") from None


def read_tensors(path: Path, shapes: dict[str, tuple]) -> dict:
    """The float tensors in a safetensors file, which must be exactly `shapes`."""
    tensors = load_tensors(path)
    if set(tensors) != set(shapes):
        unexpected = sorted(set(tensors) ^ set(shapes))
        raise damaged(path, f"tensor names differ from this model's, e.g. {unexpected[0][:80]}")
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != shapes[name] or not tensor.is_floating_point():
            raise damaged(path, f"{name[:80]} is {tensor.dtype} {tuple(tensor.shape)}, expected float {shapes[name]}")
    return tensors


def read_optimizer_state(path: Path, shapes: list[tuple]) -> dict[int, dict]:
    """AdamW's per-parameter tensors: for each parameter none or all of ADAMW_STATE, its
    step a scalar and its moments the parameter's shape."""
    expected = {f"state.{index}.{name}": () if name == "step" else shape
                for index, shape in enumerate(shapes) for name in ADAMW_STATE}
    tensors = load_tensors(path)
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        if expected.get(name) != tuple(tensor.shape) or not tensor.is_floating_point():
            raise damaged(path, f"{name[:80]} is not a tensor of this optimizer")
        _, index, key = name.split(".")
        state.setdefault(int(index), {})[key] = tensor
    if any(set(tensors_of) != set(ADAMW_STATE) for tensors_of in state.values()):
        raise damaged(path, "a parameter's optimizer state is incomplete")
    return state


def conform(saved, current: dict, path: Path) -> dict:
    """`saved` when it has exactly `current`'s keys with values of the same kinds (a JSON
    list stands for a tuple), else the checkpoint is damaged."""
    if not isinstance(saved, dict) or set(saved) != set(current):
        raise damaged(path, "the optimizer or scheduler settings are not this run's")
    conformed = {}
    for key, now in current.items():
        value = saved[key]
        if isinstance(now, tuple) and isinstance(value, list):
            value = tuple(value)
        if not same_kind(value, now):
            raise damaged(path, f"the setting {key[:40]} is not this run's kind of value")
        conformed[key] = value
    return conformed


def same_kind(value, reference) -> bool:
    """Same JSON kind: numbers (not booleans) are interchangeable; sequences match item by item."""
    if isinstance(reference, bool) or reference is None:
        return type(value) is type(reference)
    if isinstance(reference, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(reference, (list, tuple)):
        return type(value) is type(reference) and len(value) == len(reference) \
            and all(same_kind(item, ref) for item, ref in zip(value, reference))
    return type(value) is type(reference)
