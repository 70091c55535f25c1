# `make run`: the main job (trains the same GAN on every backend and writes the comparison report).
# `make test`: every test, every backend. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tlx-gan-installed

.PHONY: run test lint matrix clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tlx-gan compare --overwrite

test: $(STAMP)
	$(BIN)/ruff check tlx_gan tests examples
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check tlx_gan tests examples

clean:
	rm -rf $(VENV) runs .pytest_cache
