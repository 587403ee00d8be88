# Annotated DDPM: the two commands a newcomer needs are `make run` and `make test`; each does its own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# This exact torch: on our CPU machines pip takes a local CPU wheel in seconds; a bare `torch` downloads a
# multi-GB CUDA build. Users elsewhere may override it: `make setup TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
DEBIAN_DATA := /usr/share/datasets/fashion-mnist
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.py))
# The notebooks with an explorer (a slider): `make test` executes them in JupyterLab (browser), the others under nbval.
EXPLORER_NOTEBOOKS := $(shell grep -lP "_explorer\x28" $(NOTEBOOKS))
PROFILE ?= $(DDPM_PROFILE)

.PHONY: help setup data test lint unit unit-all nbval browser browser-deps drift run check-profile site notebooks student course lab bench train sample kaggle clean

help:
	@echo "make run      set up, get the data, execute notebooks 00-08 into build/ (figures and checkpoints in runs/)"
	@echo "make test     set up, get the data, lint, notebook drift gate, every test, every notebook under nbval (tiny)"
	@echo "make site     build/site/: the executed series as a static site (runs the notebooks only when build/ has none fresh)"
	@echo "make unit     the fast tests only (no notebook executed, no model trained): the inner loop"
	@echo "make kaggle   build dist/kaggle/student/ and dist/kaggle/teacher/: two Kaggle datasets (KAGGLE_DATASET=you/ddpm-lib)"
	@echo "make student  rewrite student/, the student edition (exercises first, solutions replaced by stubs)"
	@echo "make course   write dist/course/, an nbgrader course: one autograded assignment per notebook with exercises"
	@echo "make setup | data | notebooks | student | course | kaggle | lab | bench | train | sample | clean"

# --- set-up: idempotent, and fast when nothing changed (the stamp depends on pyproject.toml) ---------------
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# --- data: the Debian package where we can (root + apt-get), else the Hugging Face hub -----------------------
data: setup
	@if [ -n "$$DDPM_DATA_DIR" ] || [ -f $(DEBIAN_DATA)/train-images-idx3-ubyte.gz ]; then \
		echo "Fashion-MNIST: local IDX files found"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
		|| { echo "apt-get could not install dataset-fashion-mnist; trying the hub"; true; }; \
	fi
	$(PY) -m ddpm_lib data

# --- tests ----------------------------------------------------------------------------------------------------
# Each notebook runs once (nbval, or JupyterLab in `browser`); every test runs once (unit-all: the slow ones too).
test: setup data lint drift unit-all nbval browser

lint: setup
	$(VENV)/bin/ruff check --output-format concise ddpm_lib tests bench notebooks tools

# `make unit` leaves out the tests marked slow (they execute a notebook or train a model); `make test` runs them all.
unit: setup
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m pytest tests -q -n auto --dist loadfile -m "not slow"

# Two or more pytest-xdist workers (one per CPU), a test file each at a time (module fixtures are built once); one
# torch thread per worker, so that workers do not fight over the cores (2 workers x 2 threads on 2 cores stall).
unit-all: setup data
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m pytest tests -q -n auto --dist loadfile -m "not browser"

