"""kill -9 at every step of a write: the next run finds the old or the new, whole, and no leftovers.

Each kill test runs a real child process with FOCUSGROUP_FAULT naming a fault point
(`engine.atomic.fault_point`), where the child SIGKILLs itself; the next run (or
`--resume`) must then find the old or the new folder, whole, and remove what the killed
process left. The points after `swap:after-aside` exist only in the fallback used where
renameat2(RENAME_EXCHANGE) is not available; those children run with the exchange off.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import textwrap

import numpy as np
import pytest

from engine.atomic import atomic_write_text, recover_leftovers, staging_folder, swap_into_place
from test_surveys import SPEC as SURVEY_SPEC

KILLED = -signal.SIGKILL
TRAIN = ("train", "--survey", "gss2018", "--base-model", "tiny", "--max-steps", "3", "--batch-size", "4",
         "--eval-every", "1", "--eval-examples", "8", "--max-examples", "40")
CLI_BODY = "from engine.cli import main\nsys.exit(main(sys.argv[1:]))"


def child_code(body: str, fallback: bool = False) -> str:
    """A child's program: `body`, with the exchange unavailable when `fallback`."""
    prelude = "import sys\nimport engine.atomic as atomic\n"
    if fallback:
        prelude += "atomic._exchange = lambda first, second: False\n"
    return prelude + textwrap.dedent(body)


def run_child(sandbox, body: str, *argv, fault: str | None = None, fallback: bool = False):
    env = {**sandbox.env(), "FOCUSGROUP_FAULT": fault or ""}
    return subprocess.run([sys.executable, "-c", child_code(body, fallback), *map(str, argv)], capture_output=True,
                          text=True, env=env, cwd=sandbox.root, timeout=300)


