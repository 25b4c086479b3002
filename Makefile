# The README's commands. `make test` and `make demo` set up their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned to the CPU build on machines without CUDA (see README).
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup test lint demo clean

$(BIN)/synboost: setup.py package.xml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[onnx,ros,bag,viz,dev]"
	touch $@

setup: $(BIN)/synboost

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

demo: setup
	$(BIN)/synboost demo run

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache out
