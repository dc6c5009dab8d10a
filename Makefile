# regcourse: the course "Regularization for deep networks" and its companion package.
# `make book` builds the site, `make test` checks everything (CI runs exactly this).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VENDOR := book/_vendor/.installed
BUILD  := _build
HTML   := $(BUILD)/html
PORT   ?= 8000
NOTEBOOKS := $(sort $(wildcard book/*.ipynb))
export PYTHONHASHSEED ?= 0
export REGCOURSE_NUM_THREADS ?= 1

.PHONY: help install book book-strict test test-unit test-notebooks test-determinism test-site lab serve \
        notebooks student grade bench clean

help:
	@echo "make book       build the site into $(HTML) (executes the chapters, cached)"
	@echo "make test       unit tests, torch cross-checks, nbval on every chapter, strict build, browser check"
	@echo "make lab        JupyterLab on the chapters, with regcourse importable"
	@echo "make serve      serve the built site on http://127.0.0.1:$(PORT)/"
	@echo "make notebooks  re-execute the chapters in place (refreshes their committed outputs)"
	@echo "make student    the chapters without solutions, into student/"
	@echo "make grade      grade a submission: make grade SUBMISSION=path/to/notebook.ipynb"
	@echo "make bench      speed against torch, chapter times, book build (writes bench/results.md)"
	@echo "make clean      remove the build, the virtual environment and the vendored JS"

# --- environment -----------------------------------------------------------
$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 is needed (python3.11 or python3 on PATH)"; exit 1; }
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP) $(VENDOR)

# MathJax and mermaid are served from the site itself, never from a CDN; so is axe-core,
# which only the accessibility test loads (tests/test_site.py), no page does.
$(VENDOR): package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is needed to install MathJax, mermaid and axe-core (apt-get install npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf book/_vendor && mkdir -p book/_vendor/mermaid
	cp -r node_modules/mathjax/es5 book/_vendor/mathjax
	cp node_modules/mermaid/dist/mermaid.esm.min.mjs book/_vendor/mermaid/
	mkdir -p book/_vendor/mermaid/chunks && cp -r node_modules/mermaid/dist/chunks/mermaid.esm.min book/_vendor/mermaid/chunks/
	mkdir -p book/_vendor/axe && cp node_modules/axe-core/axe.min.js node_modules/axe-core/LICENSE book/_vendor/axe/
	@touch $@

# --- the book --------------------------------------------------------------
book: install
	$(BIN)/jupyter-book build . --path-output .
	@echo "The site is in $(HTML)/index.html; run 'make serve' and open http://127.0.0.1:$(PORT)/"

# Strict build (warnings are errors, nitpicky references) from the committed
# outputs, which `test-notebooks` has just proved to reproduce.
book-strict: install
	@# the copy sits beside _config.yml: relative paths in it (local extensions, the .bib) resolve from there
	sed 's/execute_notebooks: cache/execute_notebooks: "off"/' _config.yml > _config.strict.yml
	$(BIN)/jupyter-book build . --path-output . --config _config.strict.yml -W -n --keep-going

# --- tests -----------------------------------------------------------------
test: install
	$(MAKE) test-unit
	$(MAKE) test-notebooks
	$(MAKE) test-determinism
	$(MAKE) book-strict
	$(MAKE) test-site

test-unit: install
	$(BIN)/python -m pytest -q -m "not site" tests

# nbval re-executes every chapter and compares each cell's output with the committed one.
test-notebooks: install
	$(BIN)/python -m pytest -v --nbval --nbval-current-env -p no:cacheprovider -n 2 --dist loadfile $(NOTEBOOKS)

# The same comparison with 2 torch threads and another hash seed: the committed
# outputs (made with 1 thread, PYTHONHASHSEED=0) must come out identical. One notebook
# at a time: 2 kernels x 2 threads on 2 cores would spin-wait.
test-determinism: install
	REGCOURSE_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE PYTHONHASHSEED=12345 $(BIN)/python -m pytest -q --nbval --nbval-current-env -p no:cacheprovider $(NOTEBOOKS)

test-site: install
	$(BIN)/python -m pytest -q -m site tests

# --- working with the chapters ---------------------------------------------
lab: install
	$(BIN)/jupyter lab --notebook-dir=book $(if $(filter 0,$(shell id -u)),--allow-root)

serve:
	@test -f $(HTML)/index.html || { echo "no site yet: run 'make book' first"; exit 1; }
	@echo "serving $(HTML) on http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory $(HTML)

# Then write the executed values into the prose's marked numbers (regcourse/notebook.py).
notebooks: install
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 $(NOTEBOOKS)
	$(BIN)/python -m regcourse.notebook fill $(NOTEBOOKS)

clean:
	rm -rf $(BUILD) $(VENV) node_modules book/_vendor student .pytest_cache

# --- speed -----------------------------------------------------------------
# Speed of regcourse against torch, chapter execution times, cold vs cached book build
# (not part of `make test`; slow). Writes bench/results.md and bench/results.json.
# Select parts with e.g. `make bench BENCH_ARGS="--only ops --threads 1"`.
BENCH_ARGS ?=
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# --- coursework (coursework/, book/instructor_guide.md) -----------------------
# Student versions of the chapters (solutions and outputs removed) into student/.
student: install
	$(BIN)/python -m coursework student --out student $(NOTEBOOKS)

# Grade one submission with the hidden tests, in the bubblewrap sandbox (apt-get install bubblewrap):
# make grade SUBMISSION=path/to/notebook.ipynb [JSON=report.json] [NO_SANDBOX=1 for trusted code only]
grade: install
	@test -n "$(SUBMISSION)" || { echo "usage: make grade SUBMISSION=path/to/notebook.ipynb [JSON=report.json] [NO_SANDBOX=1]"; exit 2; }
	$(BIN)/python -m coursework grade "$(SUBMISSION)" $(if $(JSON),--json "$(JSON)") $(if $(NO_SANDBOX),--no-sandbox)
