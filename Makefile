# `make run`: the main job (trains the same GAN on every backend and writes the comparison report).
# `make test`: every test, every backend. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tlx-gan-installed
# Test files run two at a time (pytest-xdist; a file's tests stay together, so its shared fixtures run once):
# most of a test's time is one child process starting and running a framework, much of it on one core.
TEST_WORKERS ?= 2

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
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check tlx_gan tests examples

clean:
	rm -rf $(VENV) runs .pytest_cache
