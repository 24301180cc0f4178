"""The dashboard's one doorway to the engine: cached wrappers, shared by every page and tab.

- Models live in `st.cache_resource(max_entries=1)`, keyed by path strings, so one process
  loads a model once, however many tabs are open. Model calls are serialised by a lock:
  two tabs asking at once wait for each other instead of racing on one model.
- Surveys are cached resources too (they are read-only); lists and tables use
  `st.cache_data`.
- Simulations are kept in a small process-wide table keyed by every input, and the engine
  keeps logits on disk, so a question asked once for a slice is instant afterwards, and a
  temperature change only re-reads stored logits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path

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


def run_evaluation(survey_id: str, adapter: str | None, questions: tuple[str, ...] | None, progress=None):
    """Evaluate on the test split at T = 1, keeping logits for the temperature curve."""
    from engine.evaluate import EvaluationConfig, evaluate

    key = simulation_key("evaluate", survey_id, adapter, questions)
    if key in SIMULATIONS:
        return SIMULATIONS[key]
    with MODEL_LOCK:
        loaded = model(base_model(), adapter)
        result = evaluate(loaded, survey(survey_id, data_dir()), EvaluationConfig(questions=questions),
                          progress=progress)
    SIMULATIONS[key] = result
    return result


def run_temperature_curve(survey_id: str, adapter: str | None, questions: tuple[str, ...], temperatures):
    from engine.evaluate import EvaluationConfig, temperature_curve

    key = simulation_key("curve", survey_id, adapter, questions, list(temperatures))
    if key not in SIMULATIONS:
        with MODEL_LOCK:
            loaded = model(base_model(), adapter)
            SIMULATIONS[key] = temperature_curve(loaded, survey(survey_id, data_dir()), temperatures,
                                                 EvaluationConfig(questions=questions))
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


JOBS: dict[str, dict] = {}
TRAIN_EVAL_EVERY = 25


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def start_training(**options) -> str:
    """Start a training job in a background thread; returns its id (a key of JOBS)."""
    from engine.errors import FocusgroupError
    from engine.training.config import TrainConfig
    from engine.training.trainer import train

    job_id = simulation_key("train", options)
    JOBS[job_id] = {"progress": None, "curve": [], "done": False, "error": None, "out": options["out"]}
    job = JOBS[job_id]

    def report(progress) -> None:
        job["progress"] = progress
        record = {"step": progress.step, "loss": progress.loss}
        if progress.validation_loss is not None and progress.step % TRAIN_EVAL_EVERY == 0:
            record["validation_loss"] = progress.validation_loss
        job["curve"].append(record)

    def run() -> None:
        try:
            # The job loads its own copy of the model, so simulations go on while it trains.
            config = TrainConfig(base_model=base_model(), eval_every=TRAIN_EVAL_EVERY, eval_examples=128, **options)
            train(config, report)
            job["done"] = True
        except FocusgroupError as error:
            job["error"] = str(error)
        except Exception as error:  # shown on the page instead of dying silently in a thread
            job["error"] = f"Training failed: {error!r}"

    threading.Thread(target=run, name=f"train-{job_id[:8]}", daemon=True).start()
    return job_id
