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

# The pure modules (no network): their docstring examples run in `make test`. The same list
# as the strict [[tool.mypy.overrides]] of pyproject.toml (tests/test_exports.py checks);
# wildcard drops a name that is not a file (report.py became the report/ package).
PURE_MODULES := $(wildcard $(addprefix netra_ws/,events.py trace.py _trace_columns.py \
	expect.py analysis.py redact.py har.py tokens.py errors.py verdicts.py untrusted.py \
	report.py report/*.py browse.py diff.py))
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
	@echo "make lab        set up .venv and open JupyterLab on notebooks/"
	@echo "make lint       run ruff check"
	@echo "make typecheck  run mypy (configured in pyproject.toml [tool.mypy])"
	@echo "make setup      install requirements.txt and netra_ws (editable) into .venv"
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

setup-dev: $(DEV_STAMP)

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

lab: $(RUN_STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .mypy_cache .hypothesis
	find . -path ./data -prune -o -name '*.egg-info' -prune -exec rm -rf {} + \
		-o -name __pycache__ -prune -exec rm -rf {} + \
		-o -name .ipynb_checkpoints -prune -exec rm -rf {} +
