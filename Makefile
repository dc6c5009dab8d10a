# regcourse: the course "Regularization for deep networks" and its companion package.
# `make book` builds the site, `make test` checks everything (CI runs exactly this).

# The first of these that is Python >= 3.11 (checked again before the venv is made).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
            command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
            && { command -v $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the development set (package + book + lab + test tools), pinned; see requirements/
REQUIREMENTS := requirements/dev.txt
VENDOR := book/_vendor/.installed
BUILD  := _build
HTML   := $(BUILD)/html
PORT   ?= 8000
NOTEBOOKS := $(sort $(wildcard book/*.ipynb))
export PYTHONHASHSEED ?= 0
export REGCOURSE_NUM_THREADS ?= 1

.PHONY: help install book book-strict pdf dist test test-unit test-notebooks test-determinism test-site test-lab test-browsers lab serve \
        notebooks student grade bench clean distclean check-system requirements

help:
	@echo "make book       build the site into $(HTML) (executes the chapters, cached), with the PDF"
	@echo "make pdf        the whole course as one PDF: $(BUILD)/pdf/regcourse.pdf"
	@echo "make test       unit tests, torch cross-checks, nbval on every chapter, strict build, site and JupyterLab in a browser"
	@echo "make lab        JupyterLab on the chapters, with regcourse importable"
	@echo "make serve      serve the built site on http://127.0.0.1:$(PORT)/"
	@echo "make notebooks  re-execute the chapters in place (refreshes their committed outputs)"
	@echo "make student    the chapters without solutions, into student/"
	@echo "make grade      grade a submission: make grade SUBMISSION=path/to/notebook.ipynb, or a class: SUBMISSIONS=folder/"
	@echo "make bench      speed against torch, chapter times, book build (writes bench/results.md)"
	@echo "make dist       the package's wheel and sdist, into dist/"
	@echo "make requirements  re-pin requirements/*.txt and binder/requirements.txt (pip-tools)"
	@echo "make clean      remove what the builds made (_build, dist, student); keeps .venv"
	@echo "make distclean  clean, and remove .venv, node_modules and the vendored JS too"

# --- environment -----------------------------------------------------------
$(STAMP): $(REQUIREMENTS) pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python >= 3.11 is needed: install python3.11 (e.g. apt-get install python3.11-venv) or run make PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $(PYTHON) is $$($(PYTHON) -V 2>&1); Python >= 3.11 is needed (make PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $(VENV) was made with $$($(BIN)/python -V 2>&1); run 'make distclean' first"; exit 1; }
	@# the pins include setuptools >= 77 (pyproject's license field needs it), so the
	@# editable install below works without build isolation, offline
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP) $(VENDOR)

# System programs `make test` needs: chromium (the browser tests), npm (MathJax, mermaid
# and axe-core for the site), bwrap (the grader's sandbox). Checked first, in seconds: as
# root with apt-get they are installed the way .ci/run does it, otherwise make stops and
# prints the one command to run.
SYSTEM_NEEDS := chromium:chromium npm:npm bwrap:bubblewrap
check-system:
	@missing=""; for need in $(SYSTEM_NEEDS); do command -v $${need%%:*} >/dev/null 2>&1 || missing="$$missing $${need#*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing:$$missing (apt-get, as .ci/run does)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	else \
	  echo "error: make test needs:$$missing. Install with: sudo apt-get install$$missing"; exit 1; \
	fi

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
# The site ships the package wheel beside every chapter and the course PDF
# (book/_ext/downloads.py), so it needs `make dist` first and makes the PDF after.
book: install dist
	$(BIN)/jupyter-book build . --path-output .
	$(MAKE) pdf
	@echo "The site is in $(HTML)/index.html; run 'make serve' and open http://127.0.0.1:$(PORT)/"

# Strict build (warnings are errors, nitpicky references) from the committed
# outputs, which `test-notebooks` has just proved to reproduce.
book-strict: install dist _config.strict.yml
	$(BIN)/jupyter-book build . --path-output . --config _config.strict.yml -W -n --keep-going

# the copy sits beside _config.yml: relative paths in it (local extensions, the .bib) resolve from there
_config.strict.yml: _config.yml
	sed 's/execute_notebooks: cache/execute_notebooks: "off"/' _config.yml > $@

# The whole course as one PDF: the single-page build from the committed outputs,
# printed by headless Chromium (book/_ext/print_pdf.py) after MathJax and mermaid have
# drawn; copied into the site when there is one.
PDF := $(BUILD)/pdf/regcourse.pdf
pdf: install dist _config.strict.yml
	$(BIN)/jupyter-book build . --builder singlehtml --path-output . --config _config.strict.yml -W -n --keep-going
	$(BIN)/python book/_ext/print_pdf.py $(BUILD)/singlehtml $(PDF)
	@if [ -d $(HTML) ]; then cp $(PDF) $(HTML)/ && echo "copied to $(HTML)/"; fi

# The package's wheel and sdist (what the chapters' download menu offers, book/_ext/downloads.py).
# Needs no npm: only the Python environment.
# Built again only when the package's files changed (`make test` needs it twice).
DIST_STAMP   := dist/.built
DIST_SOURCES := pyproject.toml README.md LICENSE LICENSE-content CHANGELOG.md \
                $(shell find regcourse -type f -not -path '*__pycache__*' 2>/dev/null)
dist: $(DIST_STAMP)
$(DIST_STAMP): $(STAMP) $(DIST_SOURCES)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist . >/dev/null
	@ls dist
	@touch $@

# --- tests -----------------------------------------------------------------
test: check-system install
	$(MAKE) test-unit
	$(MAKE) test-notebooks
	$(MAKE) book-strict
	$(MAKE) test-browsers

# Lint and format check (ruff, configured in pyproject.toml), the package's doctests, then
# the unit tests. Needs no npm and no browser.
test-unit: $(STAMP)
	$(BIN)/ruff check regcourse tests bench coursework book
	$(BIN)/ruff format --check regcourse tests bench coursework book
	$(BIN)/python -m pytest -q -p no:cacheprovider --doctest-modules regcourse
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not site and not lab" -n 2 --dist loadfile tests

# nbval re-executes every chapter and compares each cell's output with the committed one.
# The committed outputs are made by `make notebooks` with 1 torch thread and
# PYTHONHASHSEED=0; this pass runs with 2 threads and another hash seed, so one execution
# proves both that the outputs are current and that neither setting changes a number.
# Two kernels at a time: OMP_WAIT_POLICY=PASSIVE keeps 2 kernels x 2 threads on 2 cores
# from spin-waiting (the chapters' training runs in one thread anyway). The wheel test
# (tests/test_wheel.py) re-runs a chapter with 1 thread against the same outputs;
# `make test-determinism` runs every chapter that way (not part of `make test`).
test-notebooks: install
	REGCOURSE_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE PYTHONHASHSEED=12345 $(BIN)/python -m pytest -q --nbval --nbval-current-env -p no:cacheprovider -n 2 --dist loadfile $(NOTEBOOKS)

# The same comparison with the settings the outputs were made with (1 thread, hash seed 0).
test-determinism: install
	REGCOURSE_NUM_THREADS=1 PYTHONHASHSEED=0 $(BIN)/python -m pytest -q --nbval --nbval-current-env -p no:cacheprovider -n 2 --dist loadfile $(NOTEBOOKS)

# the browser tests of the site and the PDF's test (tests/test_pdf.py) read both
# Two browsers at a time (xdist): every test of one page runs on the same worker, which
# opens the page once per colour mode (tests/conftest.py groups them).
test-site: install pdf
	$(BIN)/python -m pytest -q -p no:cacheprovider -m site -n 2 --dist loadgroup tests

# test-site and test-lab in one run, two browsers at a time: JupyterLab on one worker
# while the other opens the site's pages, then both on the site (what `make test` runs).
test-browsers: install pdf
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "site or lab" -n 2 --dist loadgroup tests

# Every chapter opened in a real JupyterLab (with jupyterlab-myst, as `make lab` has it):
# its prose must render as finished text; screenshots in _build/screenshots/lab/.
test-lab: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m lab tests

# --- working with the chapters ---------------------------------------------
lab: $(STAMP)
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
	rm -rf $(BUILD) dist build regcourse.egg-info student .pytest_cache _config.strict.yml

distclean: clean
	rm -rf $(VENV) node_modules book/_vendor

# Re-pin the environments from pyproject.toml's dependencies and extras (pip-tools):
# run (the package), book (+ the site's tools), dev (+ lab and tests; what `make test`
# installs) and Binder's learner set (+ JupyterLab). torch stays 2.13.0
# (requirements/constraints.in); the CPU build's "+cpu" tag is dropped from the pin.
PIN := $(BIN)/pip-compile --quiet --no-emit-index-url --no-emit-find-links --strip-extras \
       -c requirements/constraints.in pyproject.toml
requirements: $(STAMP)
	$(PIN) -o requirements/run.txt
	$(PIN) --extra book -o requirements/book.txt
	$(PIN) --extra test --extra book --extra lab --allow-unsafe -o requirements/dev.txt
	$(PIN) --extra lab -o binder/requirements.txt
	sed -i 's/^torch==\(.*\)+cpu$$/torch==\1/' requirements/*.txt binder/requirements.txt
	@# Binder installs from PyPI, whose torch is the multi-GB CUDA build: take the CPU build
	sed -i '1i --extra-index-url https://download.pytorch.org/whl/cpu' binder/requirements.txt
	@# no pin of pip itself: the venv keeps the pip it was made with
	$(BIN)/python -c "import re,sys; p=sys.argv[1]; t=re.sub(r'\npip==[^\n]*\n(    # via[^\n]*\n)+', '\n', open(p).read()); open(p,'w').write(t)" requirements/dev.txt

# --- speed -----------------------------------------------------------------
# Speed of regcourse against torch, chapter execution times, cold vs cached book build
# (not part of `make test`; slow). Writes bench/results.md and bench/results.json.
# Select parts with e.g. `make bench BENCH_ARGS="--only ops --threads 1"`.
BENCH_ARGS ?=
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# --- coursework (coursework/, book/instructor_guide.md) -----------------------
# Student versions of the chapters (solutions and outputs removed) into student/; with
# ROSTER=roster.csv (an `id` column) one folder student/<id>/ per student, with their own
# numbers in the exercises that have variants (the course secret in COURSEWORK_SECRET or
# SECRET_FILE=path; see book/instructor_guide.md). TESTS_DIR=private/tests for your own hidden tests.
student: install
	$(BIN)/python -m coursework student --out student $(if $(ROSTER),--roster "$(ROSTER)") $(if $(SECRET_FILE),--secret-file "$(SECRET_FILE)") $(if $(TESTS_DIR),--tests-dir "$(TESTS_DIR)") $(NOTEBOOKS)

# Grade with the hidden tests, in the bubblewrap sandbox (apt-get install bubblewrap):
# make grade SUBMISSION=path/to/notebook.ipynb [JSON=report.json] [NO_SANDBOX=1 for trusted code only]
# make grade SUBMISSIONS=inbox/ [ROSTER=roster.csv] [JOBS=2] [GRADEBOOK=grades/grades.csv] [REPORTS=grades/reports]
# (a whole class: a gradebook row and reports per student; run it again to resume or after changes)
GRADEBOOK ?= grades/grades.csv
REPORTS   ?= grades/reports
JOBS      ?= 2
grade: install
	@test -n "$(SUBMISSION)$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSION=path/to/notebook.ipynb [JSON=report.json] [NO_SANDBOX=1]"; echo "   or: make grade SUBMISSIONS=folder/ [ROSTER=roster.csv] [JOBS=2] [GRADEBOOK=...] [REPORTS=...]"; exit 2; }
ifneq ($(SUBMISSIONS),)
	$(BIN)/python -m coursework grade $(SUBMISSIONS) --gradebook "$(GRADEBOOK)" --reports "$(REPORTS)" --jobs $(JOBS) $(if $(ROSTER),--roster "$(ROSTER)") $(if $(TESTS_DIR),--tests-dir "$(TESTS_DIR)") $(if $(SECRET_FILE),--secret-file "$(SECRET_FILE)") $(if $(NO_SANDBOX),--no-sandbox)
else
	$(BIN)/python -m coursework grade "$(SUBMISSION)" $(if $(JSON),--json "$(JSON)") $(if $(TESTS_DIR),--tests-dir "$(TESTS_DIR)") $(if $(SECRET_FILE),--secret-file "$(SECRET_FILE)") $(if $(NO_SANDBOX),--no-sandbox)
endif
