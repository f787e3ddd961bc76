# Entry points for netra-ws. Every target builds its own virtualenv in .venv, so a fresh
# clone needs nothing but python3 and make. A stamp file per install set records a finished
# install; it depends on the requirements files and pyproject.toml, so repeated runs skip pip
# until one of those changes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_FLAGS ?= -q
# setuptools' build backend warns in a box on every editable install ("be careful with
# folders named like your package"); this layout has none. The filter reaches the backend's
# subprocess through the environment and matches that one warning's text, nothing else.
EDITABLE_QUIET := PYTHONWARNINGS="ignore:Editable installation"
PYTEST_ARGS ?=
DEMO_ARGS ?=
# make lab: where JupyterLab listens, and any other `jupyter lab` options (LAB_ARGS=...).
LAB_IP ?= 127.0.0.1
LAB_PORT ?= 8888
LAB_ARGS ?=
# As root (containers, CI boxes) JupyterLab refuses to start without --allow-root; with no
# display (ssh, containers) there is no browser to open, so it only prints the URL.
LAB_AUTO := $(if $(filter 0,$(shell id -u)),--allow-root) \
	$(if $(DISPLAY)$(WAYLAND_DISPLAY)$(filter Darwin,$(shell uname -s)),,--no-browser)

# The pure modules (no network): their docstring examples run in `make test`. The same list
# as the strict [[tool.mypy.overrides]] of pyproject.toml (tests/test_exports.py checks);
# wildcard drops a name that is not a file (report.py became the report/ package).
PURE_MODULES := $(wildcard $(addprefix netra_ws/,events.py limits.py trace.py _trace_columns.py \
	expect.py analysis.py redact.py har.py tokens.py errors.py verdicts.py untrusted.py \
	report.py report/*.py browse.py diff.py tables.py))
# plots.py and load/__init__.py are pure too, but not strict-typed: their examples run, they
# stay out of the list above.
DOCTEST_MODULES := $(PURE_MODULES) netra_ws/plots.py netra_ws/load/__init__.py

RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: help demo test lab lint typecheck setup setup-dev clean

help:
	@echo "make demo       set up .venv and run the Issue #937 investigation against the embedded server"
	@echo "make test       set up .venv (with dev tools), run ruff, mypy, the pure modules'"
	@echo "                docstring examples and pytest (PYTEST_ARGS=...)"
	@echo "make lab        set up .venv and open JupyterLab on notebooks/ (LAB_PORT=8888,"
	@echo "                LAB_IP=127.0.0.1, LAB_ARGS=...; as root and headless it just works)"
	@echo "make lint       run ruff check"
	@echo "make typecheck  run mypy (configured in pyproject.toml [tool.mypy])"
	@echo "make setup      install requirements.txt and netra_ws (editable) into .venv, the git"
	@echo "                filter that keeps notebook outputs out of commits, and lab settings"
	@echo "make setup-dev  install requirements-dev.txt and netra_ws (editable) into .venv"
	@echo "make clean      remove .venv and build/test caches (data/ is kept)"

# The interpreter is the venv's marker; prerequisites below use it order-only (|) because
# its timestamp is the base interpreter's, not the venv's.
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade pip

$(RUN_STAMP): requirements.txt pyproject.toml | $(PY)
	$(PIP) install $(PIP_FLAGS) -r requirements.txt
	$(EDITABLE_QUIET) $(PIP) install $(PIP_FLAGS) -e . --no-deps
	@touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt requirements-load.txt pyproject.toml | $(PY)
	$(EDITABLE_QUIET) $(PIP) install $(PIP_FLAGS) -r requirements-dev.txt -e .
	@touch $@

setup: $(RUN_STAMP)
	@$(NOTEBOOK_TOOLS)

setup-dev: $(DEV_STAMP)
	@$(NOTEBOOK_TOOLS)

# Saving a notebook in JupyterLab writes its outputs (and the kernel's language_info) into
# the .ipynb. .gitattributes sends notebooks/*.ipynb through git's "nbstripout" filter; this
# defines that filter for this clone, so git commits (and `git status` compares) notebooks
# without outputs while the working copy keeps them. --keep-id: JupyterLab's cell ids stay,
# so a save never renumbers cells. required: with the filter missing (.venv removed), git
# refuses to add a notebook instead of committing its outputs. Skipped outside a git clone.
# Then the lab settings: a paired .py opens as a notebook (netra_ws.notebooks.LAB_SETTINGS).
define NOTEBOOK_TOOLS
if git rev-parse --git-dir >/dev/null 2>&1; then \
	git config filter.nbstripout.clean '"$(abspath $(PY))" -m nbstripout --keep-id' && \
	git config filter.nbstripout.smudge cat && \
	git config filter.nbstripout.required true && \
	git config filter.nbstripout.extrakeys 'metadata.language_info' && \
	git config diff.ipynb.textconv '"$(abspath $(PY))" -m nbstripout -t' && \
	echo "git filter nbstripout: notebook outputs stay out of commits"; \
fi; \
$(PY) -c "from netra_ws.notebooks import install_lab_settings as i; print('lab settings:', i())"
endef

demo: $(RUN_STAMP)
	$(PY) -m netra_ws demo $(DEMO_ARGS)

test: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest --doctest-modules $(DOCTEST_MODULES)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

# JupyterLab prints the URL to open (with its token) once it listens; LAB_PORT taken: it
# tries the next ports and prints the one it got. After each save, git_after_save tells
# git that a notebook whose only change is outputs is unchanged (git status stays clean).
lab: setup
	@echo "==> JupyterLab on http://$(LAB_IP):$(LAB_PORT)/lab: open the URL with ?token=... printed below"
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks --ip=$(LAB_IP) --port=$(LAB_PORT) \
		--FileContentsManager.post_save_hook=netra_ws.notebooks.git_after_save \
		$(strip $(LAB_AUTO)) $(LAB_ARGS)

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .mypy_cache .hypothesis
	find . -path ./data -prune -o -name '*.egg-info' -prune -exec rm -rf {} + \
		-o -name __pycache__ -prune -exec rm -rf {} + \
		-o -name .ipynb_checkpoints -prune -exec rm -rf {} +
