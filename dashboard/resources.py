"""The dashboard's one doorway to the engine: cached wrappers, shared by every page and tab.

- Models live in `st.cache_resource(max_entries=1)`, keyed by path strings, so one process
  loads a model once, however many tabs are open. Model calls are serialised by a lock:
  two tabs asking at once wait for each other instead of racing on one model.
- Surveys are cached resources too (they are read-only); lists and tables use
  `st.cache_data`.
- Simulations are kept in a small process-wide table keyed by every input, and the engine
  keeps logits on disk, so a question asked once for a slice is instant afterwards, and a
  temperature change only re-reads stored logits.
- Training jobs run in threads and live in JOBS, a process-wide table, so a reload or a new
  tab finds a running one; the clock time of each step they report measures their speed,
  for the time left and for the next run's estimate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import streamlit as st

from engine.models import (
    DEFAULT_MODEL_NAME,
    SHIPPED_ADAPTERS,
    ModelConfig,
    adapter_manifests,
    cache_root,
    load_model,
    manifest_base_name,
    shipped_adapter,
    trained_surveys,
)
from engine.option_counts import trained_option_counts
from engine.surveys import list_surveys, load_survey

MODEL_LOCK = threading.Lock()
SIMULATIONS: OrderedDict = OrderedDict()
MAX_SIMULATIONS = 64
BARE_MODEL = "Bare model (no adapter)"


def base_model() -> str:
    """The base model: the embedded default, or FOCUSGROUP_MODEL (a folder, or `tiny` in tests)."""
    return os.environ.get("FOCUSGROUP_MODEL") or "default"


def data_dir() -> str | None:
    return os.environ.get("FOCUSGROUP_DATA_DIR") or None


def trained_adapters_root() -> Path:
    """Where adapters trained from the dashboard are written."""
    return cache_root() / "adapters"


@st.cache_data(show_spinner=False, ttl=60)
def survey_catalog(directory: str | None) -> list[dict]:
    entries = []
    for entry in list_surveys(directory):
        if entry.data_present:
            entries.append({"id": entry.id, "title": entry.title})
    return entries


@st.cache_resource(max_entries=8, show_spinner=False)
def survey(survey_id: str, directory: str | None):
    return load_survey(survey_id, directory)


@st.cache_data(show_spinner=False, ttl=60)
def adapter_option_counts(adapter: str | None) -> tuple[int, ...] | None:
    """The numbers of options of the questions an adapter trained on (None: unknown), read
    from its manifest or the surveys it lists (`engine.option_counts`)."""
    counts = trained_option_counts(adapter, load=lambda survey_id: load_survey(survey_id, data_dir()))
    return None if counts is None else tuple(sorted(counts))


@st.cache_resource(max_entries=1, show_spinner="Loading the model (once per process)...")
def model(base: str, adapter: str | None):
    return load_model(ModelConfig(base=base, adapter=adapter))


def adapter_choices(survey_id: str) -> dict[str, str | None]:
    """Readable name -> adapter folder (None = bare model): the default adapter first
    (`engine.models.shipped_adapter`), then the others trained on this survey, then the rest.
    An adapter whose manifest is corrupt is not offered (`engine.models.adapter_manifests`)."""
    found: list[tuple[int, str, str]] = []
    if base_model() != "default":
        return {BARE_MODEL: None}
    default = shipped_adapter(survey_id)
    for root in (SHIPPED_ADAPTERS, trained_adapters_root()):
        for folder, details in adapter_manifests(root):
            if manifest_base_name(details) != DEFAULT_MODEL_NAME:
                continue
            trained = trained_surveys(details)
            rank = 0 if folder == default else 1 if survey_id in trained else 2
            named = ", ".join(trained) if len(trained) < 3 else f"{len(trained)} surveys"
            label = f"{folder.name} (trained on {named or 'unknown'}{', default' if rank == 0 else ''})"
            found.append((rank, label, str(folder)))
    choices = {label: path for _, label, path in sorted(found)}
    choices[BARE_MODEL] = None
    return choices


def simulation_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def run_simulation(survey_id: str, question, filters: dict, stimulus: str | None, adapter: str | None,
                   progress=None, with_baselines: bool = True, gaps: bool = False, context: tuple[str, ...] = ()):
    """Simulate (or fetch) one question for one slice, with the slice gaps (everyone answering
    too) when asked and twins carrying the `context` answers; the result re-reads at any
    temperature."""
    from engine.simulate import simulate

    key = simulation_key(survey_id, question if isinstance(question, str) else question.__dict__.__repr__(),
                         filters, stimulus, adapter, with_baselines, gaps, list(context))
    if key in SIMULATIONS:
        SIMULATIONS.move_to_end(key)
        return SIMULATIONS[key]
    current = survey(survey_id, data_dir())
    with MODEL_LOCK:
        loaded = model(base_model(), adapter)
        result = simulate(loaded, current, question, filters, 1.0, stimulus, progress=progress,
                          with_baselines=with_baselines, gaps=gaps, context=context)
    SIMULATIONS[key] = result
    while len(SIMULATIONS) > MAX_SIMULATIONS:
        SIMULATIONS.popitem(last=False)
    return result


def run_pilot(simulation, adapter: str | None, size: int | None, upload: bytes | None, upload_name: str,
              temperature: float) -> dict:
    """The pilot block (`engine.pilot_survey`) for a simulation: N respondents drawn with the
    simulation's seed, or an uploaded CSV; the pilot personas' logits come from the disk cache
    after the first time, so a temperature change costs no model call."""
    from engine.pilot_survey import choose_pilot, pilot_estimates

    pilot = choose_pilot(simulation.survey, simulation.question, simulation.seed, size, upload, upload_name)
    with MODEL_LOCK:
        return pilot_estimates(model(base_model(), adapter), simulation, pilot, temperature).to_dict()


def run_evaluation(survey_id: str, adapter: str | None, questions: tuple[str, ...] | None, progress=None,
                   on_question=None):
    """Evaluate on the test split at T = 1, keeping logits for the temperature curve;
    `on_question(i, n, question_id)` is told as each question starts, `progress(done, total)`
    as its respondents are scored."""
    from engine.evaluate import EvaluationConfig, evaluate

    key = simulation_key("evaluate", survey_id, adapter, questions)
    if key in SIMULATIONS:
        return SIMULATIONS[key]
    with MODEL_LOCK:
        loaded = model(base_model(), adapter)
        result = evaluate(loaded, survey(survey_id, data_dir()), EvaluationConfig(questions=questions),
                          progress=progress, on_question=on_question)
    SIMULATIONS[key] = result
    return result


def run_temperature_curve(survey_id: str, adapter: str | None, questions: tuple[str, ...], temperatures,
                          progress=None):
    from engine.evaluate import EvaluationConfig, temperature_curve

    key = simulation_key("curve", survey_id, adapter, questions, list(temperatures))
    if key not in SIMULATIONS:
        with MODEL_LOCK:
            loaded = model(base_model(), adapter)
            SIMULATIONS[key] = temperature_curve(loaded, survey(survey_id, data_dir()), temperatures,
                                                 EvaluationConfig(questions=questions), progress=progress)
    return SIMULATIONS[key]


def run_banner(survey_id: str, config, adapter: str | None, progress=None):
    """Run (or fetch) a banner (`engine.banner.banner`) at T = 1: each question simulated once
    for everyone in the base. Kept by every input but the temperature, which `Banner.at(T)`
    re-reads from the stored logits without the model."""
    from engine.banner import banner

    config = dataclasses.replace(config, temperature=1.0)
    key = simulation_key("banner", survey_id, adapter, dataclasses.asdict(config))
    if key in SIMULATIONS:
        SIMULATIONS.move_to_end(key)
        return SIMULATIONS[key]
    with MODEL_LOCK:
        result = banner(model(base_model(), adapter), survey(survey_id, data_dir()), config, progress)
    SIMULATIONS[key] = result
    while len(SIMULATIONS) > MAX_SIMULATIONS:
        SIMULATIONS.popitem(last=False)
    return result


# Training jobs of this server process, by id: a job outlives the session that started it,
# so a reload or another tab finds it again (`running_jobs`).
JOBS: dict[str, dict] = {}
TRAIN_EVAL_EVERY = 25
TRAIN_EVAL_EXAMPLES = 128


class Pace(NamedTuple):
    """Training speed measured on this machine: seconds a step, seconds before the first step
    (loading the model and the examples), and which run measured it, in words."""

    seconds_per_step: float
    startup_seconds: float
    source: str


def clock() -> float:
    """The clock job timings are read from (seconds, monotonic)."""
    return time.monotonic()


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def train_config(**options):
    """A TrainConfig for a dashboard run (which checks the options, raising FocusgroupError):
    the page's options, this process's base model, and a validation loss every
    TRAIN_EVAL_EVERY steps on TRAIN_EVAL_EXAMPLES examples."""
    from engine.training.config import TrainConfig

    return TrainConfig(base_model=base_model(), eval_every=TRAIN_EVAL_EVERY, eval_examples=TRAIN_EVAL_EXAMPLES,
                       **options)


def start_training(config) -> str:
    """Start `engine.training.trainer.train(config)` in a background thread; returns the job's
    id, a key of JOBS. The job keeps its survey, its start, and the clock time of every step
    reported, from which `job_pace` measures its speed."""
    from engine.errors import FocusgroupError

    job_id = simulation_key("train", config.hyperparameters(), config.out)
    job = JOBS[job_id] = {
        "survey": config.survey, "out": config.out, "started": clock(), "started_at": time.time(),
        "timings": [], "progress": None, "curve": [], "done": False, "error": None,
    }

    def report(progress) -> None:
        job["timings"].append((progress.step, clock()))
        job["progress"] = progress
        record = {"step": progress.step, "loss": progress.loss}
        validated = progress.step % TRAIN_EVAL_EVERY == 0 or progress.step == progress.total_steps
        if progress.validation_loss is not None and validated:
            record["validation_loss"] = progress.validation_loss
        job["curve"].append(record)

    def run() -> None:
        from engine.training import trainer

        try:
            # The job loads its own copy of the model, so simulations go on while it trains.
            trainer.train(config, report)
            job["done"] = True
        except FocusgroupError as error:
            job["error"] = str(error)
        except Exception as error:  # shown on the page instead of dying silently in a thread
            job["error"] = f"Training failed: {error!r}"

    threading.Thread(target=run, name=f"train-{job_id[:8]}", daemon=True).start()
    return job_id


def running_jobs(survey_id: str) -> list[str]:
    """Ids of the jobs training on `survey_id` that have neither finished nor failed, newest first."""
    running = [(job["started"], job_id) for job_id, job in list(JOBS.items())
               if job["survey"] == survey_id and not job["done"] and not job["error"]]
    return [job_id for _, job_id in sorted(running, reverse=True)]


def job_pace(job: dict) -> Pace | None:
    """A job's speed from its reported steps: the mean time between its first and its last
    report (validation passes included as they come), and what came before the first
    step; None until two steps are timed."""
    timings = job["timings"]
    if len(timings) < 2 or timings[-1][0] <= timings[0][0]:
        return None
    (first_step, first_time), (last_step, last_time) = timings[0], timings[-1]
    per_step = (last_time - first_time) / (last_step - first_step)
    startup = max(0.0, first_time - job["started"] - per_step * first_step)
    return Pace(per_step, startup, f"the run to {Path(job['out']).name}")


def measured_pace() -> Pace | None:
    """The speed of the latest timed training on this machine: a job of this process, else
    the newest adapter trained from the dashboard (its manifest's wall time over its steps,
    loading included); None when nothing was ever timed here."""
    for job in sorted(list(JOBS.values()), key=lambda job: job["started"], reverse=True):
        pace = job_pace(job)
        if pace is not None:
            return pace
    timed = [(details.get("created", ""), folder.name, details["wall_seconds"] / details["steps"])
             for folder, details in adapter_manifests(trained_adapters_root())
             if details.get("wall_seconds") and details.get("steps")]
    if not timed:
        return None
    _, name, per_step = max(timed)
    return Pace(per_step, 0.0, f"the run to {name} (its loading spread over its steps)")
