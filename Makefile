# The two commands a newcomer needs; each sets everything up on first use.
#   make demo   start the dashboard (http://localhost:8501) on the default survey and model
#   make test   run the whole test suite
.PHONY: demo test setup simulate benchmark test-vllm

VENV := .venv
export HF_HUB_OFFLINE := 1

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/streamlit run dashboard/app.py

simulate: setup
	$(VENV)/bin/focusgroup simulate --survey gss2018 --question natenrgy --slice partyid="strong democrat"

test: setup
	$(VENV)/bin/python -m pytest -q

benchmark: setup
	$(VENV)/bin/focusgroup benchmark scoring --format json

# The vLLM backend's agreement test, in its own environment .venv-vllm (vLLM pins an older
# transformers); the transformers reference it compares with runs in .venv, hence `setup`.
test-vllm: setup
	bash scripts/setup_vllm.sh && .venv-vllm/bin/python -m pytest -q tests/test_vllm_agreement.py
