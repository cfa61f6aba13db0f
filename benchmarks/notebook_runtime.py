"""Figure 5: how long the course takes to run — seconds to execute each chapter notebook.

Each chapter listed in ``_toc.yml`` (``notebooks/NN_*.ipynb``) is copied to a temporary folder and
executed there with :mod:`nbclient` in a fresh ``python3`` kernel, with ``PYTHONPATH`` set to the
repository root (the checkout's lecturelib) and an empty experiment cache (``LECTURELIB_CACHE``),
so the time is what a student's first run costs under the default profile. The committed notebooks
are never written. The time includes the kernel's start. Chapters without a notebook yet are
listed as ``missing``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from . import REPO, Timer

TARGET_TOTAL_SECONDS = 180.0


def chapters_from_toc(toc_path: str | os.PathLike = REPO / "_toc.yml") -> list[str]:
    """Return the chapter notebooks the table of contents lists, in order, e.g. ``["01_weighted_sum", …]``."""
    toc = yaml.safe_load(Path(toc_path).read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            file = node.get("file")
            if isinstance(file, str) and re.fullmatch(r"notebooks/\d\d_[\w-]+", file):
                found.append(file.split("/", 1)[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def execute_notebook(
    path: str | os.PathLike, *, timeout: int = 300, budget: float | None = 150.0, repo: str | os.PathLike = REPO
) -> dict:
    """Execute a copy of the notebook at ``path`` in a temporary folder; return ``{"status", "seconds", "error"}``.

    Args:
        path: the ``.ipynb`` file (it is copied, never written).
        timeout: seconds any single cell may take.
        budget: seconds the whole notebook may take (``None``: no limit); past it the kernel is
            stopped and the status is ``"timeout"``, so one runaway notebook cannot stall ``make bench``.
        repo: the folder put on the kernel's ``PYTHONPATH``.

    Returns:
        ``status`` is ``"ok"``, ``"error"`` (a cell raised or exceeded ``timeout``) or ``"timeout"``;
        ``seconds`` is the wall time from starting the kernel to the end (or the stop).
    """
    import asyncio

    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="bench-nb-") as tmp:
        copy = Path(tmp) / Path(path).name
        shutil.copyfile(path, copy)
        nb = nbformat.read(copy, as_version=4)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(Path(repo).resolve())
        env["LECTURELIB_CACHE"] = str(Path(tmp) / "cache")
        env.pop("MPLBACKEND", None)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": tmp}})

        async def execute() -> None:
            await asyncio.wait_for(client.async_execute(env=env), budget)

        status, error = "ok", None
        with Timer() as t:
            try:
                asyncio.run(execute())
            except (asyncio.TimeoutError, TimeoutError):
                status, error = "timeout", f"stopped after the {budget:g} s budget"
            except Exception as exc:  # a failing notebook is a result, not a crash of the benchmark
                status, error = "error", error_line(exc)
        if status == "error" and budget is not None and t.seconds >= budget:
            # stopping a kernel mid-start can raise from its sockets instead of TimeoutError
            status, error = "timeout", f"stopped after the {budget:g} s budget"
    return {"status": status, "seconds": t.seconds, "error": error}


def error_line(exc: BaseException) -> str:
    """Return ``"Type: last line of the message"`` of ``exc`` without terminal colour codes, at most 200 characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    lines = [line.strip() for line in text.splitlines() if re.search(r"[A-Za-z0-9]", line)]
    last = lines[-1] if lines else ""
    return f"{type(exc).__name__}: {last}"[:200]


def run(
    chapters: Sequence[str] | None = None,
    *,
    notebook_dir: str | os.PathLike = REPO / "notebooks",
    timeout: int = 300,
    budget: float | None = 150.0,
) -> dict:
    """Execute every chapter notebook once, in order; return per-chapter seconds and the total.

    Args:
        chapters: notebook names without ``.ipynb`` (default: those in ``_toc.yml``).
        notebook_dir: where the notebooks are.
        timeout: seconds any single cell may take.
        budget: seconds any single notebook may take (see :func:`execute_notebook`).

    Returns:
        A JSON-ready dict: ``notebooks`` (name, status ``ok`` / ``error`` / ``timeout`` / ``missing``, seconds),
        ``total_seconds`` over the executed ones, counts, the target and whether it is met
        (only when every chapter exists and ran without error).
    """
    chapters = chapters_from_toc() if chapters is None else list(chapters)
    rows = []
    for name in chapters:
        path = Path(notebook_dir) / f"{name}.ipynb"
        if not path.exists():
            rows.append({"notebook": name, "status": "missing", "seconds": None, "error": None})
            continue
        rows.append({"notebook": name, **execute_notebook(path, timeout=timeout, budget=budget)})
    return summarise(rows, budget)


def summarise(rows: list[dict], budget: float | None = None) -> dict:
    """Return the runtime record of ``rows`` (each ``{"notebook", "status", "seconds", "error"}``) with totals and the target."""
    executed = [r for r in rows if r["status"] != "missing"]
    total = sum(r["seconds"] for r in executed)
    complete = all(r["status"] == "ok" for r in rows) and bool(rows)
    return {
        "settings": {"profile": "default (ci): notebooks as committed, empty experiment cache", "runner": "nbclient, kernel python3", "notebook_budget_seconds": budget},
        "notebooks": rows,
        "total_seconds": total,
        "executed": len(executed),
        "missing": [r["notebook"] for r in rows if r["status"] == "missing"],
        "failed": [r["notebook"] for r in rows if r["status"] in ("error", "timeout")],
        "target_total_seconds": TARGET_TOTAL_SECONDS,
        "complete": complete,
        "met": (total <= TARGET_TOTAL_SECONDS) if complete else None,
    }
