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
quartiles, medians of *paired* ratios from interleaved repeats), an interleaving runner for
functions that time themselves, and the machine description.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import torch

from lecturelib._checks import check_functions, check_positive_int
from lecturelib import atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS_PATH = REPO / "benchmarks" / "results.json"
PAGE_PATH = REPO / "book" / "performance.md"
SCHEMA_VERSION = 1


def summary(values: Sequence[float]) -> dict[str, float]:
    """Return ``{"median", "q1", "q3", "iqr", "n"}`` of ``values`` (quartiles by the inclusive method).

    Raises:
        ValueError: ``values`` is empty.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("summary needs at least one value, got an empty sequence")
    if len(values) == 1:
        q1 = q3 = values[0]
    else:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "q1": q1, "q3": q3, "iqr": q3 - q1, "n": len(values)}


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


def interleaved_runs(
    fns: Mapping[str, Callable[[], float]], *, warmup: int = 1, repeats: int = 5
) -> dict[str, list[float]]:
    """Call every function once per round, in order (A, B, C, A, B, C, …); return each one's times.

    Each function *measures itself* and returns its elapsed seconds, so that setup (copying a
    model, attaching masks) stays outside the timed region. Unlike
    :func:`lecturelib.latency.compare_latency` nothing runs under ``torch.inference_mode``, so the
    functions may train.

    Args:
        fns: ``{label: function of no arguments returning seconds}``.
        warmup: untimed rounds first.
        repeats: timed rounds.

    Returns:
        ``{label: [seconds of round 1, …]}``, in the order of ``fns``.

    Raises:
        TypeError / ValueError: non-callable entries, an empty mapping, or bad counts.
    """
    check_positive_int("warmup", warmup, allow_zero=True)
    check_positive_int("repeats", repeats)
    check_functions("fns", fns)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(repeats):
        for label, fn in fns.items():
            elapsed = float(fn())
            if elapsed < 0:
                raise ValueError(f"fns[{label!r}] returned a negative time {elapsed!r}")
            times[label].append(elapsed)
    return times


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


def cpu_model() -> str:
    """Return the CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info() -> dict[str, object]:
    """Return the machine class (no host name): CPU model, usable cores, torch's threads and versions."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        from lecturelib.latency import machine_class

        label = machine_class()
    except ImportError:  # pragma: no cover - lecturelib.latency is part of the course
        label = f"{platform.machine()} CPU, {cores} cores, torch {torch.__version__.split('+')[0]}"
    return {
        "machine_class": label,
        "cpu_model": cpu_model(),
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.machine()}",
    }


def load_average() -> float | None:
    """Return the 1-minute load average (``None`` where the OS does not report one)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None``: leave it), restoring the old count after."""
    before = torch.get_num_threads()
    if n is not None:
        check_positive_int("threads", n)
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
