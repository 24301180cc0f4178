"""Answer logits: one forward pass per persona reads the model's scores for every option.

For a question and a list of personas, `option_logits` returns an array [personas, options]
of log-probabilities: the next-token probability of each option's answer tokens
(`engine.prompts.answer_token_ids`), summed over its variants, in log space. Their
softmax is the persona's answer distribution; what they leave to other tokens is ignored. Temperature is applied later to these numbers
(`engine.metrics.apply_temperature`), so changing it never runs the model again.

How the work is shared: every persona asked one question shares the prompt up to the
persona (system text, stimulus, question, options). That prefix runs through the model
once; its key/value cache is viewed (never copied) across a batch of personas, and only the
persona tokens run per respondent. Identical personas are scored once, and personas are batched by
length so little padding is computed. Padding goes on the right, where causal attention
keeps it from touching real tokens, so no attention mask is needed.

Results are cached in memory and on disk (`LogitStore`), keyed by the model fingerprint,
PROMPT_VERSION and the exact prompt text, so a survey, question, stimulus or adapter change
can never reuse stale logits. Under `accelerate launch`, the processes share the personas
to score (`engine.parallel`). Nothing read from the disk cache is trusted (see
`LogitStore`), and scores that are not finite are refused rather than cached.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import shutil
import zipfile
import zlib
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine.atomic import atomic_save_npz, recover_folder
from engine.errors import FocusgroupError
from engine.models import LoadedModel, cache_root
from engine.parallel import shared_scoring, world_size
from engine.prompts import PROMPT_VERSION, answer_token_ids, render_prompt, shown_order
from engine.surveys.model import DemographicField, Question

Progress = Callable[[int, int], None]
DEFAULT_BATCH_SIZE = 32
LENGTH_BUCKET = 8
# Option log-probabilities are <= 0 and their probabilities sum to at most 1; float32
# rounding may overshoot by far less than this.
LOGPROB_TOLERANCE = 1e-3
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def text_hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


class LogitStore:
    """Per-prefix files of persona-hash -> option logits, checked on every read and merged
    on every write.

    A file holds its full cache key, the persona hashes and an array [personas, options].
    Nothing read from disk is trusted: a file that cannot be read, is not a file, belongs
    to another key or has the wrong shape counts as empty, and a row that is not a valid
    set of option log-probabilities (finite, <= 0, probabilities summing to at most 1)
    counts as missing; what is missing is scored again and written back. A writer holds an
    exclusive lock (fcntl.flock on `<file>.lock` beside it) while it reads, merges and
    replaces the file, so runs scoring different personas at once keep all their results.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = folder or cache_root() / "logits"
        self.memory: dict[str, dict[str, np.ndarray]] = {}
        self.swept = False  # the temporary files of killed writers are removed once

    def path(self, key: str) -> Path:
        return self.folder / f"{key[:32]}.npz"

    def load(self, key: str, options: int) -> dict[str, np.ndarray]:
        """The valid cached rows of `key`, whose question has `options` options."""
        if key not in self.memory:
            self.memory[key] = self.read(key, options)
        return self.memory[key]

    def read(self, key: str, options: int) -> dict[str, np.ndarray]:
        try:
            with np.load(self.path(key), allow_pickle=False) as stored:
                arrays = stored["key"], stored["keys"], stored["logits"]
        except UNREADABLE:
            return {}  # rebuilt, never trusted
        return valid_entries(key, *arrays, options)

    def save(self, key: str, options: int) -> None:
        """Write this key's entries merged with what other runs wrote meanwhile. A cache that
        cannot be written only costs time later, so that is no error."""
        entries = self.memory[key]
        if not entries:
            return
        path = self.path(key)
        if not self.swept:
            recover_folder(self.folder)
            self.swept = True
        try:
            with exclusive_lock(path.with_name(path.name + ".lock")):
                entries.update({k: row for k, row in self.read(key, options).items() if k not in entries})
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)  # a folder where the cache file belongs is replaced
                atomic_save_npz(path, key=np.array(key), keys=np.array(list(entries), dtype=str),
                                logits=np.stack(list(entries.values())))
        except OSError:
            pass


