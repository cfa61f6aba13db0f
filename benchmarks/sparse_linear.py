"""Figure 4: when does unstructured sparsity pay on a CPU? A large linear layer, dense vs a CSR copy.

The dense layer does the same work at any sparsity (zeros are multiplied too); the CSR product
(:func:`lecturelib.latency.csr_linear`) works on the non-zeros only but pays for index look-ups
and irregular memory access. At each sparsity (smallest-|w| weights zeroed,
:func:`lecturelib.pruning.prune_weights`) the CSR layer is timed against the dense one in
interleaved rounds; the *break-even sparsity* is where the CSR / dense latency ratio crosses 1,
interpolated linearly in ``log(ratio)`` between measured sparsities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lecturelib import latency, pruning
from lecturelib.latency import break_even_sparsity as break_even   # where the CSR / dense ratio crosses 1

from . import paired_ratio, summary


def run(
    *,
    size: int = 4096,
    sparsities: Sequence[float] = (0.5, 0.8, 0.9, 0.95, 0.99),
    batches: Sequence[int] = (1, 16, 64),
    warmup: int = 3,
    repeats: int = 15,
    threads: int | None = 1,
) -> dict:
    """Time a ``size x size`` linear layer dense and as CSR at each sparsity, for each batch size.

    Args:
        size: input and output width of the layer.
        sparsities: fractions of zero weights (increasing).
        batches: input rows per call (1: one request at a time; 16 and 64: batches), as chapter 2 times.
        warmup / repeats: untimed and timed interleaved rounds.
        threads: PyTorch threads while timing (``None``: unchanged); 1 as in chapter 2.

    Returns:
        A JSON-ready dict; per batch the dense latency, per sparsity the CSR latency and the
        CSR / dense ratio (median of paired per-round ratios) and speed-up, the break-even sparsity
        and the speed-up at the highest sparsity.
    """
    weight = latency.random_weight(size, size, seed=0)
    pruned = {s: pruning.prune_weights(weight, s) for s in sparsities}
    out = {"settings": {"shape": [size, size], "dtype": "float32", "warmup": warmup, "repeats": repeats,
                        "torch_threads": threads or torch.get_num_threads(), "sparse_format": "torch.sparse_csr (CSR @ dense)"},
           "batches": []}
    for batch in batches:
        x = torch.randn(batch, size, generator=torch.Generator().manual_seed(1))
        fns = {"dense": latency.dense_linear(weight, x)}
        for s, w in pruned.items():
            fns[f"{s:g}"] = latency.csr_linear(w, x)
        stats = latency.compare_latency(fns, warmup=warmup, repeats=repeats, threads=threads)
        rows = []
        for s in sparsities:
            ratio = paired_ratio(stats[f"{s:g}"].times, stats["dense"].times)
            rows.append({"sparsity": s, "csr_latency_seconds": summary(stats[f"{s:g}"].times),
                         "csr_vs_dense": ratio, "speedup": 1.0 / ratio["median"]})
        out["batches"].append({
            "batch": batch, "dense_latency_seconds": summary(stats["dense"].times), "csr": rows,
            "break_even_sparsity": break_even([r["sparsity"] for r in rows], [r["csr_vs_dense"]["median"] for r in rows]),
            "speedup_at_max_sparsity": rows[-1]["speedup"], "max_sparsity": rows[-1]["sparsity"],
        })
    return out