# The .ipynb files are generated from the .py files and committed without outputs: fail when they drift.
# So is the student edition in student/ (generated from them by tools/make_student.py; Colab opens it from GitHub).
drift: setup
	$(VENV)/bin/jupytext --quiet --update --to ipynb $(NOTEBOOKS)
	$(PY) tools/make_student.py --out student $(NOTEBOOKS:.py=.ipynb) >/dev/null
	git diff --exit-code -- notebooks/ student/ || { echo "notebooks/*.ipynb or student/ do not match notebooks/*.py: run 'make notebooks' and commit"; exit 1; }
	$(VENV)/bin/nbstripout --verify notebooks/*.ipynb student/*.ipynb || { echo "a notebook carries outputs: run 'make notebooks'"; exit 1; }

# nbval executes the student edition (tools/make_student.py --for-nbval, written to a temporary folder): every
# solution is a stub, each check cell must print its "not implemented yet" line (its output is compared), and every
# cell after it must still run. 00 and 07 have no exercise: their student edition is the teacher's. The solutions
# pass their checks in tests/test_exercises.py. The kernel finds this clone's ddpm_lib through PYTHONPATH.
# Checkpoints and figures go to a temporary DDPM_RUNS_DIR, removed afterwards: runs/ stays as `make run` left it.
# The notebooks with an explorer are not nbval's: `make browser` runs them in JupyterLab (the same checks, and their
# sliders). tools/nbval_keep.py keeps what nbval executed in build/test-notebooks/, for the site test.
TEST_NOTEBOOKS := build/test-notebooks
nbval: setup data
	rm -rf $(TEST_NOTEBOOKS); tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PY) tools/make_student.py --for-nbval --out "$$tmp/notebooks" $(NOTEBOOKS:.py=.ipynb) >/dev/null && \
	cd "$$tmp/notebooks" && PYTHONPATH="$(CURDIR)" DDPM_PROFILE=tiny DDPM_RUNS_DIR="$$tmp/runs" MPLBACKEND=Agg \
		NBVAL_KEEP_DIR="$(CURDIR)/$(TEST_NOTEBOOKS)" "$(CURDIR)/$(PY)" -m pytest -q -p no:cacheprovider \
		-p tools.nbval_keep --nbval-lax --nbval-current-env \
		$(patsubst notebooks/%.py,%.ipynb,$(filter-out $(EXPLORER_NOTEBOOKS),$(NOTEBOOKS)))

# A real browser (Debian's chromium, driven by Playwright; `make browser-deps` installs it): JupyterLab runs the
# student edition of each notebook with an explorer (tiny), every slider is moved and its figure must change; then
# the site is built from those notebooks and nbval's, and every page must load without console errors, with its math
# rendered, its images loaded and its links resolved (tests/test_site.py; screenshots in build/browser-shots/).
browser: setup data browser-deps
	OMP_NUM_THREADS=1 MPLBACKEND=Agg SITE_TEST_NOTEBOOKS="$(TEST_NOTEBOOKS)" $(PY) -m pytest -q -p no:cacheprovider \
		-m browser tests/test_site.py

browser-deps:
	@command -v chromium >/dev/null || { \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; \
		else echo "the browser test needs Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

# --- the main job ------------------------------------------------------------------------------------------------
# tools/run_notebooks.py executes each notebook in a fresh kernel (nbclient, as `nbconvert --execute`), prints every
# cell as it starts and what it prints, and stops with an error naming the notebook and cell when a cell outlives
# its timeout: the profile's training budget plus a margin for cells tagged "training", CELL_TIMEOUT s for the others
# (`make run CELL_TIMEOUT=1800` on a very slow or busy machine).
CELL_TIMEOUT ?= 900
run: check-profile data
	@mkdir -p build runs
	@echo "profile: $${DDPM_PROFILE:-auto}"
	MPLBACKEND=Agg $(PY) tools/run_notebooks.py --html build --timeout $(CELL_TIMEOUT) $(NOTEBOOKS:.py=.ipynb)
	@echo; echo "Executed notebooks: build/*.html (make site: the site from them)   samples, GIFs, checkpoints: runs/"

# The site: the executed notebooks of `make run` in build/ (a notebook runs again only when its build/ copy is older
# than notebooks/*.ipynb, or missing), a landing page and docs/, built with Sphinx + MyST-NB (tools/build_site.py).
EXECUTED := $(NOTEBOOKS:notebooks/%.py=build/%.ipynb)
site: $(EXECUTED)
	$(PY) tools/build_site.py --notebooks build --out build/site

build/%.ipynb: notebooks/%.ipynb | setup
	@$(MAKE) --no-print-directory check-profile data >/dev/null
	@mkdir -p build runs
	MPLBACKEND=Agg $(PY) tools/run_notebooks.py --html build --timeout $(CELL_TIMEOUT) $<

# Fail in seconds, before any notebook runs, when DDPM_PROFILE names no profile (exit status 2).
check-profile: setup
	@$(PY) tools/run_notebooks.py --check-profile

notebooks: setup
	$(VENV)/bin/jupytext --quiet --update --to ipynb $(NOTEBOOKS)
	$(VENV)/bin/nbstripout notebooks/*.ipynb
	$(PY) tools/make_student.py --out student $(NOTEBOOKS:.py=.ipynb) >/dev/null

# The student edition, committed in student/: each exercise moves before its answer, and nbgrader's ClearSolutions
# turns each solution (between the BEGIN/END SOLUTION markers of an exercise cell) into a stub; docs/teaching.md
# explains how to use it in class.
student: setup
	$(PY) tools/make_student.py --out student $(NOTEBOOKS:.py=.ipynb)

# An nbgrader course folder: nbgrader_config.py and source/NN_name/ for each notebook with exercises; then nbgrader's
# own commands in dist/course (docs/teaching.md, "Grading with nbgrader").
course: setup
	$(PY) tools/make_course.py --out dist/course

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	$(PY) bench/bench.py

train: setup data
	$(PY) -m ddpm_lib train --profile $(or $(PROFILE),small) --out runs/$(or $(PROFILE),small) --resume

sample: setup
	$(PY) -m ddpm_lib sample --checkpoint runs/$(or $(PROFILE),small)/checkpoint.pt --n 64 --sampler ddim \
		--steps 50 --out runs/$(or $(PROFILE),small)/cli_samples.png --gif runs/$(or $(PROFILE),small)/cli_denoise.gif

# --- Kaggle: two datasets a teacher publishes: dist/kaggle/student (students attach it: the student edition, no
# solutions) and dist/kaggle/teacher (private: the notebooks with their solutions). Each holds the ddpm_lib wheel
# (version from pyproject.toml), einops' wheel, its notebooks and its dataset-metadata.json.
KAGGLE_DATASET ?= annotated-ddpm/ddpm-lib
kaggle: setup
	$(PY) tools/kaggle_bundle.py --out dist/kaggle --id $(KAGGLE_DATASET)

clean:
	rm -rf build dist .pytest_cache notebooks/.ipynb_checkpoints
