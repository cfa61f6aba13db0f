"""The course's benchmarks: each figure is a ratio of two timings measured side by side in one run.

One module per figure, each with a ``run(...)`` returning a JSON-ready dict (sizes are arguments,
so the tests can run them tiny):

* :mod:`benchmarks.masked_training` — masked vs dense training, and vs ``torch.nn.utils.prune``;
* :mod:`benchmarks.imp_cost` — wall time of IMP rounds vs the dense trainings they contain;
* :mod:`benchmarks.train_many` — N networks trained one after another vs together (``train_many``);
* :mod:`benchmarks.structured_latency` — channel-pruned CNN latency vs its FLOP ratio;
* :mod:`benchmarks.sparse_linear` — a large linear layer, dense vs CSR, over sparsity;
* :mod:`benchmarks.notebook_runtime` — seconds to execute each chapter notebook;
* :mod:`benchmarks.setup_time` — creating ``.venv`` on a fresh clone, pip vs uv (slow: run on its own,
  ``python -m benchmarks.setup_time``; ``make bench`` keeps its last figures);
* :mod:`benchmarks.page` — renders ``book/performance.md`` from the results JSON.

``python -m benchmarks`` (``make bench``) runs them all and writes ``benchmarks/results.json`` and
``book/performance.md``. Helpers shared by the modules live here: robust statistics (medians,
quartiles, medians of *paired* ratios from interleaved repeats) and step counts long enough to
time; the interleaving runner, the machine description and the thread pinning are
:mod:`lecturelib.latency`'s and :mod:`lecturelib.machine`'s.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lecturelib import atomic
from lecturelib._checks import check_positive_int
from lecturelib.latency import interleaved_runs, quartiles   # noqa: F401 (the modules' shared helpers)
from lecturelib.machine import description as machine_info, torch_threads   # noqa: F401

REPO = Path(__file__).resolve().parents[1]
RESULTS_PATH = REPO / "benchmarks" / "results.json"
PAGE_PATH = REPO / "book" / "performance.md"
SCHEMA_VERSION = 1


def summary(values: Sequence[float]) -> dict[str, float]:
    """Return ``{"median", "q1", "q3", "iqr", "n"}`` of ``values`` (:func:`lecturelib.latency.quartiles`)."""
    q1, median, q3 = quartiles(values)
    return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1, "n": len(values)}


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, float]:
    """Return the ratio ``numerator / denominator`` of two timing series measured in interleaved rounds.

    Round ``i`` of both series ran back to back, so ``numerator[i] / denominator[i]`` cancels slow
    drift of the machine's speed; the reported ``"median"`` is the median of these per-round ratios,
    with their quartiles, and ``"ratio_of_medians"`` is ``median(numerator) / median(denominator)``
    for comparison.

    Raises:
        ValueError: the series are empty, of different lengths, or hold a non-positive denominator.
    """
    if len(numerator) != len(denominator):
        raise ValueError(f"paired series must have equal lengths, got {len(numerator)} and {len(denominator)}")
    if not numerator:
        raise ValueError("paired_ratio needs at least one round, got empty series")
    if min(denominator) <= 0:
        raise ValueError(f"denominator times must be > 0, got {min(denominator)!r}")
    ratios = [a / b for a, b in zip(numerator, denominator)]
    out = summary(ratios)
    out["ratio_of_medians"] = statistics.median(numerator) / statistics.median(denominator)
    return out


def calibrated_count(timed: Callable[[int], float], min_seconds: float, *, start: int = 1, tries: int = 3) -> int:
    """Return a count (of steps, epochs…) at which ``timed(count)`` — a run that measures itself — takes at least ``min_seconds``.

    Grows ``count`` from ``start`` by the measured shortfall (with 20 % to spare), so a timed unit is
    long enough that timer resolution and short hiccups of a shared machine do not decide a ratio.
    Each count is timed ``tries`` times and the fastest run counts: a busy moment of a shared machine
    would otherwise stop the growth early and leave the units short once the machine is quiet.

    Examples:
        >>> calibrated_count(lambda n: 0.01 * n, 0.2, start=4)
        24
    """
    check_positive_int("start", start)
    check_positive_int("tries", tries)
    if not min_seconds > 0:
        raise ValueError(f"min_seconds must be > 0, got {min_seconds!r}")
    count = start
    while (seconds := min(float(timed(count)) for _ in range(tries))) < min_seconds:
        count = max(count + 1, math.ceil(count * 1.2 * min_seconds / max(seconds, 1e-9)))
    return count


def in_fresh_processes(module: str, processes: int, **kwargs) -> list[dict]:
    """Return ``benchmarks.<module>.run(**kwargs)`` computed in ``processes`` fresh Python processes, one after another.

    Some timings depend on the process more than on the round. On the course's 2-core VM the Conv-4
    network's channel-pruning efficiency came out 0.72–0.74 in four processes and 0.92 in a fifth,
    while the interleaved rounds inside each process agreed to a few per cent: where the memory and
    the kernels of a process land decides it. A verdict read from the median process repeats from
    one ``make bench`` to the next; one process's does not. ``kwargs`` must be JSON-ready.
    """
    check_positive_int("processes", processes)
    code = (f"import json, sys, warnings; warnings.simplefilter('ignore'); from benchmarks import {module} as m; "
            "json.dump(m.run(**json.loads(sys.argv[1])), sys.stdout)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return [json.loads(subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True,
                                      check=True, cwd=REPO, env=env).stdout) for _ in range(processes)]


def load_average() -> float | None:
    """Return the 1-minute load average (``None`` where the OS does not report one)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


class Timer:
    """Context manager measuring wall-clock seconds with :func:`time.perf_counter` (``.seconds`` after the block)."""

    def __enter__(self) -> "Timer":
        self.seconds = 0.0
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start


def read_results(path: str | os.PathLike = RESULTS_PATH) -> dict:
    """Return the results JSON at ``path`` as a dict."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_results(results: Mapping, path: str | os.PathLike = RESULTS_PATH) -> Path:
    """Write ``results`` as indented JSON (keys in insertion order) to ``path`` and return the path."""
    path = Path(path)
    atomic.write_json(path, results, indent=1)
    return path