@contextmanager
def exclusive_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def valid_entries(key: str, stored_key: np.ndarray, keys: np.ndarray, logits: np.ndarray,
                  options: int) -> dict[str, np.ndarray]:
    """The rows of a cache file that can be trusted: none unless the file is this key's,
    with one row of `options` floats per string key; then each valid log-probability row."""
    if stored_key.shape != () or stored_key.dtype.kind != "U" or str(stored_key) != key:
        return {}
    if keys.ndim != 1 or keys.dtype.kind != "U" or logits.dtype.kind != "f" or logits.shape != (len(keys), options):
        return {}
    return {k: row for k, row, ok in zip(keys.tolist(), logits, valid_logprob_rows(logits)) if ok}


def valid_logprob_rows(logits: np.ndarray) -> np.ndarray:
    """Which rows are option log-probabilities: finite, <= 0, and logsumexp <= 0 (within
    LOGPROB_TOLERANCE), since the options' probabilities cannot sum to more than 1."""
    values = logits.astype(np.float64)
    finite = np.isfinite(values).all(axis=1)
    values = np.where(np.isfinite(values), values, 0.0)
    peak = values.max(axis=1, keepdims=True)
    total = peak[:, 0] + np.log(np.exp(values - peak).sum(axis=1))
    return finite & (values <= LOGPROB_TOLERANCE).all(axis=1) & (total <= LOGPROB_TOLERANCE)


_default_store: LogitStore | None = None


def default_store() -> LogitStore:
    global _default_store
    if _default_store is None:
        _default_store = LogitStore()
    return _default_store


