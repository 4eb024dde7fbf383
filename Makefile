# The two commands the README opens with: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

demo: venv
	cd examples && ../$(BIN)/python quickstart.py

lint: venv
	$(BIN)/ruff check celery_bgtask tests examples bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Needs nothing outside the repository (CI also runs it in a fresh clone: .ci/run).
test: venv lint
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) examples/*.sqlite3* *.sqlite3*
