"""Side-by-side timing of logit read-out against generate-and-parse, and against the
machine's roofline.

Both methods answer the same question for the same personas with the same model in one
run; each is warmed up on a few personas first (the CPU's matrix kernels are prepared per
shape on first use), then timed. The logit read-out bypasses its cache, so the model really
runs. Rates are persona-questions per second.

The roofline is the bare decoder's forward pass over the same personas' tokens in the same
length-sorted, padded batches of the same size, already tokenised, with no shared prefix,
no key/value cache and no output head: what the model alone costs on this machine. The
engine's rate divided by it (`roofline_ratio`) says how much the engine adds around the
model, and survives a noisy machine because both are timed in one run.

    focusgroup benchmark scoring --format json
"""

from __future__ import annotations

import platform
import time

import torch

from engine.errors import FocusgroupError
from engine.generate import generate_answers
from engine.models import LoadedModel
from engine.scoring import DEFAULT_BATCH_SIZE, option_logits, padded_batch, split_model, tokenize_prompts
from engine.simulate import personas_for
from engine.surveys.model import Survey
from engine.validation import check_range

WARM_UP = 64


def benchmark_scoring(
    loaded: LoadedModel, survey: Survey, question_id: str, n_personas: int = 256,
    temperature: float = 1.0, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict:
    check_range(n_personas, "The number of personas (--personas)", low=1)
    check_range(batch_size, "The batch size (--batch-size)", low=1, high=4096)
    question = survey.question(question_id)
    index = survey.demographics.index[:n_personas + WARM_UP]  # a larger request takes every respondent
    personas = personas_for(survey, index)
    warm, timed = personas[:WARM_UP], personas[WARM_UP:]
    if not timed:
        raise FocusgroupError(f"{survey.id!r} has only {len(personas)} respondents and the first {WARM_UP} warm the "
                              "model up, so none is left to time; time a larger survey.")

    option_logits(loaded, question, survey.fields, warm, batch_size=batch_size, use_cache=False)
    started = time.perf_counter()
    option_logits(loaded, question, survey.fields, timed, batch_size=batch_size, use_cache=False)
    logit_seconds = time.perf_counter() - started

    roofline_seconds = roofline(loaded, question, survey.fields, warm, timed, batch_size)

    generate_answers(loaded, question, survey.fields, warm, temperature, seed=seed)
    started = time.perf_counter()
    generated = generate_answers(loaded, question, survey.fields, timed, temperature, seed=seed)
    generate_seconds = time.perf_counter() - started

    logit_rate, generate_rate = len(timed) / logit_seconds, len(timed) / generate_seconds
    roofline_rate = len(timed) / roofline_seconds
    return {
        "survey": survey.id,
        "question": question.id,
        "model": loaded.config.name,
        "device": loaded.device,
        "dtype": loaded.dtype,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "n_personas": len(timed),
        "batch_size": batch_size,
        "temperature": temperature,
        "logit_seconds": round(logit_seconds, 3),
        "generate_seconds": round(generate_seconds, 3),
        "logit_per_s": round(logit_rate, 2),
        "generate_per_s": round(generate_rate, 2),
        "speedup": round(logit_rate / generate_rate, 2),
        "roofline_seconds": round(roofline_seconds, 3),
        "roofline_per_s": round(roofline_rate, 2),
        "roofline_ratio": round(logit_rate / roofline_rate, 3),
        "generate_success_rate": round(generated.success_rate, 4),
    }


def roofline(loaded: LoadedModel, question, fields, warm: list[str], timed: list[str], batch_size: int) -> float:
    """Seconds the bare decoder takes over `timed`'s persona tokens, batched as the engine
    batches them (length-sorted, right-padded), after a warm-up pass over `warm`'s."""
    decoder, _ = split_model(loaded.model)
    device = next(loaded.model.parameters()).device
    pad = loaded.tokenizer.pad_token_id

    def batches(personas):
        _, suffixes = tokenize_prompts(loaded.tokenizer, question, fields, personas, None)
        suffixes.sort(key=len)
        return [padded_batch(suffixes[start:start + batch_size], pad)[0].to(device)
                for start in range(0, len(suffixes), batch_size)]

    def run(prepared):
        with torch.inference_mode():
            for batch in prepared:
                decoder(input_ids=batch, use_cache=False)

    run(batches(warm))
    prepared = batches(timed)
    started = time.perf_counter()
    run(prepared)
    return time.perf_counter() - started


def benchmark_lines(result: dict) -> list[str]:
    """The plain-text report of `benchmark_scoring`."""
    return [
        f"{result['n_personas']} personas, {result['model']} on {result['device']} ({result['dtype']}, "
        f"{result['threads']} threads, batches of {result['batch_size']})",
        f"  logit read-out     {result['logit_per_s']:>8.1f} persona-questions/s",
        f"  bare model         {result['roofline_per_s']:>8.1f} persona-questions/s (roofline: decoder alone, "
        f"same tokens and batches); engine at {result['roofline_ratio']:.0%} of it",
        f"  generate-and-parse {result['generate_per_s']:>8.1f} persona-questions/s "
        f"(parsed {result['generate_success_rate']:.0%})",
        f"  speedup            {result['speedup']:>8.1f}x over generate-and-parse",
    ]
