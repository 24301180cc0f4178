"""Data-parallel scoring: two processes under `accelerate launch` give what one process gives."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from engine.cli import main
from engine.models import cache_root
from engine.parallel import shared_scoring

EVALUATE = ["evaluate", "--model", "tiny", "--questions", "natenrgy", "natspac", "--format", "json"]


def test_one_process_scores_every_persona_itself():
    texts = {"a": "18-29", "b": "30-44", "c": "45-59"}
    scores = shared_scoring(lambda lines: [np.array([len(line)]) for line in lines], texts)
    assert list(scores) == ["a", "b", "c"] and [s[0] for s in scores.values()] == [5, 5, 5]
    assert shared_scoring(lambda lines: pytest.fail("nothing to score"), {}) == {}


@pytest.mark.slow
def test_two_launched_processes_evaluate_as_one_does(tmp_path, capsys):
    """The same numbers up to float rounding: the shares batch personas differently, so
    padding widths (and summation order) differ."""
    assert main(EVALUATE) == 0
    alone = json.loads(capsys.readouterr().out)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "engine.cli", *EVALUATE]
    # A logit cache of its own (the converted model linked in), so the processes really score.
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "models").symlink_to(cache_root() / "models")
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "FOCUSGROUP_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    together = json.loads(result.stdout)  # printed once, by the lead process
    for mine, theirs in zip(alone["questions"], together["questions"], strict=True):
        assert mine["id"] == theirs["id"]
        np.testing.assert_allclose(mine["population"]["simulated"], theirs["population"]["simulated"], atol=1e-5)
        assert mine["individual"]["model"]["log_loss"] == pytest.approx(theirs["individual"]["model"]["log_loss"],
                                                                       abs=1e-4)
    assert len(list((tmp_path / "cache" / "logits").glob("*.npz"))) == 2  # one file per question, written
