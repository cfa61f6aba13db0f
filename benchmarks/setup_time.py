"""Set-up time of a fresh clone: the old pip path against the uv path, side by side, empty caches.

Each round clones this repository twice into a temp folder and, in each clone, times ``make env``
(creating ``.venv``) and then ``make book``:

* **pip** — the last commit with ``requirements-lock.txt``, whose ``make env`` ran
  ``python3.11 -m venv .venv`` and ``pip install -r requirements-lock.txt``;
* **uv** — the current commit (``HEAD``), whose ``make env`` finds no uv, pip-installs the locked
  uv into a temporary folder and runs ``uv sync --frozen``, which creates ``.venv``.

Both run with empty pip, uv and XDG caches (fresh temp folders) and a ``PATH`` that holds
``python3.11``, ``git`` and ``make`` but no ``uv`` — a clean CI machine. The two paths alternate
(pip, uv, pip, uv, …), and the ratios are medians of the per-round pip ÷ uv ratios.

It takes several minutes per round, so ``make bench`` (``python -m benchmarks``) does not run it and
keeps its last figures; rerun it with::

    python -m benchmarks.setup_time              # 2 rounds, then rewrites results.json's "setup_time" and the page
    python -m benchmarks.setup_time --no-book    # environment creation only
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from packaging.utils import canonicalize_name

from . import (PAGE_PATH, REPO, RESULTS_PATH, load_average, machine_info, paired_ratio, read_results, summary,
               write_results)
from lecturelib._checks import check_positive_int

KEY = "setup_time"
OLD_LOCK = "requirements-lock.txt"
TARGET_ENV_SPEEDUP = 5.0  # issue 18: environment creation at least 5x faster than the pip path
PATHS = ("pip", "uv")


def git(*args: str) -> str:
    """Return the stripped output of ``git ARGS`` run in the repository."""
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def pip_commit() -> str:
    """Return the last commit that still has ``requirements-lock.txt`` (the parent of the one deleting it).

    Raises:
        RuntimeError: the file was never deleted from the history (then there is no uv path to compare).
    """
    deleting = git("log", "-1", "--diff-filter=D", "--format=%H", "--", OLD_LOCK)
    if not deleting:
        raise RuntimeError(f"no commit deletes {OLD_LOCK}: the pip path cannot be told from the uv path")
    return git("rev-parse", f"{deleting}^")


def clean_machine_path(bin_dir: Path) -> str:
    """Return a ``PATH`` of ``bin_dir`` (with ``python3.11``, ``git``, ``make`` linked in) plus /usr/bin:/bin, without uv.

    Raises:
        FileNotFoundError: one of the three tools is missing here.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("python3.11", "git", "make"):
        found = shutil.which(tool)
        if found is None:
            raise FileNotFoundError(f"{tool} is not on PATH; the set-up benchmark needs it")
        # python3.11 may be a pyenv shim (a script that needs pyenv on PATH): link the interpreter itself
        target = (subprocess.run([found, "-c", "import sys; print(sys.executable)"], check=True,
                                 capture_output=True, text=True).stdout.strip() if tool == "python3.11" else found)
        (bin_dir / tool).symlink_to(target)
    path = os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])
    if shutil.which("uv", path=path):
        raise RuntimeError(f"uv is on the clean PATH {path}: the uv path would not bootstrap uv with pip")
    return path


