"""Measuring inference latency honestly (Chapter 2, notebooks/02_gains_and_costs.ipynb): warm-up, repeated
runs, medians, and the layers being timed (a dense weight, the same weight with zeros from
:func:`lecturelib.pruning.prune_weights`, a sparse CSR copy, a weight with whole rows removed, and
stacks of layers with units or whole layers removed).

Timings are wall-clock seconds of ``time.perf_counter``. They vary from run to run and from machine
to machine, so the course reports **medians** of many runs after a **warm-up** (the first calls pay
for memory allocation and caches), together with the interquartile range, and states the machine
class (:func:`machine_class`). :func:`compare_latency` interleaves the candidates round by round, so
a burst of background load slows all of them alike and their *ratios* stay meaningful.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ._checks import check_fraction, check_functions, check_positive_int
from .machine import machine_class, torch_threads   # machine_class: the label chapters 2 and 7 print beside a timing
from .pruning import keep_largest, kept_count, row_norms


@dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated timings of one function, in seconds.

    ``times`` are the individual measured runs (warm-up runs excluded); ``median`` is their
    median and ``q1`` / ``q3`` their lower and upper quartiles, so ``iqr = q3 - q1`` says how
    much the runs spread.
    """

    median: float
    q1: float
    q3: float
    times: tuple[float, ...]

    @property
    def iqr(self) -> float:
        """Interquartile range ``q3 - q1`` in seconds."""
        return self.q3 - self.q1

    @property
    def repeats(self) -> int:
        """Number of measured runs."""
        return len(self.times)

    def __str__(self) -> str:
        return f"median {self.median * 1e3:.3f} ms (IQR {self.iqr * 1e3:.3f} ms, {self.repeats} runs)"


