"""A damaged or planted logit cache is rebuilt, never trusted and never fatal.

Each case scores personas with the tiny model into a fresh cache, damages the cache file
one way, and reads again: the result must equal the fresh computation, the model must have
re-scored exactly the rows that could not be trusted, and the file must be whole again.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine.scoring as scoring
from engine.errors import FocusgroupError
from engine.scoring import LogitStore, option_logits
from engine.simulate import personas_for

N_PERSONAS = 6


def save(path, arrays) -> None:
    with open(path, "wb") as handle:  # np.savez would add .npz to a name without it
        np.savez(handle, **arrays)


def as_directory(path, arrays) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside.txt").write_text("not a cache file")


def fabricated(path, arrays) -> None:
    planted = np.log(np.tile([0.98, 0.01, 0.01], (len(arrays["keys"]), 1))).astype(np.float32)
    save(path, {**arrays, "key": np.array("f" * 64), "logits": planted})


DAMAGES = {
    "empty file": (lambda path, arrays: path.write_bytes(b""), N_PERSONAS),
    "truncated zip": (lambda path, arrays: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]), N_PERSONAS),
    "not numpy": (lambda path, arrays: path.write_bytes(b"\x80\x04 not a zip at all"), N_PERSONAS),
    "a directory": (as_directory, N_PERSONAS),
    "too few columns": (lambda path, arrays: save(path, {**arrays, "logits": arrays["logits"][:, :2]}), N_PERSONAS),
    "one row too many": (lambda path, arrays: save(path, {**arrays, "logits": np.vstack([arrays["logits"]] * 2)[:7]}),
                         N_PERSONAS),
    "one-dimensional logits": (lambda path, arrays: save(path, {**arrays, "logits": arrays["logits"].ravel()}),
                               N_PERSONAS),
    "missing member": (lambda path, arrays: save(path, {"key": arrays["key"], "keys": arrays["keys"]}), N_PERSONAS),
    "pickled keys": (lambda path, arrays: save(path, {**arrays, "keys": arrays["keys"].astype(object)}), N_PERSONAS),
    "keys not strings": (lambda path, arrays: save(path, {**arrays, "keys": np.arange(N_PERSONAS)}), N_PERSONAS),
    "integer logits": (lambda path, arrays: save(path, {**arrays, "logits": arrays["logits"].astype(int)}),
                       N_PERSONAS),
    "another key, fabricated logits": (fabricated, N_PERSONAS),
    "a NaN row": (lambda path, arrays: save(path, {**arrays, "logits": replaced(arrays, 2, np.nan)}), 1),
    "an infinite row": (lambda path, arrays: save(path, {**arrays, "logits": replaced(arrays, 1, -np.inf)}), 1),
    "planted positive logits": (lambda path, arrays: save(path, {**arrays, "logits": replaced(arrays, 3, 2.0)}), 1),
    "probabilities summing past one": (
        lambda path, arrays: save(path, {**arrays, "logits": replaced(arrays, 4, np.log(0.9))}), 1),
}


def replaced(arrays, row: int, value: float) -> np.ndarray:
    logits = arrays["logits"].copy()
    logits[row] = value
    return logits


@pytest.fixture
def personas(gss):
    return personas_for(gss, gss.demographics.index[:N_PERSONAS])


def counting_scorer(monkeypatch) -> list[int]:
    scored: list[int] = []
    original = scoring.score_personas

    def counting(loaded, question, fields, texts, *args):
        scored.append(len(texts))
        return original(loaded, question, fields, texts, *args)

    monkeypatch.setattr(scoring, "score_personas", counting)
    return scored


@pytest.mark.parametrize("damage, rescored", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_cache_is_rebuilt_to_the_fresh_result(sandbox, tiny, gss, personas, monkeypatch, damage, rescored):
    question, folder = gss.question("natenrgy"), sandbox.cache / "logits"
    fresh = option_logits(tiny, question, gss.fields, personas, store=LogitStore(folder))
    (path,) = folder.glob("*.npz")
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    damage(path, arrays)

    scored = counting_scorer(monkeypatch)
    again = option_logits(tiny, question, gss.fields, personas, store=LogitStore(folder))
    np.testing.assert_allclose(again, fresh, atol=1e-6)
    assert scored == [rescored]

    scored.clear()  # the file is whole again: a third read needs no model
    from_disk = option_logits(tiny, question, gss.fields, personas, store=LogitStore(folder))
    np.testing.assert_array_equal(from_disk, again)
    assert scored == []


def test_the_cache_keeps_only_rows_that_are_log_probabilities():
    rows = np.log(np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.6], [0.1, 0.1, 0.1]]))
    rows = np.vstack([rows, [[-1.0, np.nan, -1.0]], [[0.5, -3.0, -3.0]]])
    assert scoring.valid_logprob_rows(rows).tolist() == [True, False, True, False, False]


def test_a_model_with_non_finite_scores_is_refused_and_nothing_is_cached(sandbox, gss, personas):
    import torch

    from engine.models import ModelConfig, _load_model

    broken = _load_model.__wrapped__(ModelConfig(base="tiny", dtype="float32"))
    with torch.no_grad():
        broken.model.get_output_embeddings().weight.fill_(float("nan"))
    folder = sandbox.cache / "logits"
    with pytest.raises(FocusgroupError, match="non-finite scores.*adapter"):
        option_logits(broken, gss.question("natenrgy"), gss.fields, personas, store=LogitStore(folder))
    assert not list(folder.glob("*.npz"))


@pytest.mark.parametrize("damage", ["a directory", "truncated zip", "another key, fabricated logits"])
def test_simulate_on_a_damaged_cache_gives_the_same_answer(sandbox, damage):
    command = ("simulate", "--question", "natenrgy", "--model", "tiny", "--personas", "8", "--no-baselines",
               "--format", "json")
    first = sandbox.run(*command)
    assert first.code == 0, first.err
    for path in (sandbox.cache / "logits").glob("*.npz"):
        with np.load(path) as stored:
            arrays = {name: stored[name] for name in stored.files}
        DAMAGES[damage][0](path, arrays)
    again = sandbox.run(*command)
    assert again.code == 0 and "Traceback" not in again.err, again.err
    assert again.out == first.out


def test_temporary_files_of_a_killed_cache_writer_are_swept(sandbox, tiny, gss, personas):
    import subprocess

    finished = subprocess.Popen(["true"])
    finished.wait()  # its pid now names a writer that is no longer running
    folder = sandbox.cache / "logits"
    folder.mkdir(parents=True)
    leftover = folder / f".tmp-{finished.pid}-abcdefgh-{'0' * 32}.npz"
    leftover.write_bytes(b"half a cache file")
    option_logits(tiny, gss.question("natenrgy"), gss.fields, personas, store=LogitStore(folder))
    assert not leftover.exists() and len(list(folder.glob("*.npz"))) == 1
