"""Figure 3: does removing channels buy the speed its FLOPs promise? CPU inference latency of
channel-pruned CNNs (:func:`lecturelib.structured.prune_channels`) against the dense one.

For each network and each fraction of channels removed from every convolution (lowest-L1 filters,
:func:`lecturelib.structured.channel_mask`), the smaller network is built for real, checked to
compute what the masked network computes, and timed with the dense one and the other fractions
in interleaved rounds (:func:`lecturelib.latency.compare_latency`). ``speedup`` is dense latency
÷ pruned latency, ``flop_reduction`` dense MACs ÷ pruned MACs (:func:`lecturelib.models.count_flops`),
and ``efficiency = speedup / flop_reduction`` (1 = all the FLOP saving turns into speed).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from lecturelib import latency, models, pruning, structured

from . import in_fresh_processes, paired_ratio, summary

TARGET_EFFICIENCY = 0.8  # speed-up >= 0.8 x FLOP reduction at batch 256
DEFAULT_NETWORKS = (
    {"name": "digits CNN", "input_shape": (1, 8, 8), "channels": (16, 32), "hidden": 64},
    {"name": "MNIST-size Conv-4", "input_shape": (1, 28, 28), "channels": (16, 16, 32, 32), "hidden": 64},
)


def run(
    networks: Sequence[dict] = DEFAULT_NETWORKS,
    *,
    sparsities: Sequence[float] = (0.25, 0.5, 0.75),
    batch: int = 256,
    warmup: int = 5,
    repeats: int = 40,
    threads: int | None = 1,
    processes: int = 1,
) -> dict:
    """Time each network dense and channel-pruned at each sparsity, interleaved; return latencies and ratios.

    Args:
        networks: dicts with ``name``, ``input_shape`` (C, H, W), ``channels`` and ``hidden`` of :func:`lecturelib.models.cnn`.
        sparsities: shares of every convolution's output channels removed.
        batch: images per forward pass (random inputs: latency does not depend on the values).
        warmup / repeats: untimed and timed interleaved rounds.
        threads: PyTorch threads while timing (``None``: unchanged); 1, as chapter 7 times, keeps
            thread synchronisation of these small kernels out of the comparison.
        processes: measure in this many fresh processes (:func:`benchmarks.in_fresh_processes`) and
            keep, per row, the process with the median efficiency (``make bench``: 5).

    Returns:
        A JSON-ready dict; per network the dense latency, and per sparsity the latency, the
        latency ratio (median of paired per-round ratios), speed-up, MAC ratio, efficiency and
        whether the target is met.
    """
    if processes > 1:
        runs = in_fresh_processes("structured_latency", processes, networks=[dict(spec) for spec in networks], sparsities=list(sparsities),
                                  batch=batch, warmup=warmup, repeats=repeats, threads=threads)
        return median_process(runs)
    out = {"settings": {"batch": batch, "warmup": warmup, "repeats": repeats, "torch_threads": threads or torch.get_num_threads(),
                        "scores": "L1 norm of each filter, same fraction in every convolution", "weights": "random init (seed 0)"},
           "target_efficiency": TARGET_EFFICIENCY, "networks": []}
    for spec in networks:
        shape = tuple(spec["input_shape"])
        dense = models.cnn(shape, 10, spec["channels"], spec["hidden"], seed=0).eval()
        x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
        fns = {"dense": (lambda m: lambda: m(x))(dense)}
        flops = {"dense": models.count_flops(dense, shape)}
        widths, max_error = {}, {}
        for sparsity in sparsities:
            mask = structured.channel_mask(dense, sparsity)
            small = structured.prune_channels(dense, mask).eval()
            with torch.no_grad():
                masked = pruning.apply_mask(copy.deepcopy(dense), mask)
                max_error[sparsity] = float((masked(x[:8]) - small(x[:8])).abs().max())
            key = f"{sparsity:g}"
            fns[key] = (lambda m: lambda: m(x))(small)
            flops[key] = models.count_flops(small, shape)
            widths[key] = list(structured.conv_widths(small))
        stats = latency.compare_latency(fns, warmup=warmup, repeats=repeats, threads=threads)
        rows = []
        for sparsity in sparsities:
            key = f"{sparsity:g}"
            ratio = paired_ratio(stats[key].times, stats["dense"].times)
            speedup = 1.0 / ratio["median"]
            flop_reduction = flops["dense"] / flops[key]
            rows.append({
                "fraction_removed": sparsity, "conv_widths": widths[key], "macs_per_image": flops[key],
                "mac_ratio": flops[key] / flops["dense"], "latency_seconds": summary(stats[key].times),
                "latency_ratio": ratio, "speedup": speedup, "flop_reduction": flop_reduction,
                "efficiency": speedup / flop_reduction, "met": speedup >= TARGET_EFFICIENCY * flop_reduction,
                "max_abs_output_difference": max_error[sparsity],
            })
        out["networks"].append({
            "name": spec["name"], "input_shape": list(shape), "channels": list(spec["channels"]), "hidden": spec["hidden"],
            "macs_per_image": flops["dense"], "dense_latency_seconds": summary(stats["dense"].times), "pruned": rows,
        })
    return out


def median_process(runs: Sequence[dict]) -> dict:
    """Combine the records of several processes: per network the process with the median dense latency, and per
    row the process with the median efficiency, with every process's efficiency (sorted) in ``efficiency_by_process``."""
    out = copy.deepcopy(dict(runs[0]))
    middle = len(runs) // 2
    out["settings"]["processes"] = len(runs)
    for i, net in enumerate(out["networks"]):
        net["dense_latency_seconds"] = sorted((run["networks"][i]["dense_latency_seconds"] for run in runs), key=lambda s: s["median"])[middle]
        for j in range(len(net["pruned"])):
            rows = sorted((run["networks"][i]["pruned"][j] for run in runs), key=lambda row: row["efficiency"])
            net["pruned"][j] = {**rows[middle], "efficiency_by_process": [row["efficiency"] for row in rows]}
    return out
