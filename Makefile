# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create (or reuse) the local virtual environment .venv and install the pinned requirements.
# Needs Python 3.11 or 3.12 (PYTHON=python3.12 to pick one) and nothing else: the sample is built in.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_VERSION := $(shell sed -n 's/^torch==//p' requirements.txt)
# Where torch comes from. Default: PyTorch's CPU-only index (one ~190 MB wheel; PyPI's torch is the CUDA
# build, about 2.7 GB of wheels with its NVIDIA libraries) - unless pip is configured with its own
# index, mirror or wheel folder (`pip config list`), which is then used as it is.
# Override: `make demo TORCH_INDEX=` (plain pip), `TORCH_INDEX=https://download.pytorch.org/whl/cu130` (CUDA).
TORCH_INDEX ?= $(shell $(PYTHON) -m pip config list 2>/dev/null | grep -q -E '(index-url|find-links)=' \
                 || echo https://download.pytorch.org/whl/cpu)

.PHONY: venv demo test bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))' || \
	  { echo "error: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); talkingface needs 3.11 or 3.12 (make PYTHON=python3.12 ...)" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/make_demo.py --out output

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/run_all.py --quick

clean:
	rm -rf output .pytest_cache