def latency_stats(times: Sequence[float]) -> LatencyStats:
    """Return the :class:`LatencyStats` (median and quartiles) of measured ``times`` in seconds.

    Raises:
        ValueError: ``times`` is empty or holds a negative value.
    """
    times = tuple(float(t) for t in times)
    if times and min(times) < 0:
        raise ValueError(f"times must be >= 0 seconds, got {min(times)!r}")
    q1, median, q3 = quartiles(times)
    return LatencyStats(median, q1, q3, times)


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """Return ``(q1, median, q3)`` of ``values`` (quartiles by the inclusive method; a single value is all three).

    Raises:
        ValueError: ``values`` is empty.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("need at least one value (measurement), got an empty sequence")
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return q1, statistics.median(values), q3


def measure_latency(
    fn: Callable[[], object], *, warmup: int = 3, repeats: int = 20, threads: int | None = None
) -> LatencyStats:
    """Call ``fn()`` (of no arguments, e.g. ``lambda: layer(x)``) ``warmup`` times untimed, then ``repeats`` times timed;
    return its :class:`LatencyStats` in seconds: :func:`compare_latency` of one function (same arguments, same errors)."""
    return compare_latency({"fn": fn}, warmup=warmup, repeats=repeats, threads=threads)["fn"]


def compare_latency(
    fns: Mapping[str, Callable[[], object]], *, warmup: int = 3, repeats: int = 20, threads: int | None = None
) -> dict[str, LatencyStats]:
    """Time several functions **interleaved**: each round calls every function once (in order, then
    in reverse order in the next round, so no function is always first).

    Background load then hits every candidate in the same rounds, which keeps latency *ratios*
    stable even when absolute times drift.

    Args:
        fns: ``{label: function of no arguments}``.
        warmup: untimed rounds first.
        repeats: timed rounds.
        threads: PyTorch intra-op threads during the measurement (restored afterwards); ``None``
            keeps the current setting. With several threads, a kernel waits for its slowest
            thread, so a busy core can make one run many times slower than the next; one thread
            avoids that.

    Returns:
        ``{label: LatencyStats}`` in seconds, in the order of ``fns``.

    Raises:
        TypeError: a value of ``fns`` is not callable, or the counts are not ints.
        ValueError: ``fns`` is empty, ``warmup < 0`` or ``repeats < 1``.
    """
    check_functions("fns", fns)

    def timed(fn: Callable[[], object]) -> Callable[[], float]:
        def seconds() -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start
        return seconds

    with torch_threads(threads), torch.inference_mode():
        times = interleaved_runs({label: timed(fn) for label, fn in fns.items()}, warmup=warmup, repeats=repeats)
    return {label: latency_stats(values) for label, values in times.items()}


def interleaved_runs(fns: Mapping[str, Callable[[], float]], *, warmup: int = 1, repeats: int = 5) -> dict[str, list[float]]:
    """Call every function once per round, in order and then in reverse order the next round (A B, B A, …); return each one's times.

    Each function *measures itself* and returns its elapsed seconds, so that setup (copying a model,
    attaching masks) can stay outside the timed region; :func:`compare_latency` times plain calls
    with it. ``torch.utils.benchmark`` times one statement at a time; interleaving is what keeps
    the *ratios* of candidates steady on a machine whose speed drifts.

    Returns:
        ``{label: [seconds of round 1, …]}``, in the order of ``fns``; ``warmup`` untimed rounds come first.

    Raises:
        TypeError / ValueError: non-callable entries, an empty mapping, bad counts, or a negative time.
    """
    warmup = check_positive_int("warmup", warmup, allow_zero=True)
    repeats = check_positive_int("repeats", repeats)
    check_functions("fns", fns)
    items = list(fns.items())
    for _ in range(warmup):
        for _, fn in items:
            fn()
    times: dict[str, list[float]] = {label: [] for label in fns}
    for round_ in range(repeats):
        for label, fn in items if round_ % 2 == 0 else items[::-1]:
            elapsed = float(fn())
            if elapsed < 0:
                raise ValueError(f"fns[{label!r}] returned a negative time {elapsed!r}")
            times[label].append(elapsed)
    return times


def speedups(stats: Mapping[str, LatencyStats], baseline: str) -> dict[str, float]:
    """Return ``{label: median(baseline) / median(label)}``: above 1 means faster than the baseline.

    Raises:
        KeyError: ``baseline`` is not a label of ``stats``.
    """
    if baseline not in stats:
        raise KeyError(f"baseline {baseline!r} is not one of the measured labels: {', '.join(stats)}")
    base = stats[baseline].median
    return {label: base / s.median for label, s in stats.items()}


def break_even_sparsity(sparsities: Sequence[float], ratios: Sequence[float]) -> float | None:
    """Return the lowest sparsity at which ``ratios`` (sparse / dense latency) falls to 1, or ``None``.

    Between two measured sparsities the crossing is interpolated linearly in ``log(ratio)``; if the
    first measured ratio is already ≤ 1 that sparsity is returned (the true break-even is at or
    below it); if no ratio reaches 1, ``None`` (sparse never pays in the measured range).

    Raises:
        ValueError: the sequences differ in length, are empty, sparsities are not increasing, or a ratio is ≤ 0.

    Examples:
        >>> round(break_even_sparsity([0.5, 0.9], [2.0, 0.5]), 3)
        0.7
    """
    if len(sparsities) != len(ratios) or not sparsities:
        raise ValueError(f"need equal, non-empty sequences, got {len(sparsities)} sparsities and {len(ratios)} ratios")
    if any(b <= a for a, b in zip(sparsities, sparsities[1:])):
        raise ValueError(f"sparsities must increase, got {list(sparsities)}")
    if min(ratios) <= 0:
        raise ValueError(f"ratios must be > 0, got {min(ratios)!r}")
    if ratios[0] <= 1:
        return float(sparsities[0])
    for (s0, r0), (s1, r1) in zip(zip(sparsities, ratios), zip(sparsities[1:], ratios[1:])):
        if r1 <= 1 < r0:
            l0, l1 = math.log(r0), math.log(r1)
            return float(s0 + (s1 - s0) * l0 / (l0 - l1))
    return None


# --- the layers being timed --------------------------------------------------------------------

def random_weight(n_out: int, n_in: int, *, seed: int = 0) -> torch.Tensor:
    """Return a ``(n_out, n_in)`` float32 weight with ``nn.Linear``'s default init scale, drawn from ``seed``."""
    n_out = check_positive_int("n_out", n_out)
    n_in = check_positive_int("n_in", n_in)
    generator = torch.Generator().manual_seed(seed)
    bound = 1.0 / n_in**0.5
    return (torch.rand(n_out, n_in, generator=generator) * 2 - 1) * bound


