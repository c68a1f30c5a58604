# The set-up commands of the README: `make demo` (the main job), `make test` (the test suite) and `make space` (the
# Gradio Space on 127.0.0.1:7860, serving the demo's model or ABAW_MODEL).
# Each creates the virtual environment it needs when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test space install clean

$(BIN)/abaw: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU-only machines take the CPU build of torch; GPU users install their CUDA build first (see README).
	$(BIN)/python -c "import torch" 2>/dev/null || { command -v nvidia-smi >/dev/null && $(BIN)/python -m pip install --quiet torch || $(BIN)/python -m pip install --quiet torch==2.13.0; }
	# The torch just installed is pinned for the rest: gradio or selenium must never swap in another build.
	$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install --quiet --constraint $(VENV)/torch-constraint.txt -e ".[dev,space]"
	touch $(BIN)/abaw

install: $(BIN)/abaw

demo: install
	$(BIN)/abaw demo --output demo_output

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

space: install
	$(BIN)/python spaces/app.py

clean:
	rm -rf $(VENV) demo_output