def fill(folder, generation: str) -> None:
    """A folder whose two files both name its generation: whole when they agree."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("first.txt", "second.txt"):
        (folder / name).write_text(generation)


def generation_of(folder) -> str:
    found = {path.name: path.read_text() for path in folder.iterdir()}
    assert set(found) == {"first.txt", "second.txt"} and len(set(found.values())) == 1, found
    return found["first.txt"]


def hidden(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob(".*"))


# -- the swap itself, in a child process ---------------------------------------------------

SWAP_POINTS = [("swap:before-exchange", False), ("swap:after-exchange", False),
               ("swap:after-aside", True), ("swap:after-rename", True), ("swap:before-exchange", True)]


@pytest.mark.parametrize("point, fallback", SWAP_POINTS)
def test_a_folder_swap_killed_at_any_point_leaves_the_old_or_the_new_whole(sandbox, point, fallback):
    target = sandbox.root / "place" / "target"
    fill(target, "old")
    body = textwrap.dedent(f"""
        from pathlib import Path
        from engine.atomic import staging_folder, swap_into_place
        target = Path({str(target)!r})
        staging = staging_folder(target)
        for name in ("first.txt", "second.txt"):
            (staging / name).write_text("new")
        swap_into_place(staging, target)
    """)
    killed = run_child(sandbox, body, fault=point, fallback=fallback)
    assert killed.returncode == KILLED, killed.stderr[-2000:]
    assert hidden(target.parent), "the kill left nothing to recover, so this test shows nothing"

    recover_leftovers(target)
    assert generation_of(target) in ("old", "new")
    assert sorted(path.name for path in target.parent.iterdir()) == ["target"]


def test_a_folder_left_aside_by_a_killed_fallback_swap_is_put_back(sandbox):
    target = sandbox.root / "place" / "target"
    fill(target, "old")
    body = textwrap.dedent(f"""
        from pathlib import Path
        from engine.atomic import staging_folder, swap_into_place
        staging = staging_folder(Path({str(target)!r}))
        swap_into_place(staging, Path({str(target)!r}))
    """)
    assert run_child(sandbox, body, fault="swap:after-aside", fallback=True).returncode == KILLED
    assert not target.exists()  # what main left for good: the folder only under a hidden name
    recover_leftovers(target)
    assert target.is_dir() and not hidden(target.parent)


def test_a_file_write_killed_before_its_rename_keeps_the_old_file_and_loses_the_temporary(sandbox):
    path = sandbox.root / "place" / "notes.json"
    atomic_write_text(path, '{"old": true}')
    body = f"from engine.atomic import atomic_write_text\natomic_write_text({str(path)!r}, '{{\"new\": true}}')"
    assert run_child(sandbox, body, fault="write:before-replace").returncode == KILLED
    assert json.loads(path.read_text()) == {"old": True} and hidden(path.parent)
    recover_leftovers(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["notes.json"]


def test_leftovers_of_a_running_writer_are_not_touched(tmp_path):
    target = tmp_path / "target"
    fill(target, "old")
    staging = staging_folder(target)  # this process is alive, so its staging is its own
    recover_leftovers(target)
    assert staging.is_dir()


# -- concurrency -------------------------------------------------------------------------

def swap_from_threads(target, writers: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(number: int) -> None:
        staging = staging_folder(target)
        fill(staging, f"writer {number}")
        start.wait()
        try:
            swap_into_place(staging, target)
        except BaseException as error:  # noqa: BLE001 - every failure is the finding
            errors.append(error)

    threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "fallback"])
def test_concurrent_swaps_of_one_folder_all_succeed_and_leave_it_whole(tmp_path, monkeypatch, fallback):
    import engine.atomic as atomic

    if fallback:
        monkeypatch.setattr(atomic, "_exchange", lambda first, second: False)
    target = tmp_path / "target"
    fill(target, "old")
    assert swap_from_threads(target, 30) == []
    assert generation_of(target).startswith("writer ")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["target"]


def test_concurrent_cache_writers_keep_every_entry(tmp_path):
    from engine.scoring import LogitStore

    key, writers, rows_each = "k" * 64, 8, 20
    start = threading.Barrier(writers)
    row = np.log(np.array([0.5, 0.25, 0.25], dtype=np.float32))

    def write(number: int) -> None:
        store = LogitStore(tmp_path)
        entries = store.load(key, 3)
        start.wait()
        for index in range(rows_each):
            entries[f"writer{number}-{index}"] = row
            store.save(key, 3)

    threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(LogitStore(tmp_path).load(key, 3)) == writers * rows_each


def test_two_simulations_at_once_keep_the_union_of_their_logits(sandbox, gss):
    from engine.scoring import LogitStore, text_hash
    from engine.simulate import personas_for

    personas = personas_for(gss, gss.demographics.index[:24])
    body = textwrap.dedent("""
        from engine.models import ModelConfig, load_model
        from engine.scoring import option_logits
        from engine.simulate import personas_for
        from engine.surveys import load_survey
        survey = load_survey("gss2018")
        personas = personas_for(survey, survey.demographics.index[:24])
        first, last = int(sys.argv[1]), int(sys.argv[2])
        option_logits(load_model(ModelConfig(base="tiny")), survey.question("natenrgy"), survey.fields,
                      personas[first:last])
    """)
    children = [subprocess.Popen([sys.executable, "-c", child_code(body), first, last], env=sandbox.env(), cwd=sandbox.root,
                                 stderr=subprocess.PIPE, text=True) for first, last in (("0", "14"), ("10", "24"))]
    for child in children:
        assert child.wait(timeout=300) == 0, child.stderr.read()[-2000:]
    (path,) = (sandbox.cache / "logits").glob("*.npz")
    with np.load(path) as stored:
        key = str(stored["key"])
    assert LogitStore(path.parent).read(key, 3).keys() == {text_hash(persona) for persona in personas}


# -- uploads -----------------------------------------------------------------------------

# The user survey of tests/test_surveys.py, its CSV beside it.
SPEC = textwrap.dedent(SURVEY_SPEC).replace('file = "mine/export.csv"', 'file = "export.csv"').encode()
OLD_CSV = b"ID,Gender,How much do you like it?\n1,Female,A lot\n2,Male,Somewhat\n"
NEW_CSV = OLD_CSV + b"3,Male,Not at all\n"


@pytest.mark.parametrize("point, fallback", [("swap:before-exchange", False), ("swap:after-exchange", False),
                                             ("swap:after-aside", True), ("swap:after-rename", True)])
def test_a_reupload_killed_mid_swap_keeps_the_survey(sandbox, point, fallback):
    from engine.surveys.registry import add_user_survey, list_surveys, load_survey, user_survey_dir

    add_user_survey(SPEC, OLD_CSV, "export.csv")
    body = f"from engine.surveys.registry import add_user_survey\nadd_user_survey({SPEC!r}, {NEW_CSV!r}, 'export.csv')"
    assert run_child(sandbox, body, fault=f"{point}@mine", fallback=fallback).returncode == KILLED
    assert hidden(user_survey_dir())

    assert "mine" in {entry.id for entry in list_surveys()}  # listing recovers
    assert load_survey("mine").n_respondents in (2, 3)
    assert sorted(path.name for path in user_survey_dir().iterdir()) == ["mine"]


# -- training ----------------------------------------------------------------------------

def train_child(sandbox, out, *extra, fault=None, fallback=False):
    return run_child(sandbox, CLI_BODY, *TRAIN, "--out", out, *extra, fault=fault, fallback=fallback)


# Checkpoints are saved after steps 1 and 2 (the first lands by a plain rename, the second
# replaces the first); the adapter replaces the checkpoint after step 3.
TRAINING_POINTS = [
    ("train:checkpointed@2", False),
    ("swap:before-exchange@.checkpoint", False),
    ("swap:after-exchange@.checkpoint", False),
    ("swap:after-aside@.checkpoint", True),  # on main: only `.old-.checkpoint-PID` left, refused
    ("adapter:staged@out", False),  # on main: out/ missing, the adapter hidden in a staging folder
    ("swap:before-exchange@out", False),
    ("swap:after-exchange@out", False),
    ("swap:after-aside@out", True),
    ("swap:after-rename@out", True),
]


@pytest.mark.parametrize("point, fallback", TRAINING_POINTS)
def test_training_killed_at_any_point_resumes_to_the_finished_adapter(sandbox, point, fallback):
    out = sandbox.root / "runs" / "out"
    killed = train_child(sandbox, out, fault=point, fallback=fallback)
    assert killed.returncode == KILLED, killed.stderr[-2000:]
    assert hidden(out.parent), "the kill left nothing to recover, so this test shows nothing"

    resumed = train_child(sandbox, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"] == 3 and [record["step"] for record in manifest["loss_curve"]] == [1, 2, 3]
    from safetensors.torch import load_file

    assert load_file(out / "adapter_model.safetensors")
    assert hidden(out.parent) == []


# -- resuming from a planted or damaged checkpoint ----------------------------------------

class Planted:
    """A pickle that, when loaded, creates the file `marker`: code run by a checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """The folder of a TRAIN run interrupted after its checkpoint at step 2."""
    import engine.training.trainer as trainer
    from engine.training.config import TrainConfig

    out = tmp_path_factory.mktemp("interrupted") / "out"
    config = TrainConfig(out=str(out), base_model="tiny", max_steps=3, batch_size=4, eval_every=1, eval_examples=8,
                         max_examples=40)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "write_adapter", interrupt)
        with pytest.raises(KeyboardInterrupt):
            trainer.train(config)
    return out


