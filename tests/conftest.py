"""Shared fixtures: offline hub, an isolated logit cache, the real surveys beside the project."""

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_SURVEYS = PROJECT_ROOT.parent / "shared" / "surveys"


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_logit_cache(tmp_path, monkeypatch):
    """Each test gets an empty on-disk logit cache, so no test depends on another's."""
    import engine.scoring as scoring

    monkeypatch.setattr(scoring, "_default_store", scoring.LogitStore(tmp_path / "logits"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not SHARED_SURVEYS.is_dir():
        pytest.fail(f"The shared surveys are missing: expected them at {SHARED_SURVEYS}.")
    return SHARED_SURVEYS


@pytest.fixture(scope="session")
def gss():
    from engine.surveys import load_survey

    return load_survey("gss2018")


@pytest.fixture(scope="session")
def tiny():
    """A random two-layer Llama in float32 with the default tokenizer: fast and exact."""
    from engine.models import ModelConfig, load_model

    return load_model(ModelConfig(base="tiny", dtype="float32"))


@pytest.fixture(scope="session")
def default_model():
    """The real embedded SmolLM2-135M-Instruct."""
    from engine.models import ModelConfig, load_model

    return load_model(ModelConfig())
