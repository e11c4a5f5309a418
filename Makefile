# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv, then run the main job on the embedded data
#   make test   create .venv, then run the test suite
# The environment is rebuilt only when pyproject.toml or requirements.lock change.

VENV   := .venv
STAMP  := $(VENV)/.installed
PY     := $(VENV)/bin/python
CHAOS  := $(VENV)/bin/chaos
export CHAOS_WORKSPACE ?= ./chaos-workspace

.PHONY: demo test env bench completions lock clean

env: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@python=$$(scripts/find-python) && echo "using $$python" && \
	  rm -rf $(VENV) && "$$python" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(CHAOS) run

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/tokenize.py
	$(PY) benchmarks/ssd.py
	$(PY) benchmarks/cfm.py
	$(PY) benchmarks/planner.py
	$(PY) benchmarks/multiverse.py

completions: $(STAMP)
	for sh in bash zsh fish; do $(CHAOS) completion $$sh > completions/chaos.$$sh; done

# Refresh the pinned versions after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