def planted_copy(interrupted_run, sandbox):
    import shutil

    out = sandbox.root / "out"
    shutil.copytree(interrupted_run, out)
    return out, out / ".checkpoint"


def test_resume_never_loads_a_planted_pickle(interrupted_run, sandbox):
    import torch

    out, checkpoint = planted_copy(interrupted_run, sandbox)
    marker = sandbox.root / "code-ran"
    torch.save({"adapter": Planted(marker)}, checkpoint / "tensors.pt")  # main's checkpoint file
    torch.load(checkpoint / "tensors.pt", weights_only=False)  # what `--resume` did on main
    assert marker.exists(), "the planted file runs no code, so this test shows nothing"
    marker.unlink()

    result = sandbox.run(*TRAIN, "--out", out, "--resume")
    assert result.code == 0, result.err
    assert not marker.exists()
    assert json.loads((out / "manifest.json").read_text())["steps"] == 3


def garbage(path):
    path.write_bytes(b"\x00" * 64)


def truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def renamed_tensor(path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    first = sorted(tensors)[0]
    tensors["planted." + first] = tensors.pop(first)
    save_file(tensors, path)


def reshaped_tensor(path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    first = sorted(name for name in tensors if tensors[name].dim() == 2)[0]
    tensors[first] = tensors[first][:, :1].contiguous()
    save_file(tensors, path)


def scheduler_of_another_kind(path):
    state = json.loads(path.read_text())
    state["scheduler"]["last_epoch"] = "import os"
    path.write_text(json.dumps(state))


def run_of_another_kind(path):
    state = json.loads(path.read_text())
    state["run"]["stale"] = "many"
    path.write_text(json.dumps(state))


DAMAGED_CHECKPOINTS = [
    ("adapter.safetensors", "pickle"), ("optimizer.safetensors", "pickle"), ("best_adapter.safetensors", "pickle"),
    ("state.json", "pickle"), ("adapter.safetensors", garbage), ("optimizer.safetensors", truncated),
    ("best_adapter.safetensors", renamed_tensor), ("adapter.safetensors", reshaped_tensor),
    ("optimizer.safetensors", renamed_tensor), ("optimizer.safetensors", reshaped_tensor),
    ("state.json", truncated), ("state.json", scheduler_of_another_kind),
    ("state.json", run_of_another_kind), ("optimizer.safetensors", "missing"),
]


@pytest.mark.parametrize("name, damage", DAMAGED_CHECKPOINTS,
                         ids=[f"{name}-{getattr(damage, '__name__', damage)}" for name, damage in DAMAGED_CHECKPOINTS])
def test_a_damaged_or_planted_checkpoint_is_one_clear_error(interrupted_run, sandbox, name, damage):
    import pickle

    from harness import assert_clear_error

    out, checkpoint = planted_copy(interrupted_run, sandbox)
    marker = sandbox.root / "code-ran"
    if damage == "pickle":
        (checkpoint / name).write_bytes(pickle.dumps(Planted(marker)))
    elif damage == "missing":
        (checkpoint / name).unlink()
    else:
        damage(checkpoint / name)
    assert_clear_error(sandbox.run(*TRAIN, "--out", out, "--resume"), name)
    assert not marker.exists()
    assert not (out / "manifest.json").exists()
