"""Generate-and-parse: the paper's way of reading answers, kept as the comparison baseline.

Each persona's full prompt is run through `model.generate` for up to 8 new tokens at
temperature T (greedy at T = 0); the first valid option in the reply is its answer
(`engine.prompts.parse_answer`). Replies with no valid option count as parse failures and
are reported as the success rate. One call gives one sampled answer per persona, where
`engine.scoring` gives the exact distribution in one forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.metrics import check_temperature
from engine.models import LoadedModel
from engine.prompts import parse_answer, render_prompt
from engine.scoring import Progress
from engine.surveys.model import MISSING, DemographicField, Question

MAX_NEW_TOKENS = 8


@dataclass
class GeneratedAnswers:
    """Parsed option indices (-1 where the reply held no valid option) and the raw replies."""

    answers: np.ndarray
    replies: list[str]

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.answers != MISSING)) if len(self.answers) else 0.0


def generate_answers(
    loaded: LoadedModel,
    question: Question,
    fields: tuple[DemographicField, ...],
    personas: Sequence[str],
    temperature: float = 1.0,
    stimulus: str | None = None,
    seed: int = 0,
    batch_size: int = 32,
    max_new_tokens: int = MAX_NEW_TOKENS,
    progress: Progress | None = None,
) -> GeneratedAnswers:
    """Sample one reply per persona and parse it."""
    import torch

    check_temperature(temperature)  # below its minimum, logits / T overflow into NaN probabilities
    tokenizer, model = loaded.tokenizer, loaded.model
    device = next(model.parameters()).device
    texts = [render_prompt(tokenizer, question, fields, persona, stimulus).text for persona in personas]
    generator_seed = torch.Generator().manual_seed(seed)
    replies: list[str] = []
    tokenizer.padding_side = "left"  # generation continues from the last real token
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(device)
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator_seed)))
            sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} \
                if temperature > 0 else {"do_sample": False}
            with torch.inference_mode():
                output = model.generate(
                    **batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling,
                )
            new_tokens = output[:, batch.input_ids.shape[1]:]
            replies.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
            if progress is not None:
                progress(len(replies), len(texts))
    finally:
        tokenizer.padding_side = "right"
    answers = np.array([parse_answer(reply, question) for reply in replies], dtype=object)
    return GeneratedAnswers(np.array([MISSING if a is None else a for a in answers], dtype=int), replies)