def timed_make(target: str, clone: Path, env: dict[str, str], log: Path) -> float:
    """Run ``make TARGET`` in ``clone`` and return its wall seconds (its output goes to ``log``).

    Raises:
        RuntimeError: make failed (the log's tail is in the message).
    """
    start = time.perf_counter()
    with log.open("a", encoding="utf-8") as out:
        rc = subprocess.run(["make", target], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    if rc != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        raise RuntimeError(f"`make {target}` failed ({rc}) in {clone}:\n{tail}")
    return seconds


def pins(requirements: str) -> int:
    """Return how many ``name==version`` lines a requirements file's text holds."""
    return sum(1 for line in requirements.splitlines() if "==" in line and not line.lstrip().startswith("#"))


def local_wheels(log: str) -> list[str]:
    """Return the distributions pip installed from wheels on the local disk (``Processing /…whl`` lines of ``log``)."""
    return sorted({canonicalize_name(re.sub(r"-\d.*$", "", Path(m).name))
                   for m in re.findall(r"^Processing (/\S+\.whl)", log, flags=re.MULTILINE)})


def one_run(path: str, commit: str, root: Path, clean_path: str, book: bool) -> dict[str, object]:
    """Clone ``commit`` into ``root`` with empty caches, time ``make env`` (and ``make book``); delete it all after.

    Returns ``{"env_seconds", "local_wheels", "book_seconds"}`` (the last only with ``book``).
    """
    clone, caches = root / f"clone-{path}", root / f"caches-{path}"
    log = root / f"{path}-{len(list(root.glob(f'{path}-*.log')))}.log"  # one log per run
    try:
        subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("VIRTUAL_ENV", "PYTHON", "UV_", "CONDA", "PYENV")) and k != "PIP_CACHE_DIR"}
        env.update(PATH=clean_path, PIP_CACHE_DIR=str(caches / "pip"), UV_CACHE_DIR=str(caches / "uv"),
                   XDG_CACHE_HOME=str(caches / "xdg"), MPLCONFIGDIR=str(caches / "matplotlib"))
        out = {"env_seconds": timed_make("env", clone, env, log)}
        out["local_wheels"] = local_wheels(log.read_text(encoding="utf-8", errors="replace"))
        if book:
            out["book_seconds"] = timed_make("book", clone, env, log)
        return out
    finally:
        shutil.rmtree(clone, ignore_errors=True)
        shutil.rmtree(caches, ignore_errors=True)


def run(repeats: int = 2, book: bool = True) -> dict:
    """Time the pip and uv paths ``repeats`` times each, alternating; return the JSON-ready record."""
    check_positive_int("repeats", repeats)
    commits = {"pip": pip_commit(), "uv": git("rev-parse", "HEAD")}
    load_start = load_average()
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="setup-time-") as tmp:
        root = Path(tmp)
        clean_path = clean_machine_path(root / "bin")
        pip_config = pip_config_note(root / "bin" / "python3.11")
        for i in range(repeats):
            for path in PATHS:
                print(f"[setup_time] round {i + 1}/{repeats}: {path} …", flush=True)
                rounds.append({"round": i + 1, "path": path, **one_run(path, commits[path], root, clean_path, book)})
                print(f"[setup_time]   {rounds[-1]}", flush=True)
    load_end = load_average()
    series = {path: [r for r in rounds if r["path"] == path] for path in PATHS}
    pip_env, uv_env = ([r["env_seconds"] for r in series[p]] for p in PATHS)
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "settings": {"repeats": repeats, "book": book, "commits": commits, "pip_config": pip_config,
                     "pip_pins": pins(git("show", f"{commits['pip']}:{OLD_LOCK}"))},
        "rounds": rounds,
        "env_seconds": {p: summary([r["env_seconds"] for r in series[p]]) for p in PATHS},
        "env_speedup": paired_ratio(pip_env, uv_env),
        "target_env_speedup": TARGET_ENV_SPEEDUP,
    }
    if book:
        totals = {p: [r["env_seconds"] + r["book_seconds"] for r in series[p]] for p in PATHS}
        result["book_seconds"] = {p: summary([r["book_seconds"] for r in series[p]]) for p in PATHS}
        result["total_seconds"] = {p: summary(totals[p]) for p in PATHS}
        result["total_speedup"] = paired_ratio(totals["pip"], totals["uv"])
    result["met"] = result["env_speedup"]["median"] >= TARGET_ENV_SPEEDUP
    if load_start is not None and load_end is not None:
        result["load_average"] = {"start": load_start, "end": load_end}
    return result


def pip_config_note(python: Path) -> str:
    """Return the settings of pip's configuration here that point it at local package copies (``""``: none)."""
    out = subprocess.run([str(python), "-m", "pip", "config", "list"], capture_output=True, text=True)
    keys = [line.split("=", 1)[0] for line in out.stdout.splitlines() if "=" in line]
    return ", ".join(sorted(k for k in keys if k.endswith(("find-links", "extra-index-url", "constraint"))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.setup_time", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="rounds of (pip, uv); default 2")
    parser.add_argument("--no-book", action="store_true", help="time `make env` only, not `make book`")
    parser.add_argument("--results", default=str(RESULTS_PATH), help="results JSON to update (its other figures are kept)")
    parser.add_argument("--page", default=str(PAGE_PATH), help="page to rewrite (default: book/performance.md)")
    args = parser.parse_args(argv)
    from . import page

    results = read_results(args.results)
    results[KEY] = run(args.repeats, book=not args.no_book)
    write_results(results, args.results)
    page.write_page(results, args.page)
    print(f"[setup_time] wrote {args.results} ({KEY!r} only) and {args.page}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