def option_logits(
    loaded: LoadedModel,
    question: Question,
    fields: tuple[DemographicField, ...],
    personas: Sequence[str],
    stimulus: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    store: LogitStore | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Option log-probabilities, shape [len(personas), len(question.options)], float64.

    `personas` are `engine.prompts.render_persona` lines over `fields`. With the vLLM backend
    (`ModelConfig.backend`), vLLM scores them in its own environment, through the same cache.
    """
    if loaded.config.backend == "vllm":
        from engine.vllm_backend import VllmSettings, option_logits_in_vllm_environment

        return option_logits_in_vllm_environment(
            loaded.config.base, question, fields, personas, stimulus, adapter=loaded.config.adapter,
            settings=VllmSettings(dtype=loaded.dtype), progress=progress, use_cache=use_cache)
    return cached_scores(
        loaded.fingerprint, loaded.tokenizer, question, fields, personas, stimulus,
        lambda todo: shared_scoring(
            lambda texts: score_personas(loaded, question, fields, texts, stimulus, batch_size, progress), todo),
        store, use_cache, progress, always_score=world_size() > 1)  # launched processes meet even with nothing to do


def cached_scores(
    fingerprint: str,
    tokenizer,
    question: Question,
    fields: tuple[DemographicField, ...],
    personas: Sequence[str],
    stimulus: str | None,
    score_missing: Callable[[dict[str, str]], dict[str, np.ndarray]],
    store: LogitStore | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    always_score: bool = False,
) -> np.ndarray:
    """The `option_logits` array for `personas`, read from the cache where it can be and
    scored by `score_missing` ({persona hash: persona line} -> {persona hash: scores}) for
    the rest, each distinct persona once; the one cache path of every backend. The key
    holds the model's `fingerprint`, PROMPT_VERSION and the prompt around the persona, so
    nothing stale is ever reused; non-finite scores are refused, never cached. With
    `always_score`, `score_missing` runs even when nothing is missing (launched processes
    must all reach it)."""
    store = store or default_store()
    prompt = render_prompt(tokenizer, question, fields, "", stimulus)
    key = text_hash(fingerprint, PROMPT_VERSION, prompt.prefix, prompt.persona_part)
    options = len(question.options)
    cached = store.load(key, options) if use_cache else {}
    persona_keys = [text_hash(persona) for persona in personas]
    missing = list(dict.fromkeys(k for k in persona_keys if k not in cached))

    if missing or always_score:
        by_key = dict(zip(persona_keys, personas))
        scores = score_missing({k: by_key[k] for k in missing})
        if scores and not np.isfinite(np.stack(list(scores.values()))).all():
            raise FocusgroupError(
                f"The model produced non-finite scores (NaN or infinity) for question {question.id!r}; its adapter is "
                "likely broken (trained with too large a learning rate?): retrain it, or score without it."
            )
        cached.update(scores)
        if use_cache and scores:
            store.save(key, options)
    elif progress is not None:
        progress(len(personas), len(personas))
    return np.stack([cached[k] for k in persona_keys]).astype(np.float64)


def split_model(model):
    """The decoder stack and output head of a causal LM, looking through a peft wrapper."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    return causal_lm.get_decoder(), causal_lm.get_output_embeddings()


def option_token_groups(tokenizer, question: Question, device, option_order: tuple[int, ...] | None = None):
    """All answer-token ids in one tensor, and how many belong to each option, grouped in the
    survey's option order.

    With the options shown in `option_order` (`engine.prompts.render_prompt`), the letter at
    position i names original option option_order[i]; so option j's group holds the tokens
    of the letter at the position where j is shown, and every [B, k] score read through these
    groups is in the original option order whatever order the prompt showed.
    """
    import torch

    by_position = answer_token_ids(tokenizer, question)
    position_of = np.argsort(shown_order(question, option_order))
    option_ids = [by_position[position] for position in position_of]
    flat = torch.tensor([token for ids in option_ids for token in ids], device=device)
    return flat, [len(ids) for ids in option_ids]


def tokenize_prompts(tokenizer, question: Question, fields, personas: Sequence[str], stimulus: str | None,
                     option_order: tuple[int, ...] | None = None):
    """The shared prefix's token ids [1, P] and each persona part's token ids."""
    prompts = [render_prompt(tokenizer, question, fields, persona, stimulus, option_order) for persona in personas]
    prefix = render_prompt(tokenizer, question, fields, "", stimulus, option_order).prefix
    prefix_ids = tokenizer(prefix, add_special_tokens=False, return_tensors="pt").input_ids
    return prefix_ids, [tokenizer(p.persona_part, add_special_tokens=False).input_ids for p in prompts]


def padded_batch(suffixes: Sequence[Sequence[int]], pad: int):
    """Token ids [B, width], right-padded to a multiple of LENGTH_BUCKET (causal attention
    keeps padding away from real tokens, and repeated shapes reuse the CPU's prepared matrix
    kernels), and each row's real length."""
    import torch

    lengths = [len(suffix) for suffix in suffixes]
    width = -(-max(lengths) // LENGTH_BUCKET) * LENGTH_BUCKET
    batch = torch.full((len(suffixes), width), pad, dtype=torch.long)
    for row, suffix in enumerate(suffixes):
        batch[row, : lengths[row]] = torch.tensor(suffix)
    return batch, lengths


def repeated_cache(prefix_cache, rows: int):
    """The prefix's key/value cache seen `rows` times over, without copying it.

    Each layer of a shallow copy views the prefix's keys and values expanded along the batch
    (`Tensor.expand`: no memory). A forward pass appends the persona tokens by
    concatenation, which writes new tensors, so the prefix cache itself is never changed
    and serves every batch; the old way (a deep copy, then `batch_repeat_interleave`) copied
    the prefix twice per batch. Gradients flow through the views, so training shares it.
    """
    batch = copy.copy(prefix_cache)
    batch.layers = []
    for layer in prefix_cache.layers:
        view = copy.copy(layer)
        if getattr(layer, "is_initialized", False) and layer.keys is not None and layer.keys.numel():
            view.keys = layer.keys.expand(rows, *layer.keys.shape[1:])
            view.values = layer.values.expand(rows, *layer.values.shape[1:])
        batch.layers.append(view)
    return batch


def batch_option_logprobs(decoder, head, prefix_cache, suffixes: Sequence[Sequence[int]], option_tokens, pad: int):
    """Log-probabilities [B, k] of each option's answer tokens after prefix + persona.

    `prefix_cache` (of the prefix alone, batch 1) is left as it was (`repeated_cache`), so
    one serves every batch. Personas are right-padded (`padded_batch`). Differentiable, so
    training uses it too.
    """
    import torch

    flat_ids, _ = option_tokens
    batch, lengths = padded_batch(suffixes, pad)
    cache = repeated_cache(prefix_cache, len(suffixes))
    hidden = decoder(input_ids=batch.to(flat_ids.device), cache=cache, use_cache=True).last_hidden_state
    last = hidden[torch.arange(len(suffixes)), torch.tensor(lengths) - 1]
    return option_logprobs_from_hidden(head, last, option_tokens)


def option_logprobs_from_hidden(head, last_hidden, option_tokens):
    """[B, k] option log-probabilities from the last real position's hidden states: the
    full-vocabulary log-softmax, summed (in log space) over each option's answer tokens."""
    import torch

    flat_ids, groups = option_tokens
    token_logprobs = torch.log_softmax(head(last_hidden).float(), dim=-1)[:, flat_ids]
    return torch.stack([chunk.logsumexp(dim=1) for chunk in torch.split(token_logprobs, groups, dim=1)], dim=1)


def score_personas(
    loaded: LoadedModel,
    question: Question,
    fields: tuple[DemographicField, ...],
    personas: Sequence[str],
    stimulus: str | None,
    batch_size: int,
    progress: Progress | None,
) -> list[np.ndarray]:
    """Run the model: the shared prefix once, then the personas in length-sorted batches."""
    import torch

    tokenizer, model = loaded.tokenizer, loaded.model
    device = next(model.parameters()).device
    decoder, head = split_model(model)
    option_tokens = option_token_groups(tokenizer, question, device)
    prefix_ids, suffixes = tokenize_prompts(tokenizer, question, fields, personas, stimulus)
    results: list[np.ndarray | None] = [None] * len(personas)
    with torch.inference_mode():
        # Phase 1: the shared prefix, once.
        prefix_cache = decoder(input_ids=prefix_ids.to(device), use_cache=True).cache

        # Phase 2: personas in batches sorted by length, the prefix cache repeated per row.
        order = np.argsort([len(s) for s in suffixes], kind="stable")
        if progress is not None:
            progress(0, len(personas))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            scores = batch_option_logprobs(decoder, head, prefix_cache, [suffixes[i] for i in rows],
                                           option_tokens, tokenizer.pad_token_id)
            for row, i in enumerate(rows):
                results[i] = scores[row].cpu().numpy()
            if progress is not None:
                progress(min(start + batch_size, len(order)), len(personas))
    return results


def full_prompt_logits(
    loaded: LoadedModel, question: Question, fields: tuple[DemographicField, ...], persona: str,
    stimulus: str | None = None,
) -> np.ndarray:
    """Option log-probabilities from one plain forward pass over the whole prompt (no sharing).

    The reference that `score_personas` must agree with; used by tests.
    """
    import torch

    prompt = render_prompt(loaded.tokenizer, question, fields, persona, stimulus)
    ids = loaded.tokenizer(prompt.text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids.to(next(loaded.model.parameters()).device)).logits[0, -1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return np.array(
        [logprobs[ids_].logsumexp(0).item() for ids_ in map(list, answer_token_ids(loaded.tokenizer, question))]
    )
