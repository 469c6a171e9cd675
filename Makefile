# Two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.mlipflows-installed

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

# torch goes in first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/mlipflows demo

test: setup
	$(PY) -m pytest -m "not gpu"

test-fast: setup
	$(PY) -m pytest -m "not slow and not gpu"

lint: setup
	$(VENV)/bin/ruff check mlipflows tests benchmarks
	$(VENV)/bin/ruff format --check mlipflows tests benchmarks

bench: setup
	$(PY) benchmarks/relax_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
