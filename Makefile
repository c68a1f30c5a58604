# The set-up commands of the README: `make demo` (the main job), `make test` (the test suite) and `make space` (the
# Gradio Space on 127.0.0.1:7860, serving the demo's model or ABAW_MODEL). Each creates the virtual environment it
# needs when missing, with the exact versions CI tested (the lock, $(LOCK)).
#
# `make test-latest` builds a separate environment from pyproject.toml's ranges with the newest releases (ignoring the
# lock) and runs the smoke subset; `make test-lowest` does the same with every dependency at its lower bound (each
# must be a version the suite has passed on). `make lock` regenerates the lock from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Exact versions of every dependency and extra, for Python 3.11 on Linux x86_64 (CI's platform): written by
# `make lock` with pip-tools, applied by `make install` as pip constraints.
LOCK := .ci/constraints.txt
# The Space's copy of the lock, restricted to what `modeling-abaw[space]` needs (spaces/requirements.txt applies it).
SPACE_LOCK := spaces/constraints.txt
# torch is installed first and on its own: on a machine without a GPU, pip takes the CPU build where one is offered
# (this machine's), elsewhere the default (CUDA) build. The lock leaves torch out; the Space's copy pins this version.
TORCH := torch==2.13.0
EXTRAS := train,space,onnx,dev
# The smoke subset: decoding, `abaw predict`, the Space through gradio_client, a push to the loopback Hub with a
# remote-code reload, a training stage on 2 processes, and the package without its extras.
SMOKE := -m smoke
# pip-compile's output: extras' brackets stripped, no index or local wheel folder written into the lock.
PIP_COMPILE := --strip-extras --unsafe-package torch --no-emit-index-url --no-emit-find-links --quiet
# The packages the smoke runs name in their last line.
REPORTED := torch|transformers|accelerate|huggingface.hub|datasets|av|numpy|gradio|opencv.python.headless

.PHONY: demo test space install lock test-latest test-lowest clean

# $(call environment,FOLDER): a virtual environment in FOLDER with torch installed and pinned (FOLDER/torch.txt), so
# that no later install (gradio, selenium, accelerate) swaps in another build of torch.
define environment
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --upgrade pip
	$(1)/bin/python -c "import torch" 2>/dev/null || $(1)/bin/python -m pip install --quiet "$(TORCH)"
	$(1)/bin/python -c "import torch; print('torch==' + torch.__version__)" > $(1)/torch.txt
endef

$(BIN)/abaw: pyproject.toml $(LOCK)
	$(call environment,$(VENV))
	$(BIN)/python -m pip install --quiet --constraint $(VENV)/torch.txt --constraint $(LOCK) -e ".[$(EXTRAS)]"
	touch $(BIN)/abaw

install: $(BIN)/abaw

demo: install
	$(BIN)/abaw demo --output demo_output

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

space: install
	$(BIN)/python spaces/app.py

# The lock: the newest releases pyproject.toml's ranges allow today, resolved by pip-tools (pip's own resolver, so
# `pip install` agrees with it), with torch held at $(TORCH) and left out (installed first, on its own). The Space's
# copy is the same versions cut to `modeling-abaw[space]`, plus torch. Run the suite on them before committing them.
lock: install
	echo "$(TORCH)" > $(VENV)/lock-torch.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile pyproject.toml --all-extras --upgrade $(PIP_COMPILE) \
		--constraint $(VENV)/lock-torch.txt --output-file $(LOCK)
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile pyproject.toml --extra space $(PIP_COMPILE) \
		--constraint $(VENV)/lock-torch.txt --constraint $(LOCK) --output-file $(SPACE_LOCK)
	printf '# torch, which make install installs first (the Makefile'"'"'s TORCH):\n$(TORCH)\n' >> $(SPACE_LOCK)
	@echo "Wrote $(LOCK) and $(SPACE_LOCK). Now run the suite on them: make clean test test-latest test-lowest"

# $(call smoke,FOLDER,INSTALL[,SETUP]): a new environment in FOLDER (after the command SETUP, if given) gets the
# package alone with INSTALL (a pip command that resolves without the lock) and runs the tests of the package without
# its extras; then it gets the extras and runs the smoke subset. Its versions are listed in FOLDER/versions.txt.
define smoke
	rm -rf $(1)
	$(call environment,$(1))
	$(3)
	$(2) --constraint $(1)/torch.txt . "pytest>=8"
	HF_HUB_OFFLINE=1 ABAW_CORE_ONLY=1 $(1)/bin/python -m pytest -q -p no:cacheprovider tests/test_install.py
	$(2) --constraint $(1)/torch.txt ".[$(EXTRAS)]"
	$(1)/bin/python -m pip list --format freeze > $(1)/versions.txt
	HF_HUB_OFFLINE=1 $(1)/bin/python -m pytest -q -p no:cacheprovider $(SMOKE)
	@echo "Versions tested ($(1)/versions.txt):" && grep -iE "^($(REPORTED))==" $(1)/versions.txt | tr '\n' ' ' && echo
endef

# The newest releases pyproject.toml's ranges allow, as `pip install modeling-abaw` gets them today.
test-latest:
	$(call smoke,.venv-latest,.venv-latest/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager)

# Each dependency of pyproject.toml at its lower bound (.ci/lowest.py writes the constraints; what they need comes
# at its newest fitting release).
test-lowest:
	$(call smoke,.venv-lowest,.venv-lowest/bin/python -m pip install --quiet --constraint .venv-lowest/lowest.txt,\
		.venv-lowest/bin/python -m pip install --quiet packaging && .venv-lowest/bin/python .ci/lowest.py > .venv-lowest/lowest.txt)

clean:
	rm -rf $(VENV) .venv-latest .venv-lowest demo_output
