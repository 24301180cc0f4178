"""Side-by-side timing of logit read-out against generate-and-parse.

Both methods answer the same question for the same personas with the same model in one
run; each is warmed up on a few personas first (the CPU's matrix kernels are prepared per
shape on first use), then timed. The logit read-out bypasses its cache, so the model really
runs. Rates are persona-questions per second.

    focusgroup benchmark scoring --format json
"""

from __future__ import annotations

import platform
import time

import torch

from engine.errors import FocusgroupError
from engine.generate import generate_answers
from engine.models import LoadedModel
from engine.scoring import option_logits
from engine.simulate import personas_for
from engine.surveys.model import Survey
from engine.validation import check_range

WARM_UP = 64


def benchmark_scoring(
    loaded: LoadedModel, survey: Survey, question_id: str, n_personas: int = 256,
    temperature: float = 1.0, seed: int = 0,
) -> dict:
    check_range(n_personas, "The number of personas (--personas)", low=1)
    question = survey.question(question_id)
    index = survey.demographics.index[:n_personas + WARM_UP]  # a larger request takes every respondent
    personas = personas_for(survey, index)
    warm, timed = personas[:WARM_UP], personas[WARM_UP:]
    if not timed:
        raise FocusgroupError(f"{survey.id!r} has only {len(personas)} respondents and the first {WARM_UP} warm the "
                              "model up, so none is left to time; time a larger survey.")

    option_logits(loaded, question, survey.fields, warm, use_cache=False)
    started = time.perf_counter()
    option_logits(loaded, question, survey.fields, timed, use_cache=False)
    logit_seconds = time.perf_counter() - started

    generate_answers(loaded, question, survey.fields, warm, temperature, seed=seed)
    started = time.perf_counter()
    generated = generate_answers(loaded, question, survey.fields, timed, temperature, seed=seed)
    generate_seconds = time.perf_counter() - started

    logit_rate, generate_rate = len(timed) / logit_seconds, len(timed) / generate_seconds
    return {
        "survey": survey.id,
        "question": question.id,
        "model": loaded.config.name,
        "device": loaded.device,
        "dtype": loaded.dtype,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "n_personas": len(timed),
        "temperature": temperature,
        "logit_seconds": round(logit_seconds, 3),
        "generate_seconds": round(generate_seconds, 3),
        "logit_per_s": round(logit_rate, 2),
        "generate_per_s": round(generate_rate, 2),
        "speedup": round(logit_rate / generate_rate, 2),
        "generate_success_rate": round(generated.success_rate, 4),
    }