def remove_rows(weight: torch.Tensor, sparsity: float, bias: torch.Tensor | None = None):
    """Remove the ``round(sparsity * n_out)`` rows (output units) of ``weight`` with the smallest L2 norm.

    Returns a **smaller dense** matrix: this is structured (row / channel) pruning, and the work
    of a dense kernel shrinks with it. The rows are chosen by :func:`lecturelib.pruning.keep_largest`
    on :func:`lecturelib.pruning.row_norms` (ties stable, at least one row survives).

    Args:
        weight: ``(n_out, n_in)``.
        sparsity: share of rows removed, in [0, 1).
        bias: optional ``(n_out,)`` bias, sliced the same way.

    Returns:
        ``(kept_weight, kept_bias, kept_rows)``: shapes ``(k, n_in)``, ``(k,)`` or ``None``, and the
        kept row indices ``(k,)`` in increasing order.

    Raises:
        ValueError: ``weight`` is not 2-D, ``bias`` does not match, or ``sparsity`` is outside [0, 1).
    """
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D (n_out, n_in), got shape {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    sparsity = check_fraction("sparsity", sparsity)
    kept = keep_largest(row_norms(weight, 2), kept_count(sparsity, weight.shape[0])).nonzero().flatten().to(weight.device)
    kept_bias = bias.detach()[kept].clone() if bias is not None else None
    return weight.detach()[kept].contiguous(), kept_bias, kept


def dense_linear(weight: torch.Tensor, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Return ``fn()`` computing ``x @ weight.T`` with a dense kernel (``x``: ``(batch, n_in)``)."""
    return lambda: torch.nn.functional.linear(x, weight)


def csr_linear(weight: torch.Tensor, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Return ``fn()`` computing ``x @ weight.T`` from a CSR copy of ``weight`` (a sparse-dense product).

    The CSR format stores only the non-zeros with their column indices and row offsets, so its
    work grows with the number of non-zeros, not with the full shape — but each non-zero costs
    more than in a dense kernel (index look-ups, irregular memory access).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta" from PyTorch
        csr = weight.detach().to_sparse_csr()
    xt = x.T.contiguous()
    return lambda: (csr @ xt).T


def linear_stack(width: int, depth: int, *, seed: int = 0) -> list[torch.Tensor]:
    """Return ``depth`` square ``(width, width)`` weights: a deep MLP block whose latency we time."""
    depth = check_positive_int("depth", depth)
    return [random_weight(width, width, seed=seed + i) for i in range(depth)]


def stack_forward(weights: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply ``x ← relu(x @ W.T)`` for each weight in turn (no ReLU after the last); dense or CSR weights."""
    for i, weight in enumerate(weights):
        x = (weight @ x.T).T if weight.layout == torch.sparse_csr else torch.nn.functional.linear(x, weight)
        if i < len(weights) - 1:
            x = torch.relu(x)
    return x


def remove_hidden_units(weights: Sequence[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Remove ``sparsity`` (a fraction) of the units of every hidden layer of a stack (the smallest-norm rows of
    layer ``i`` and the matching columns of layer ``i + 1``); input and output widths stay.

    Returns the new, smaller dense weights (channel pruning of a linear stack).
    """
    sparsity = check_fraction("sparsity", sparsity)
    weights = [w.detach() for w in weights]
    for i in range(len(weights) - 1):
        kept_w, _, kept = remove_rows(weights[i], sparsity)
        weights[i] = kept_w
        weights[i + 1] = weights[i + 1][:, kept].contiguous()
    return weights


def weight_count(weights: Sequence[torch.Tensor]) -> int:
    """Return the number of stored non-zero weights of a stack (dense zeros are not counted)."""
    return sum(int(w._nnz()) if w.layout == torch.sparse_csr else int((w != 0).sum()) for w in weights)
