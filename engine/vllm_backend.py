"""Answer logits served by vLLM: the `engine.scoring.option_logits` contract on another engine.

`vllm_option_logits` returns what `option_logits` returns, an array [personas, options] of
float64 log-probabilities: for each persona, the full-vocabulary log-softmax at the position
after the prompt, read at each option's answer tokens (`engine.prompts.answer_token_ids`)
and combined over their variants with log-sum-exp. The prompt is the same text
(`engine.prompts.render_prompt`), tokenized by the same tokenizer (the model folder's own,
through transformers) and handed to vLLM as token ids, so both engines read the same tokens.

How vLLM is asked: one request per distinct persona, generating one token, with
`logprob_token_ids` set to the answer tokens. vLLM then returns the log-probabilities of
exactly those tokens at the first generated position, taken from the raw model output
(`logprobs_mode="raw_logprobs"`: the log-softmax of the logits before temperature,
penalties or any logits processor, so nothing is renormalised). Every request of a question
shares the prompt up to the persona, and vLLM's automatic prefix caching computes it once.

vLLM pins an older transformers than focusgroup, so it lives in its own environment, and
the transformers engine it is compared with runs in .venv (`transformers_reference`):

    bash scripts/setup_vllm.sh       # creates .venv-vllm (a few minutes, once)
    .venv-vllm/bin/python -m pytest -q tests/test_vllm_agreement.py
    .venv-vllm/bin/python -m engine.vllm_backend --personas 256    # time both engines

From the main environment, `option_logits_in_vllm_environment` has the same signature as
`vllm_option_logits` and runs it in a .venv-vllm subprocess (`--job`), so the command line
and the dashboard can score with vLLM without importing it.

Adapters: a peft LoRA folder is served through vLLM's LoRA support (`enable_lora`,
`LoRARequest`), on CPU and GPU alike; vLLM applies it beside the base weights instead of
merging it. Results are cached like `option_logits`' (`LogitStore`) under a fingerprint of
their own, since vLLM's kernels round differently from transformers'.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import FocusgroupError, one_line
from engine.models import (PROJECT_ROOT, content_fingerprint, cpu_has_fast_bf16, default_model_folder,
                           folder_fingerprint, read_json_object)
from engine.prompts import answer_token_ids, check_prompt_fits, render_prompt
from engine.scoring import LogitStore, Progress, cached_scores
from engine.surveys.model import DemographicField, Option, Question

SETUP_FIX = ("the vLLM backend runs in its own environment: run `bash scripts/setup_vllm.sh`, then run "
             "focusgroup with `.venv-vllm/bin/python`")
# Requests handed to vLLM at once: enough to keep its scheduler's batches full, few enough
# that progress is reported along the way.
CHUNK = 512
CPU_KV_CACHE_GIB = 2.0
MAIN_PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"
VLLM_PYTHON = PROJECT_ROOT / ".venv-vllm" / "bin" / "python"
PROGRESS_MARK = "focusgroup-progress"
ERROR_MARK = "focusgroup-error:"


@dataclass(frozen=True)
class VllmSettings:
    """How the vLLM engine is built (one engine, kept for reuse while the settings hold).

    model_folder: a Hugging Face model folder, or "default": the converted default model
        (`engine.models.default_model_folder`).
    adapter: a peft LoRA adapter folder served with vLLM's LoRA support, or None.
    dtype: "auto" picks as `engine.models` does (bfloat16 on CUDA and on CPUs with bf16
        instructions, float32 elsewhere), or "float32", "bfloat16", "float16".
    quantization: a vLLM quantization method ("fp8", "bitsandbytes", "awq", ... as vLLM
        documents), or None for the folder's own weights.
    tensor_parallel_size: GPUs one model is split across (on each machine, with several).
    pipeline_parallel_size: machines one model is split across, in stages of layers (vLLM
        runs more than one machine through a Ray cluster: distributed_executor_backend="ray").
    distributed_executor_backend: None (vLLM picks), "mp" (processes on this machine) or "ray".
    kv_cache_gib: memory for the key/value cache; None: 2 GiB on CPU (vLLM would otherwise
        take most of the machine's memory), vLLM's gpu_memory_utilization share on a GPU.
    max_model_len: the longest prompt plus reply, in tokens.
    enforce_eager: skip torch.compile and CUDA graphs; None: eager on CPU (compiling took
        over 100 s at start there and scored no faster), compiled on a GPU.
    max_lora_rank: the largest adapter rank the engine accepts.
    block_size: tokens per key/value cache block. Prefix caching reuses whole blocks only:
        the CPU build's default of 128 would cache just 128 of the default prompt's 177
        shared tokens, 32 (the smallest its attention kernel takes) caches 160.
    """

    model_folder: str = "default"
    adapter: str | None = None
    dtype: str = "auto"
    quantization: str | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    distributed_executor_backend: str | None = None
    kv_cache_gib: float | None = None
    max_model_len: int = 4096
    enforce_eager: bool | None = None
    max_lora_rank: int = 64
    block_size: int = 32

    def __post_init__(self):
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise FocusgroupError(f"Unknown dtype {self.dtype!r}; use auto, float32, bfloat16 or float16.")
        if self.tensor_parallel_size < 1 or self.pipeline_parallel_size < 1:
            raise FocusgroupError("tensor_parallel_size and pipeline_parallel_size must be at least 1.")
        if self.distributed_executor_backend not in (None, "mp", "ray"):
            raise FocusgroupError(f"Unknown distributed_executor_backend {self.distributed_executor_backend!r}; "
                                  "use mp or ray (or leave it to vLLM).")
        if self.kv_cache_gib is not None and self.kv_cache_gib <= 0:
            raise FocusgroupError("kv_cache_gib must be positive, or None for the default.")
        if self.model_folder != "default" and not (Path(self.model_folder).expanduser() / "config.json").is_file():
            raise FocusgroupError(f"{self.model_folder} is not a Hugging Face model folder (no config.json); "
                                  "pass `default` or a local model folder.")
        if self.adapter is not None and not (Path(self.adapter).expanduser() / "adapter_config.json").is_file():
            raise FocusgroupError(f"{self.adapter} is not a peft adapter folder (no adapter_config.json).")

    @property
    def folder(self) -> Path:
        if self.model_folder == "default":
            return default_model_folder()
        return Path(self.model_folder).expanduser().resolve()


@dataclass
class VllmEngine:
    """A built vLLM engine with its tokenizer, adapter request and cache fingerprint."""

    llm: object
    tokenizer: object
    lora_request: object | None
    settings: VllmSettings
    fingerprint: str


def import_vllm():
    """The vllm module, or FocusgroupError naming the setup script when it is missing."""
    try:
        import vllm
    except ImportError as error:
        raise FocusgroupError(f"vLLM is not installed here ({one_line(error, 120)}); {SETUP_FIX}.") from None
    return vllm


def lora_request(settings: VllmSettings):
    """vLLM's request for the settings' adapter, or None without one. The id is derived from
    the adapter's contents, so a retrained adapter never reuses a loaded one's slot."""
    if settings.adapter is None:
        return None
    from vllm.lora.request import LoRARequest

    adapter = Path(settings.adapter).expanduser().resolve()
    rank = read_json_object(adapter / "adapter_config.json", "The adapter config", "train the adapter again.").get("r")
    if isinstance(rank, int) and rank > settings.max_lora_rank:
        raise FocusgroupError(f"The adapter {adapter} has rank {rank}, above max_lora_rank {settings.max_lora_rank}; "
                              "raise max_lora_rank.")
    slot = int(hashlib.sha256(content_fingerprint(adapter).encode()).hexdigest()[:7], 16) + 1
    return LoRARequest(adapter.name, slot, str(adapter))


def engine_arguments(settings: VllmSettings, cuda: bool) -> dict:
    """Keyword arguments for `vllm.LLM`, built from the settings (`cuda`: a GPU serves)."""
    dtype = settings.dtype
    if dtype == "auto":
        dtype = "bfloat16" if cuda or cpu_has_fast_bf16() else "float32"
    arguments = dict(
        model=str(settings.folder), tokenizer=str(settings.folder), dtype=dtype,
        quantization=settings.quantization, tensor_parallel_size=settings.tensor_parallel_size,
        pipeline_parallel_size=settings.pipeline_parallel_size,
        distributed_executor_backend=settings.distributed_executor_backend,
        max_model_len=settings.max_model_len, enable_prefix_caching=True, block_size=settings.block_size,
        enforce_eager=not cuda if settings.enforce_eager is None else settings.enforce_eager,
        logprobs_mode="raw_logprobs", seed=0,
    )
    kv_cache_gib = settings.kv_cache_gib if settings.kv_cache_gib is not None or cuda else CPU_KV_CACHE_GIB
    if kv_cache_gib is not None:
        arguments["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
    if settings.adapter is not None:
        arguments.update(enable_lora=True, max_lora_rank=settings.max_lora_rank, max_loras=1)
    return arguments


@lru_cache(maxsize=2)
def load_tokenizer(folder: Path):
    """The model folder's own tokenizer, through transformers, as `engine.models` loads it."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise FocusgroupError(f"Cannot load a tokenizer from {folder}: {one_line(error, 300)}") from None


@lru_cache(maxsize=1)
def load_engine(settings: VllmSettings) -> VllmEngine:
    """Build the vLLM engine for `settings` (tens of seconds; kept for the next call).

    The engine runs inside this process (VLLM_ENABLE_V1_MULTIPROCESSING=0 unless set):
    scoring is a batch job, and an in-process engine needs no `if __name__ == "__main__"`
    guard in the script that calls it. It computes with every core this process may use
    (OMP_NUM_THREADS unless set), where vLLM's server mode would leave it one.
    """
    vllm = import_vllm()  # vLLM reads its environment variables when the engine starts, not on import
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    import torch

    folder = settings.folder
    tokenizer = load_tokenizer(folder)
    request = lora_request(settings)
    arguments = engine_arguments(settings, torch.cuda.is_available())
    try:
        llm = vllm.LLM(**arguments)
    except (ValueError, RuntimeError, OSError) as error:
        raise FocusgroupError(f"vLLM cannot serve the model in {folder}: {one_line(error, 300)}") from None
    fingerprint = "-".join(
        ["vllm", vllm.__version__, folder_fingerprint(folder), arguments["dtype"], settings.quantization or "full"]
        + ([content_fingerprint(Path(settings.adapter).expanduser())] if settings.adapter else []))
    return VllmEngine(llm, tokenizer, request, settings, fingerprint)


def option_ids(tokenizer, question: Question) -> tuple[list[int], list[list[int]]]:
    """Every option's answer-token ids (in the survey's option order), and all of them in one
    list, each once: the ids vLLM is asked to return log-probabilities for."""
    groups = answer_token_ids(tokenizer, question)
    return list(dict.fromkeys(token for group in groups for token in group)), groups


def read_option_logprobs(position_logprobs: dict, groups: list[list[int]]) -> np.ndarray:
    """[options] log-probabilities from one generated position's {token id: Logprob}: each
    option's answer tokens combined with log-sum-exp, in float64."""
    rows = []
    for group in groups:
        values = np.array([position_logprobs[token].logprob for token in group], dtype=np.float64)
        peak = values.max()
        rows.append(peak + np.log(np.exp(values - peak).sum()) if np.isfinite(peak) else peak)
    return np.array(rows)


def score_with_vllm(engine: VllmEngine, question: Question, fields: tuple[DemographicField, ...],
                    personas: Sequence[str], stimulus: str | None, progress: Progress | None) -> list[np.ndarray]:
    """Run vLLM: one one-token request per persona, the shared prefix cached by vLLM.

    The first persona goes alone: requests scheduled in the same step cannot reuse each
    other's cache blocks, so it computes the prefix once and every later request reads it."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    tokenizer = engine.tokenizer
    flat, groups = option_ids(tokenizer, question)
    sampling = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=flat, detokenize=False)
    prompts = [TokensPrompt(prompt_token_ids=tokenizer(render_prompt(tokenizer, question, fields, persona, stimulus)
                                                       .text, add_special_tokens=False).input_ids)
               for persona in personas]
    results = []
    if progress is not None:
        progress(0, len(prompts))
    for start, end in [(0, 1)] + [(start, start + CHUNK) for start in range(1, len(prompts), CHUNK)]:
        outputs = engine.llm.generate(prompts[start:end], sampling, use_tqdm=False, lora_request=engine.lora_request)
        results.extend(read_option_logprobs(output.outputs[0].logprobs[0], groups) for output in outputs)
        if progress is not None:
            progress(len(results), len(prompts))
    return results


def vllm_option_logits(
    model_folder: str | Path,
    question: Question,
    fields: tuple[DemographicField, ...],
    personas: Sequence[str],
    stimulus: str | None = None,
    adapter: str | Path | None = None,
    settings: VllmSettings | None = None,
    progress: Progress | None = None,
    store: LogitStore | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Option log-probabilities, shape [len(personas), len(question.options)], float64: the
    `engine.scoring.option_logits` contract, scored by vLLM.

    `model_folder` ("default" or a model folder) and `adapter` fill in `settings`, whose
    other fields say how vLLM runs; `personas` are `engine.prompts.render_persona` lines
    over `fields`. Identical personas are scored once, and scores are cached like
    option_logits' unless `use_cache` is False.
    """
    settings = replace(settings or VllmSettings(), model_folder=str(model_folder),
                       adapter=None if adapter is None else str(adapter))
    import_vllm()
    check_prompt_fits(load_tokenizer(settings.folder), settings.max_model_len, question, fields, list(personas),
                      stimulus, reply_tokens=1)  # before the engine, which takes a while to build
    engine = load_engine(settings)
    return cached_scores(
        engine.fingerprint, engine.tokenizer, question, fields, personas, stimulus,
        lambda todo: dict(zip(todo, score_with_vllm(engine, question, fields, list(todo.values()), stimulus,
                                                    progress))),
        store, use_cache, progress)


# Scoring from the main environment, where vLLM cannot be installed: a .venv-vllm Python
# runs `vllm_option_logits` on a job file and reports progress on its standard output.

def question_from_record(record: dict) -> Question:
    """A `Question` from `dataclasses.asdict` of one, as a job file holds it."""
    options = tuple(Option(**{**option, "codes": tuple(option["codes"])}) for option in record["options"])
    return Question(**{**record, "options": options})


def fields_from_records(records: list[dict]) -> tuple[DemographicField, ...]:
    return tuple(DemographicField(**{**record, "values": tuple(record["values"])}) for record in records)


def option_logits_in_vllm_environment(
    model_folder: str | Path,
    question: Question,
    fields: tuple[DemographicField, ...],
    personas: Sequence[str],
    stimulus: str | None = None,
    adapter: str | Path | None = None,
    settings: VllmSettings | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """`vllm_option_logits`, called from any environment: .venv-vllm's Python scores in a
    subprocess, which builds its engine on every call (about 15 s on a CPU), reads and
    writes the same logit cache, and forwards its progress to `progress`."""
    if not VLLM_PYTHON.is_file():
        raise FocusgroupError(f"The vLLM environment is missing ({VLLM_PYTHON}); create it with "
                              "`bash scripts/setup_vllm.sh`.")
    with tempfile.TemporaryDirectory() as folder:
        job_path, out, log = Path(folder) / "job.json", Path(folder) / "logits.npy", Path(folder) / "log.txt"
        job_path.write_text(json.dumps(dict(
            model_folder=str(model_folder), question=dataclasses.asdict(question),
            fields=[dataclasses.asdict(field) for field in fields], personas=list(personas), stimulus=stimulus,
            adapter=None if adapter is None else str(adapter), settings=dataclasses.asdict(settings or VllmSettings()),
            use_cache=use_cache, out=str(out))))
        with open(log, "w+") as errors:
            process = subprocess.Popen([str(VLLM_PYTHON), "-m", "engine.vllm_backend", "--job", str(job_path)],
                                       stdout=subprocess.PIPE, stderr=errors, text=True, cwd=PROJECT_ROOT,
                                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
            for line in process.stdout:  # vLLM logs on stdout too: only marked lines are progress
                if line.startswith(PROGRESS_MARK) and progress is not None:
                    progress(*map(int, line.split()[1:3]))
            process.wait()
            errors.seek(0)
            reported = errors.read()
        if process.returncode != 0:
            marked = [line for line in reported.splitlines() if line.startswith(ERROR_MARK)]
            raise FocusgroupError(marked[-1][len(ERROR_MARK):].strip() if marked
                                  else f"vLLM scoring failed in .venv-vllm: {one_line(reported[-600:], 600)}")
        return np.load(out)


def run_job(path: Path) -> None:
    """Score the job file an `option_logits_in_vllm_environment` call wrote (in .venv-vllm)."""
    job = json.loads(Path(path).read_text())
    logits = vllm_option_logits(
        job["model_folder"], question_from_record(job["question"]), fields_from_records(job["fields"]),
        job["personas"], job["stimulus"], job["adapter"], VllmSettings(**job["settings"]),
        progress=lambda done, total: print(PROGRESS_MARK, done, total, flush=True), use_cache=job["use_cache"])
    np.save(job["out"], logits)


# The transformers engine's side of a comparison, run by .venv's Python: scores every question
# for the personas (after one warm-up persona on the first question) and times the scoring.
REFERENCE_PROGRAM = """
import json, sys, time
import numpy as np
from engine.models import ModelConfig, load_model
from engine.scoring import option_logits
from engine.surveys import load_survey

job = json.load(sys.stdin)
survey = load_survey(job["survey"])
loaded = load_model(ModelConfig(adapter=job["adapter"], dtype=job["dtype"]))
questions = [survey.question(question_id) for question_id in job["questions"]]
option_logits(loaded, questions[0], survey.fields, job["personas"][:1], use_cache=False)
start = time.perf_counter()
logits = {q.id: option_logits(loaded, q, survey.fields, job["personas"], use_cache=False) for q in questions}
np.savez(job["out"], seconds=time.perf_counter() - start, **logits)
"""


def transformers_reference(survey_id: str, question_ids: Sequence[str], personas: Sequence[str],
                           dtype: str = "float32", adapter: str | None = None) -> tuple[dict[str, np.ndarray], float]:
    """`engine.scoring.option_logits` of the default model for `personas` on each question,
    computed in the main environment (.venv: the project's transformers, which vLLM's pin
    excludes from this one), and the seconds its scoring took, model loading excluded."""
    if not MAIN_PYTHON.is_file():
        raise FocusgroupError(f"The main environment is missing ({MAIN_PYTHON}); run `bash scripts/setup.sh` first.")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "reference.npz"
        job = dict(survey=survey_id, questions=list(question_ids), personas=list(personas), dtype=dtype,
                   adapter=adapter, out=str(out))
        done = subprocess.run([str(MAIN_PYTHON), "-c", REFERENCE_PROGRAM], input=json.dumps(job), text=True,
                              cwd=PROJECT_ROOT, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if done.returncode != 0:
            raise FocusgroupError(f"The transformers reference failed: {one_line(done.stderr[-600:], 600)}")
        with np.load(out) as stored:
            return {question_id: stored[question_id] for question_id in question_ids}, float(stored["seconds"])


def main(argv: Sequence[str] | None = None) -> None:
    """Time vLLM against the transformers engine on the same personas, one round after the
    other (`--rounds`), and print their agreement."""
    from engine.surveys import load_survey
    from engine.twins import twin_personas

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--survey", default="gss2018")
    parser.add_argument("--question", default="natenrgy")
    parser.add_argument("--personas", type=int, default=256)
    parser.add_argument("--dtype", default="auto", help="both engines (auto: bfloat16 where the CPU has it)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--job", help=argparse.SUPPRESS)  # option_logits_in_vllm_environment's subprocess
    options = parser.parse_args(argv)
    if options.job:
        try:
            run_job(Path(options.job))
        except FocusgroupError as error:
            print(ERROR_MARK, error, file=sys.stderr)
            raise SystemExit(2) from None
        return

    survey = load_survey(options.survey)
    question = survey.question(options.question)
    personas = twin_personas(survey, survey.demographics.index[:options.personas], ())
    settings = VllmSettings(dtype=options.dtype)
    started = time.perf_counter()
    load_engine(settings)
    print(f"vLLM engine built in {time.perf_counter() - started:.1f} s", flush=True)
    vllm_option_logits("default", question, survey.fields, personas[:1], settings=settings, use_cache=False)
    for round_number in range(1, options.rounds + 1):
        load_engine(settings).llm.reset_prefix_cache()  # each round starts cold, as the reference does
        reference, reference_seconds = transformers_reference(options.survey, [question.id], personas, options.dtype)
        started = time.perf_counter()
        scores = vllm_option_logits("default", question, survey.fields, personas, settings=settings, use_cache=False)
        seconds = time.perf_counter() - started
        probabilities = [np.exp(x - x.max(1, keepdims=True)) for x in (scores, reference[question.id])]
        probabilities = [p / p.sum(1, keepdims=True) for p in probabilities]
        print(f"round {round_number}: {len(personas)} personas, transformers {reference_seconds:.1f} s "
              f"({len(personas) / reference_seconds:.1f}/s), vLLM {seconds:.1f} s ({len(personas) / seconds:.1f}/s): "
              f"vLLM {reference_seconds / seconds:.2f}x; max |log-probability difference| "
              f"{np.abs(scores - reference[question.id]).max():.2g}, max |probability difference| "
              f"{np.abs(probabilities[0] - probabilities[1]).max():.2g}, argmax agreement "
              f"{(probabilities[0].argmax(1) == probabilities[1].argmax(1)).sum()}/{len(personas)}", flush=True)


if __name__ == "__main__":
    main()
