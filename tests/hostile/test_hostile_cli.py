"""Hostile input to the command line: every bad number, damaged model or adapter, unusable
cache and oversized prompt ends in one clear line and exit status 2 (or the right result),
never a traceback, and touches nothing outside the test's temporary folder.

Each row of a command-line table is (name, builder, expected fragment of the error line); a
builder makes what the case needs inside the sandbox and returns the command line. The
configs the dashboard fills directly (TrainConfig, EvaluationConfig) get a table of their own.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import PROJECT_ROOT, assert_clear_error

SHIPPED = PROJECT_ROOT / "assets" / "adapters" / "gss2018-smollm2"
QUICK = ("--question", "natenrgy", "--personas", "3", "--no-baselines")
TRAIN = ("train", "--base-model", "tiny", "--max-examples", "4")
# A tensor name of the shipped adapter's layout, and its shape in SmolLM2-135M (rank 16, hidden 576).
LORA_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"


def args(*argv):
    return lambda root: list(argv)


def out(root: Path) -> str:
    return str(root / "adapter_out")


# -- numbers argparse lets through ---------------------------------------------------------

NUMBERS = [
    ("benchmark personas zero", args("benchmark", "scoring", "--model", "tiny", "--personas", "0"),
     "--personas must be at least 1"),
    ("benchmark personas negative", args("benchmark", "scoring", "--model", "tiny", "--personas", "-70"),
     "--personas must be at least 1"),
    ("simulate personas zero", args("simulate", *QUICK[:2], "--model", "tiny", "--personas", "0"),
     "--personas must be at least 1"),
    ("negative seed", args("simulate", *QUICK, "--model", "tiny", "--seed", "-1"), "--seed must be between 0"),
    ("seed past 32 bits", args("simulate", *QUICK, "--model", "tiny", "--mode", "generate", "--seed", str(2**64)),
     "--seed must be between 0"),
    ("negative split seed", args("evaluate", "--model", "tiny", "--questions", "natenrgy", "--split-seed", "-1"),
     "--split-seed must be between 0"),
    ("negative train split seed", lambda root: [*TRAIN, "--out", out(root), "--split-seed", "-1"],
     "--split-seed must be between 0"),
    ("a billion samples", args("simulate", *QUICK, "--model", "tiny", "--samples", "1000000000"),
     "--samples must be between 0 and 100,000"),
    ("negative samples", args("simulate", *QUICK, "--model", "tiny", "--samples", "-1"), "--samples"),
    ("infinite epochs", lambda root: [*TRAIN, "--out", out(root), "--epochs", "inf"], "--epochs must be a finite"),
    ("infinite lr", lambda root: [*TRAIN, "--out", out(root), "--lr", "inf"], "--lr must be a finite"),
    ("nan lr", lambda root: [*TRAIN, "--out", out(root), "--lr", "nan"], "--lr must be a finite"),
    ("infinite numeric loss weight", lambda root: [*TRAIN, "--out", out(root), "--numeric-loss-weight", "inf"],
     "--numeric-loss-weight must be a finite"),
    ("nan numeric loss width", lambda root: [*TRAIN, "--out", out(root), "--numeric-loss-width", "nan"],
     "--numeric-loss-width must be a finite"),
    ("nan dropout", lambda root: [*TRAIN, "--out", out(root), "--dropout", "nan"], "--dropout must be a finite"),
    ("nan temperature", args("simulate", *QUICK, "--model", "tiny", "--temperature", "nan"),
     "--temperature must be a finite"),
    ("infinite temperature", args("benchmark", "scoring", "--model", "tiny", "--temperature", "inf"),
     "--temperature must be a finite"),
    ("nan temperature in evaluate", args("evaluate", "--model", "tiny", "--questions", "natenrgy", "--temperature",
                                         "nan"), "--temperature must be a finite"),
    ("denormal temperature", args("simulate", *QUICK, "--model", "tiny", "--temperature", "1e-320"), "pass 0"),
    ("denormal temperature when generating", args("simulate", *QUICK, "--model", "tiny", "--mode", "generate",
                                                  "--temperature", "1e-30"), "pass 0"),
    ("min slice zero", args("evaluate", "--model", "tiny", "--min-slice", "0"), "--min-slice must be at least 2"),
    ("min slice negative", args("evaluate", "--model", "tiny", "--min-slice", "-3"), "--min-slice must be at least 2"),
    ("4-bit tiny model", args("simulate", *QUICK, "--model", "tiny", "--load-in-4bit"), "--load-in-4bit needs real"),
    ("qlora on the tiny model", lambda root: [*TRAIN, "--out", out(root), "--method", "qlora"],
     "--method qlora needs real"),
    ("context k past the maximum", args("simulate", *QUICK, "--model", "tiny", "--context-questions", "auto",
                                        "--context-k", "99"), "between 0 and 20"),
    ("context k negative", args("simulate", *QUICK, "--model", "tiny", "--context-questions", "auto",
                                "--context-k", "-1"), "between 0 and 20"),
    ("context question a path", args("simulate", *QUICK, "--model", "tiny", "--context-questions", "../../etc/passwd"),
     "is not in survey 'gss2018'"),
    ("context question the asked one", args("simulate", *QUICK, "--model", "tiny", "--context-questions", "natenrgy"),
     "its own context"),
    ("context with generate", args("simulate", *QUICK, "--model", "tiny", "--mode", "generate",
                                   "--context-questions", "natsci"), "--mode logits only"),
    ("evaluate context k past the maximum", args("evaluate", "--model", "tiny", "--questions", "natenrgy",
                                                 "--context-k", "21"), "--context-k"),
    ("evaluate context k negative", args("evaluate", "--model", "tiny", "--context-k", "-1"), "--context-k"),
    ("max context past the maximum", lambda root: [*TRAIN, "--out", out(root), "--max-context", "21"],
     "--max-context must be between 0 and 20"),
    ("max context negative", lambda root: [*TRAIN, "--out", out(root), "--max-context", "-1"],
     "--max-context must be between 0 and 20"),
    ("pilot of one respondent", args("simulate", *QUICK, "--model", "tiny", "--pilot-size", "1"),
     "The pilot size (--pilot-size) must be"),
    ("pilot larger than the survey", args("simulate", *QUICK, "--model", "tiny", "--pilot-size", "999999"),
     "The pilot size (--pilot-size) must be"),
    ("pilot file that is not there", lambda root: ["simulate", *QUICK, "--model", "tiny", "--pilot",
                                                   str(root / "nowhere.csv")], "does not exist"),
    ("evaluate pilot of one", args("evaluate", "--model", "tiny", "--pilot-size", "1"), "--pilot-size"),
    ("evaluate pilot repeats zero", args("evaluate", "--model", "tiny", "--pilot-size", "50", "--repeats", "0"),
     "--repeats"),
    ("pilot with generate", args("simulate", *QUICK, "--model", "tiny", "--mode", "generate", "--pilot-size", "50"),
     "--mode logits only"),
    ("ask with one option", args("simulate", "--ask", "Would you buy it?", "--options", "Yes", "--model", "tiny"),
     "--options has 1 option ('Yes'); a question needs at least two"),
    ("ask with options that differ only in case and spaces",
     args("simulate", "--ask", "Would you buy it?", "--options", "Yes", "  YES ", "--model", "tiny"), "repeats 'Yes'"),
    ("ask with 27 options", args("simulate", "--ask", "Pick one", "--options", *map(str, range(27)), "--model", "tiny"),
     "at most 26"),
    ("ask and question together", args("simulate", *QUICK, "--ask", "Would you buy it?", "--options", "Yes", "No",
                                       "--model", "tiny"), "--ask and --question contradict each other"),
    ("ask with a pilot drawn from the survey", args("simulate", "--ask", "Would you buy it?", "--options", "Yes", "No",
                                                    "--pilot-size", "50", "--model", "tiny"),
     "no respondent answered a new question"),
    ("ask with a stimulus longer than the context", args("simulate", "--ask", "Would you buy it?", "--options", "Yes",
                                                         "No", "--stimulus", "word " * 3000, "--model", "tiny"),
     "shorten the stimulus"),
    ("warm start from a folder without an adapter", lambda root: [*TRAIN, "--out", out(root), "--warm-start", str(root)],
     "is not an adapter folder"),
]


# -- choices and paths of the newer commands (banner, import, the vLLM backend) ---------------

BANNER = ("banner", "--model", "tiny", "--questions", "natenrgy", "--personas", "5")


def existing_spec(root: Path) -> list[str]:
    (root / "export.csv").write_text("age,q1\n30,yes\n40,no\n")
    (root / "export.toml").write_text("kept")
    return ["import", str(root / "export.csv")]


def banner_into_a_folder(root: Path) -> list[str]:
    (root / "x.xlsx").mkdir()
    return [*BANNER, "--fields", "sex", "--xlsx", str(root / "x.xlsx")]


CHOICES = [
    ("vllm backend on the tiny model", args("simulate", *QUICK, "--model", "tiny", "--backend", "vllm"),
     "--backend vllm serves real weights"),
    ("vllm backend with 4-bit loading", args("simulate", *QUICK, "--backend", "vllm", "--load-in-4bit"),
     "drop --load-in-4bit"),
    ("banner field that is not there", args(*BANNER, "--fields", "../../etc/passwd"), "no demographic field"),
    ("banner field twice", args(*BANNER, "--fields", "sex", "sex"), "names the field 'sex' twice"),
    ("banner question that is not there", args("banner", "--model", "tiny", "--questions", "natfoo", "--fields", "sex"),
     "natfoo"),
    ("banner workbook named .csv", lambda root: [*BANNER, "--fields", "sex", "--xlsx", str(root / "banner.csv")],
     "must end in .xlsx"),
    ("banner workbook that is a folder", banner_into_a_folder, "is a folder"),
    ("import over an existing spec", existing_spec, "already exists; pass --force"),
    ("import to a spec that is not .toml", lambda root: [*existing_spec(root), "--out", str(root / "spec.txt")],
     "must end in .toml"),
]


@pytest.mark.parametrize("build,fragment", [row[1:] for row in NUMBERS + CHOICES],
                         ids=[row[0] for row in NUMBERS + CHOICES])
def test_a_bad_number_or_choice_is_refused_in_one_line(sandbox, build, fragment):
    assert_clear_error(sandbox.run(*build(sandbox.root)), fragment)


def test_a_refused_import_leaves_the_existing_spec_as_it_was(sandbox):
    assert_clear_error(sandbox.run(*existing_spec(sandbox.root)), "already exists")
    assert (sandbox.root / "export.toml").read_text() == "kept"
    assert sandbox.run(*existing_spec(sandbox.root), "--force").code == 0
    written = sandbox.root / "export.toml"
    assert "[data]" in written.read_text() and written.stat().st_mode & 0o044 == 0o044  # readable, not private


# The dashboard fills the same configs without argparse in between: they refuse on their own.
CONFIGS = [
    ("train lr nan", "TrainConfig", {"learning_rate": math.nan}, "--lr must be a finite"),
    ("train epochs inf", "TrainConfig", {"epochs": math.inf}, "--epochs must be a finite"),
    ("train numeric loss weight inf", "TrainConfig", {"numeric_loss_weight": math.inf}, "--numeric-loss-weight"),
    ("train negative seed", "TrainConfig", {"seed": -1}, "--seed must be between 0"),
    ("evaluate nan temperature", "EvaluationConfig", {"temperature": math.nan}, "zero or positive"),
    ("evaluate tiny temperature", "EvaluationConfig", {"temperature": 1e-320}, "pass 0"),
    ("evaluate negative split seed", "EvaluationConfig", {"split_seed": -1}, "between 0"),
    ("evaluate min slice zero", "EvaluationConfig", {"min_slice": 0}, "at least 2"),
    ("evaluate context k past the maximum", "EvaluationConfig", {"context_k": 21}, "--context-k"),
    ("train max context negative", "TrainConfig", {"max_context": -1}, "--max-context"),
    ("train warm start from nowhere", "TrainConfig", {"warm_start": "/nonexistent/adapter"}, "--warm-start"),
]


@pytest.mark.parametrize("kind,settings,fragment", [row[1:] for row in CONFIGS], ids=[row[0] for row in CONFIGS])
def test_a_config_filled_without_the_command_line_refuses_the_same_numbers(kind, settings, fragment):
    from engine.errors import FocusgroupError
    from engine.evaluate import EvaluationConfig
    from engine.training.config import TrainConfig

    make = {"TrainConfig": lambda: TrainConfig(out="adapter", **settings),
            "EvaluationConfig": lambda: EvaluationConfig(**settings)}[kind]
    with pytest.raises(FocusgroupError, match=re.escape(fragment)):
        make()


# -- damaged adapters and model folders ----------------------------------------------------

def shipped_copy(root: Path, name: str) -> Path:
    folder = root / name
    shutil.copytree(SHIPPED, folder)
    return folder


def write_weights(folder: Path, tensors: dict) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(folder / "adapter_model.safetensors"))


def truncated_weights(root):
    folder = shipped_copy(root, "truncated")
    path = folder / "adapter_model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    return folder


def garbage_weights(root):
    folder = shipped_copy(root, "garbage")
    (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 20)
    return folder


def with_file(name: str, text: str):
    """A copy of the shipped adapter with `name` replaced by `text`."""
    def build(root):
        folder = shipped_copy(root, "damaged")
        (folder / name).write_text(text)
        return folder
    return build


def missing_target_modules(root):
    folder = shipped_copy(root, "wrong_targets")
    config = json.loads((folder / "adapter_config.json").read_text())
    config["target_modules"] = ["no_such_proj"]
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def other_base_without_manifest(root):
    """An adapter whose tensors were made for a model of another width, with no manifest to say so."""
    import torch

    folder = shipped_copy(root, "other_base")
    (folder / "manifest.json").unlink()
    write_weights(folder, {LORA_A: torch.zeros(16, 999)})
    return folder


def diverged_weights(root):
    import torch

    folder = shipped_copy(root, "diverged")
    weights = torch.zeros(16, 576)
    weights[3, 5] = math.nan
    write_weights(folder, {LORA_A: weights})
    return folder


def adapter(build):
    return lambda root: ["simulate", *QUICK, "--adapter", str(build(root))]


ADAPTERS = [
    ("truncated weights", adapter(truncated_weights), "adapter_model.safetensors cannot be read"),
    ("garbage weights", adapter(garbage_weights), "adapter_model.safetensors cannot be read"),
    ("manifest not json", adapter(with_file("manifest.json", "{not json")), "manifest.json cannot be read"),
    ("manifest not an object", adapter(with_file("manifest.json", "[1, 2]")), "not a JSON object"),
    ("manifest base model a string", adapter(with_file("manifest.json", '{"base_model": "SmolLM2"}')),
     "base_model of the wrong type"),
    ("adapter config not json", adapter(with_file("adapter_config.json", "{oops")),
     "adapter_config.json cannot be read"),
    ("adapter config without peft keys", adapter(with_file("adapter_config.json", '{"hello": 1}')),
     "names no peft_type"),
    ("target modules the model lacks", adapter(missing_target_modules), "does not fit the model"),
    ("weights for another base, no manifest", adapter(other_base_without_manifest), "does not fit the model"),
    ("NaN weights", adapter(diverged_weights), "NaN or infinite weights"),
]


@pytest.mark.parametrize("build,fragment", [row[1:] for row in ADAPTERS], ids=[row[0] for row in ADAPTERS])
def test_a_damaged_adapter_is_named_with_the_fix(sandbox, build, fragment):
    result = sandbox.run(*build(sandbox.root))
    assert_clear_error(result, fragment)
    assert str(sandbox.root) in result.err  # the line names the adapter's folder


def model_folder(name: str, fill):
    def build(root):
        folder = root / name
        folder.mkdir()
        fill(folder, root / "cache" / "models" / "SmolLM2-135M-Instruct")
        return ["simulate", *QUICK, "--model", str(folder)]
    return build


def copy_json(folder: Path, real: Path) -> None:
    for path in real.glob("*.json"):
        shutil.copy(path, folder / path.name)


def config_not_json(folder, real):
    copy_json(folder, real)
    (folder / "config.json").write_text("{x")
    (folder / "model.safetensors").symlink_to(real / "model.safetensors")


def truncated_model_weights(folder, real):
    copy_json(folder, real)
    with open(real / "model.safetensors", "rb") as weights:
        (folder / "model.safetensors").write_bytes(weights.read(3000))


MODELS = [
    ("config not json", model_folder("bad_config", config_not_json), "config.json cannot be read"),
    ("no weights", model_folder("no_weights", copy_json), "holds no weights"),
    ("empty folder", model_folder("empty", lambda folder, real: None), "config.json cannot be read"),
    ("truncated weights", model_folder("truncated", truncated_model_weights), "Cannot load the model"),
]


@pytest.mark.parametrize("build,fragment", [row[1:] for row in MODELS], ids=[row[0] for row in MODELS])
def test_a_damaged_model_folder_is_named_with_the_fix(sandbox, build, fragment):
    assert_clear_error(sandbox.run(*build(sandbox.root)), fragment)


# -- the cache, the prompt and the question ------------------------------------------------

def cache_is_a_file(root: Path) -> str:
    path = root / "cache_file"
    path.write_text("not a folder")
    return str(path)


CACHES = [
    ("a file", cache_is_a_file, "it is not a folder"),
    ("a folder nobody can write, even root", lambda root: "/proc", "cannot hold files"),
]


@pytest.mark.parametrize("build,fragment", [row[1:] for row in CACHES], ids=[row[0] for row in CACHES])
def test_an_unusable_cache_is_refused_before_any_model_work(sandbox, monkeypatch, build, fragment):
    monkeypatch.setenv("FOCUSGROUP_CACHE", build(sandbox.root))
    result = sandbox.run("simulate", *QUICK)  # the default model: a usable cache would convert it
    assert_clear_error(result, fragment)
    assert "FOCUSGROUP_CACHE" in result.err and "Converting" not in result.err


@pytest.mark.parametrize("mode", ["logits", "generate"])
def test_a_stimulus_longer_than_the_context_is_refused(sandbox, mode):
    result = sandbox.run("simulate", *QUICK, "--model", "tiny", "--mode", mode, "--stimulus", "word " * 3000)
    assert_clear_error(result, "shorten the stimulus")


# -- inputs that are fine, and must give the right result ----------------------------------

def test_more_personas_than_the_slice_holds_takes_the_whole_slice(sandbox):
    result = sandbox.run("simulate", *QUICK[:2], "--no-baselines", "--model", "tiny", "--slice", "race=other",
                         "--slice", "sex=female", "--personas", str(10**20), "--format", "json")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert 0 < answer["n_personas"] < 200 and answer["n_personas"] >= answer["n_real"]


def test_the_smallest_temperature_gives_a_distribution_not_nan(sandbox):
    result = sandbox.run("simulate", *QUICK, "--model", "tiny", "--temperature", "0.001", "--format", "json")
    assert result.code == 0, result.err
    simulated = json.loads(result.out)["simulated"]
    assert all(isinstance(share, float) for share in simulated.values())  # NaN would print as null
    assert sum(simulated.values()) == pytest.approx(1.0, abs=1e-5)


# -- how errors are printed ----------------------------------------------------------------

def test_a_multiline_library_message_is_printed_as_one_capped_line(sandbox, monkeypatch):
    from engine import cli
    from engine.errors import FocusgroupError

    def echo_a_huge_value(args):
        raise FocusgroupError("Cannot parse the file:\n  line 1\n\tvalue " + "x" * 100_000)

    monkeypatch.setitem(cli.COMMANDS, "surveys", echo_a_huge_value)
    result = sandbox.run("surveys")
    assert_clear_error(result, "Cannot parse the file: line 1 value xxx")
    assert len(result.err.strip().splitlines()) == 1


def test_an_unexpected_exception_is_one_line_asking_for_a_report(sandbox, monkeypatch):
    from engine import cli

    def bug(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(cli.COMMANDS, "surveys", bug)
    result = sandbox.run("surveys")
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.strip() == ("focusgroup: error: unexpected error: ZeroDivisionError: division by zero; please "
                                  "report it (FOCUSGROUP_DEBUG=1 shows the traceback)")
    monkeypatch.setenv("FOCUSGROUP_DEBUG", "1")
    result = sandbox.run("surveys")
    assert result.code == 1 and "Traceback" in result.err and "ZeroDivisionError" in result.err


def test_a_reader_that_stops_early_ends_the_command_quietly(sandbox):
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "simulate", *QUICK, "--model", "tiny", "--samples", "5000",
         "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=sandbox.env(), cwd=sandbox.root)
    assert process.stdout.read(20).startswith(b"{")
    process.stdout.close()  # like `| head -c 20`: the rest of 5,000 samples meets a closed pipe
    errors = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141
    assert "Traceback" not in errors and "BrokenPipeError" not in errors and "focusgroup: error" not in errors
