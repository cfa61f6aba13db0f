"""Shared constants and fixtures of the infrastructure tests (book, Colab, notebooks, student edition, browser)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
BUILD_HTML = REPO / "_build" / "html"

# The chapters of the book, in order (COURSE_SPEC.md); _toc.yml must list exactly these.
CHAPTERS = [
    "01_weighted_sum",
    "02_gains_and_costs",
    "03_weight_distributions",
    "04_pruning_vs_dropout",
    "05_pruning_loop",
    "06_ratio_curves",
    "07_structured_pruning",
    "08_iterative_pruning",
    "09_lottery_ticket",
    "10_rewinding_stability",
]
BOOK_PAGES = ["book/intro", "book/setup", "book/glossary", "book/references", "book/performance"]


def load_config() -> dict:
    """The book's _config.yml as a dict."""
    return yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))


def repository_url() -> str:
    """``repository.url`` of _config.yml, the one place the repository URL is written."""
    return load_config()["repository"]["url"].rstrip("/")


def colab_url(chapter: str) -> str:
    """The Colab launch URL of a chapter, derived from _config.yml."""
    config = load_config()
    repo = repository_url().removeprefix("https://github.com/")
    branch = config["repository"].get("branch", "main")
    base = config["launch_buttons"]["colab_url"].rstrip("/")
    return f"{base}/github/{repo}/blob/{branch}/notebooks/{chapter}.ipynb"


def load_tool(name: str):
    """Import ``tools/<name>.py`` (the tools folder is scripts, not a package) and return the module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook_path(chapter: str) -> Path:
    return NOTEBOOK_DIR / f"{chapter}.ipynb"


def existing_chapters() -> list[str]:
    return [c for c in CHAPTERS if notebook_path(c).exists()]


def venv_bin(name: str) -> str:
    """Path of a console script of the interpreter running the tests (.venv/bin/NAME)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} nor on PATH; run `make env`")
    return found


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks and tensors: one PyTorch thread is faster than two on a busy machine (restored after the module)."""
    from lecturelib.machine import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def book_html() -> Path:
    """Build the book once per test session into _build/html and return that folder.

    Runs ``jupyter-book build . -W -n --keep-going --all`` on a clean _build/html: warnings
    are errors, and every page is rebuilt, so a warning in a page that did not change since
    the last build is still reported (an incremental build would hide it) and no stale page
    of an earlier build survives.
    """
    missing = [c for c in CHAPTERS if not notebook_path(c).exists()]
    if missing:
        pytest.fail(
            "the book cannot build: chapters listed in _toc.yml are missing: "
            + ", ".join(f"notebooks/{c}.ipynb" for c in missing)
        )
    for stale in (BUILD_HTML, REPO / "_build" / ".doctrees", REPO / "_build" / "jupyter_execute"):
        shutil.rmtree(stale, ignore_errors=True)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the book never executes code, so it needs no lecturelib
    cmd = [venv_bin("jupyter-book"), "build", str(REPO), "-W", "-n", "--keep-going", "--all"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    log = proc.stdout + proc.stderr
    (REPO / "_build").mkdir(exist_ok=True)
    (REPO / "_build" / "book-build.log").write_text(log, encoding="utf-8")
    failed = proc.returncode != 0 or "There was an error in building your book" in log
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    if failed or warnings:
        details = "\n".join(warnings[:60]) or log[-6000:]
        pytest.fail(
            f"`{' '.join(cmd[1:])}` failed (exit {proc.returncode}); full log in _build/book-build.log:\n{details}",
            pytrace=False,
        )
    assert (BUILD_HTML / "index.html").exists(), "the build produced no _build/html/index.html"
    return BUILD_HTML
