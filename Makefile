# Makefile: build, test and package the course "Pruning: from a weighted sum to lottery tickets".
#
#   make book     build the HTML book from the committed notebook outputs (never executes them)
#   make test     the whole test suite (what CI runs through .ci/run)
#   make student  write the student edition (solutions stubbed, outputs cleared) to _build/student/
#   make bench    run the benchmarks (python -m benchmarks)
#   make lab      open the notebooks in JupyterLab (lecturelib from this checkout)
#   make execute  re-execute every notebook in place after a lecturelib change and record the CPU
#                 they ran on in notebooks/executed_on.json (then commit both)
#   make clean    remove build outputs and every cache (keeps .venv; `make distclean` removes it too)
#
# Why lecturelib is NOT installed into .venv: the notebooks, the book and the tests must
# always use the lecturelib of *this* checkout. An install (even an editable one) can go
# stale or shadow the working tree. Instead pytest puts the repo root on sys.path
# (pyproject.toml: pythonpath = ["."]), `python -m ...` run from the repo root finds it in
# the current directory, and `make execute` sets PYTHONPATH to the repo root. The one place
# where a real `pip install .` is exercised is tests/test_notebooks.py, which installs the
# package into a throw-away virtual environment to prove the packaging (and so the Colab
# bootstrap) works.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
CHROMIUM := /usr/bin/chromium

.PHONY: help env book test student bench lab execute clean distclean

help:
	@sed -n '3,10p' Makefile | sed 's/^# *//'

# .venv holds exactly what uv.lock pins for this platform (pyproject.toml: [tool.uv] and the dev
# group) and is re-synced only when uv.lock is newer than the stamp, so a second `make env` takes
# well under a second. uv is the one in .venv (uv.lock pins it), else a working one on PATH; on a
# machine with neither, pip installs the locked uv into a temporary folder (--target: no venv
# needed, and allowed where the system Python is externally managed), which creates .venv and is
# deleted after. `uv sync --frozen` installs the lock as it is (tests/test_lock.py checks that it
# is up to date with pyproject.toml) and never installs lecturelib (package = false).
$(STAMP): uv.lock
	@boot=""; \
	if [ -x $(VENV)/bin/uv ]; then uv=$(VENV)/bin/uv; \
	elif uv --version >/dev/null 2>&1; then uv=uv; \
	else \
	  version=$$(sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock); \
	  boot=$$(mktemp -d); uv=$$boot/bin/uv; \
	  echo "uv not found: $(PYTHON) -m pip install --target $$boot uv==$$version"; \
	  $(PYTHON) -m pip install --disable-pip-version-check -q --target "$$boot" "uv==$$version" || exit 1; \
	fi; \
	echo "$$uv sync --frozen --python $(PYTHON)"; \
	"$$uv" sync --frozen --python $(PYTHON); status=$$?; \
	[ -z "$$boot" ] || rm -rf "$$boot"; \
	exit $$status
	@touch $@

# System packages for tests/test_browser.py: Debian's chromium, and a Korean font so the
# glossary's Korean terms render in the screenshots. Installed only when missing (and only
# as root); otherwise this is two quick checks.
env: $(STAMP)
	@pkgs=""; \
	if [ ! -x $(CHROMIUM) ]; then pkgs="chromium fonts-nanum"; \
	elif command -v fc-list >/dev/null && [ -z "$$(fc-list :lang=ko)" ]; then pkgs="fonts-nanum"; fi; \
	if [ -n "$$pkgs" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $$pkgs"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$pkgs; \
	  else \
	    echo "note: missing $$pkgs and not root: tests/test_browser.py skips without chromium (fails under CI)"; \
	  fi; \
	fi

book: env
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "Book built: open file://$(CURDIR)/_build/html/index.html"

test: env
	$(PY) -m pytest tests lecturelib --doctest-modules -q

student: env
	$(PY) tools/student_edition.py notebooks _build/student

bench: env
	$(PY) -m benchmarks

lab: env
	PYTHONPATH=$(CURDIR) $(VENV)/bin/jupyter lab notebooks/

execute: env
	PYTHONPATH=$(CURDIR) $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.kernel_name=python3 notebooks/[0-9][0-9]_*.ipynb
	$(PY) tools/numeric_platform.py --record

# Every cache the project writes, wherever it was run from: the experiment cache
# (.lecturelib_cache, in the folder the CLI or a notebook ran in — notebooks/ after `make execute`),
# pytest's and Python's. Datasets downloaded to $LECTURELIB_DATA (~/.cache/lecturelib/data) stay.
clean:
	rm -rf _build build *.egg-info
	find . \( -path ./.venv -o -path ./.git \) -prune -o -type d \
	  \( -name __pycache__ -o -name .lecturelib_cache -o -name .pytest_cache \) -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
