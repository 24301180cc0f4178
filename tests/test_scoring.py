"""Logit read-out: shared-prefix scoring equals plain forward passes; caches avoid model calls."""

import numpy as np
import pytest

import engine.scoring as scoring
from engine.generate import generate_answers
from engine.scoring import LogitStore, full_prompt_logits, option_logits
from engine.simulate import personas_for


@pytest.fixture
def personas(gss):
    return personas_for(gss, gss.demographics.index[:40])


def test_shared_prefix_scoring_equals_full_forward_passes(tiny, gss, personas):
    question = gss.question("natenrgy")
    shared = option_logits(tiny, question, gss.fields, personas, batch_size=7, use_cache=False)
    full = np.stack([full_prompt_logits(tiny, question, gss.fields, p) for p in personas[:10]])
    np.testing.assert_allclose(shared[:10], full, atol=1e-4)


def test_scores_do_not_depend_on_batching(tiny, gss, personas):
    question = gss.question("natspac")
    one = option_logits(tiny, question, gss.fields, personas, batch_size=1, use_cache=False)
    many = option_logits(tiny, question, gss.fields, personas, batch_size=16, use_cache=False)
    np.testing.assert_allclose(one, many, atol=1e-4)


def test_a_second_read_comes_from_the_cache_without_the_model(tiny, gss, personas, tmp_path, monkeypatch):
    question = gss.question("natenrgy")
    store = LogitStore(tmp_path / "store")
    first = option_logits(tiny, question, gss.fields, personas, store=store)

    def forbidden(*args, **kwargs):
        raise AssertionError("the model ran although every persona was cached")

    monkeypatch.setattr(scoring, "score_personas", forbidden)
    again_in_memory = option_logits(tiny, question, gss.fields, personas, store=store)
    again_from_disk = option_logits(tiny, question, gss.fields, personas, store=LogitStore(tmp_path / "store"))
    np.testing.assert_array_equal(first, again_in_memory)
    np.testing.assert_array_equal(first, again_from_disk)


def test_cache_is_keyed_by_stimulus(tiny, gss, personas, tmp_path):
    question = gss.question("natenrgy")
    store = LogitStore(tmp_path / "store")
    plain = option_logits(tiny, question, gss.fields, personas[:5], store=store)
    stimulated = option_logits(tiny, question, gss.fields, personas[:5], stimulus="Solar is cheap now.", store=store)
    assert not np.allclose(plain, stimulated)


def test_a_corrupt_cache_file_is_rebuilt(tiny, gss, personas, tmp_path):
    question = gss.question("natenrgy")
    store = LogitStore(tmp_path / "store")
    first = option_logits(tiny, question, gss.fields, personas[:5], store=store)
    for path in (tmp_path / "store").glob("*.npz"):
        path.write_bytes(b"not a numpy file")
    again = option_logits(tiny, question, gss.fields, personas[:5], store=LogitStore(tmp_path / "store"))
    np.testing.assert_allclose(first, again, atol=1e-6)


def test_identical_personas_are_scored_once(tiny, gss, monkeypatch):
    calls = []
    original = scoring.score_personas

    def counting(loaded, question, fields, texts, *args):
        calls.append(len(texts))
        return original(loaded, question, fields, texts, *args)

    monkeypatch.setattr(scoring, "score_personas", counting)
    logits = option_logits(tiny, gss.question("natenrgy"), gss.fields, ["a; b", "a; b", "c; d"], use_cache=False)
    assert calls == [2]
    np.testing.assert_array_equal(logits[0], logits[1])


def test_generate_and_parse_is_reproducible_and_reports_success(tiny, gss, personas):
    question = gss.question("natenrgy")
    first = generate_answers(tiny, question, gss.fields, personas[:6], temperature=1.0, seed=3)
    again = generate_answers(tiny, question, gss.fields, personas[:6], temperature=1.0, seed=3)
    assert first.replies == again.replies
    assert 0.0 <= first.success_rate <= 1.0
    assert np.all((first.answers >= -1) & (first.answers < 3))


def test_progress_starts_at_zero_and_a_cached_read_is_one_final_report(tiny, gss, personas, tmp_path, capsys):
    from engine.cli import progress_bar

    question = gss.question("natcity")
    store = LogitStore(tmp_path / "store")
    scored, cached = [], []
    option_logits(tiny, question, gss.fields, personas, batch_size=16, store=store,
                  progress=lambda done, total: scored.append((done, total)))
    assert scored == [(0, 40), (16, 40), (32, 40), (40, 40)]
    bar = progress_bar("Simulating")
    option_logits(tiny, question, gss.fields, personas, store=store,
                  progress=lambda done, total: (cached.append((done, total)), bar(done, total)))
    assert cached == [(40, 40)]
    assert "Simulating" not in capsys.readouterr().err  # no bar for a wait that never happened


def test_one_prefix_cache_serves_every_batch_unchanged(tiny, gss, personas):
    """The prefix's key/value cache is viewed, not copied, per batch, and a forward pass over
    a batch leaves it as it was (batch 1, same storage, same values)."""
    import torch

    question = gss.question("natenrgy")
    decoder, head = scoring.split_model(tiny.model)
    prefix_ids, suffixes = scoring.tokenize_prompts(tiny.tokenizer, question, gss.fields, personas[:6], None)
    option_tokens = scoring.option_token_groups(tiny.tokenizer, question, "cpu")
    with torch.inference_mode():
        cache = decoder(input_ids=prefix_ids, use_cache=True).cache
        before = [(layer.keys.clone(), layer.keys.data_ptr()) for layer in cache.layers]
        view = scoring.repeated_cache(cache, 6)
        assert all(layer.keys.shape[0] == 6 and layer.keys.data_ptr() == pointer
                   for layer, (_, pointer) in zip(view.layers, before))
        first = scoring.batch_option_logprobs(decoder, head, cache, suffixes, option_tokens, tiny.tokenizer.pad_token_id)
        second = scoring.batch_option_logprobs(decoder, head, cache, suffixes, option_tokens, tiny.tokenizer.pad_token_id)
    for layer, (keys, pointer) in zip(cache.layers, before):
        assert layer.keys.shape[0] == 1 and layer.keys.data_ptr() == pointer
        assert torch.equal(layer.keys, keys)
    torch.testing.assert_close(first, second)
