# Two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench bench-gpu bench-quick clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m experiments.quickstart

# The suite in 2 worker processes (pytest-xdist): XLA compiles mostly on one core, so two halve the time on 2 cores.
# Work stealing: a worker that runs out of tests takes the other's queued ones, so a few long tests (multi-process,
# sharded and resume runs of 30-60 s) do not leave one worker idle at the end.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal tests

lint: $(STAMP)
	$(VENV)/bin/ruff check mtrl experiments benchmarks tests

# The published tables (benchmarks/results/, docs/benchmarks.md): tens of minutes on 2 CPU cores.
bench: $(STAMP)
	$(PY) -m benchmarks.throughput --solve-seeds 0-9
	$(PY) -m benchmarks.scaling
	$(PY) -m benchmarks.minatar
	$(PY) -m benchmarks.report

# The accelerator tables, on a machine with a GPU (the same venv with the cuda12 extra: pip install -e ".[dev,cuda12]"):
# about 15 minutes on one H100, into GPU_OUT, named after the card: make bench-gpu GPU_OUT=benchmarks/results/gpu-h100
bench-gpu: $(STAMP)
	@case "$(GPU_OUT)" in benchmarks/results/gpu-?*) ;; *) echo "name the card's folder: make bench-gpu \
	GPU_OUT=benchmarks/results/gpu-<card> (benchmarks.report publishes benchmarks/results/gpu-*)"; exit 2;; esac
	$(PY) -m benchmarks.gpu_kernels --save-target-config $(GPU_OUT)/target_config.txtpb --out $(GPU_OUT)
	$(PY) -m benchmarks.throughput --solve-seeds 0-2 --out $(GPU_OUT)
	$(PY) -m benchmarks.scaling --out $(GPU_OUT)
	$(PY) -m benchmarks.minatar --budget paper --out $(GPU_OUT)
	$(PY) -m benchmarks.report

# A few minutes: every benchmark at small sizes, into runs/bench-quick/ (the published files are left alone).
bench-quick: $(STAMP)
	$(PY) -m benchmarks.throughput --quick --out runs/bench-quick
	$(PY) -m benchmarks.scaling --quick --out runs/bench-quick
	$(PY) -m benchmarks.minatar --quick --out runs/bench-quick
	$(PY) -m benchmarks.report --results runs/bench-quick --out runs/bench-quick/benchmarks.md

clean:
	rm -rf $(VENV) runs .pytest_cache
