"""Figure: N networks of one architecture trained one after another (N calls of
:func:`lecturelib.training.train`) ÷ the same N trained together (one :func:`lecturelib.training.train_many`).

Both sides start from the same initial weights and masks, use the same data seeds and settings
(the lottery runner's: Adam, learning rate 1.2e-3, batch 60, 80 % global magnitude masks, one
evaluation at the end) and end at the same weights to float rounding. The two are timed in
interleaved rounds; each side of a round is one timed unit. The number of steps is calibrated so
that the *faster* unit (``train_many``) takes at least ``min_seconds``, so that a rerun repeats the
verdict on a shared machine.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from lecturelib import data as data_module
from lecturelib import models, pruning, training

from . import Timer, calibrated_count, in_fresh_processes, interleaved_runs, paired_ratio, summary, torch_threads

TARGET = 2.5                       # sequential ÷ together for the target case below, at least
TARGET_CASE = ("mlp", 6, 2)        # (model, N, threads)
SETTINGS = {"batch_size": 60, "optimizer": "adam", "lr": 1.2e-3, "device": "cpu"}
SPARSITY = 0.8


DATASETS = {"mlp": "digits", "cnn": "digits", "cnn1d": "mnist1d"}   # cnn1d reads sequences: chapter 10's MNIST-1D


def networks(model_name: str, data: data_module.Dataset, n: int) -> tuple[list, list]:
    """Return ``n`` course networks ``"mlp"``, ``"cnn"`` or ``"cnn1d"`` (seeds 0 … n-1) and their masks (global magnitude, :data:`SPARSITY`)."""
    nets = [models.build_model(model_name, data.input_shape, data.num_classes, seed=seed) for seed in range(n)]
    return nets, [pruning.global_magnitude_mask(net, SPARSITY) for net in nets]


def variants(nets: list, masks: list, data: data_module.Dataset, iterations: int) -> dict:
    """Return ``{"sequential", "together"}`` functions that copy ``nets``, train them and return the training's seconds."""
    kwargs = {**SETTINGS, "iterations": iterations, "eval_every": iterations}

    def sequential() -> float:
        copies = copy.deepcopy(nets)
        with Timer() as t:
            for seed, (net, mask) in enumerate(zip(copies, masks)):
                training.train(net, data, mask=mask, data_seed=seed, **kwargs)
        return t.seconds

    def together() -> float:
        copies = copy.deepcopy(nets)
        with Timer() as t:
            training.train_many(copies, data, masks=masks, data_seeds=range(len(copies)), **kwargs)
        return t.seconds

    return {"sequential": sequential, "together": together}


def run(
    model_names: Sequence[str] = ("mlp", "cnn", "cnn1d"),
    ns: Sequence[int] = (2, 6, 12),
    threads: Sequence[int] = (1, 2),
    *,
    min_seconds: float = 0.2,
    warmup: int = 1,
    repeats: int = 5,
    data: data_module.Dataset | None = None,
    target_processes: int = 1,
) -> dict:
    """Time N sequential trainings against one ``train_many`` of the same N; return the paired ratios.

    Args:
        model_names: course models (``"mlp"``: LeNet-300-100 and ``"cnn"``: conv 16-32 on digits; ``"cnn1d"``: the
            MNIST-1D paper's 1-D CNN on MNIST-1D, chapter 10's network).
        ns: numbers of networks.
        threads: PyTorch thread counts.
        min_seconds: the shortest timed unit; the step count of each (model, N, threads) is
            calibrated so that ``train_many``, the faster side, takes at least this long.
        warmup / repeats: untimed and timed interleaved rounds (sequential, together, sequential, …).
        data: the dataset of every model (default: :data:`DATASETS`, each model's offline dataset).
        target_processes: also time :data:`TARGET_CASE` in this many fresh processes
            (:func:`benchmarks.in_fresh_processes`) and decide the target on the median process
            (``make bench``: 5): the one-by-one side's 2-thread timing depends on the process. Only with
            the default ``data`` (a fresh process loads its own); otherwise the target is read from this run.

    Returns:
        A JSON-ready dict: the settings and one row per (model, N, threads) with the step count,
        both sides' seconds, ``speedup`` (paired ratio sequential ÷ together: median, quartiles),
        and the target and its verdict for :data:`TARGET_CASE`.
    """
    loaded = {}
    rows = []
    for name in model_names:
        data_of = data if data is not None else loaded.setdefault(DATASETS[name], data_module.load_dataset(DATASETS[name], seed=0))
        for n in ns:
            nets, masks = networks(name, data_of, n)
            for count in threads:
                with torch_threads(count):
                    variants(nets, masks, data_of, 10)["together"]()   # warm up before calibrating
                    iterations = calibrated_count(lambda steps: variants(nets, masks, data_of, steps)["together"](),  # noqa: B023
                                                  min_seconds, start=50)
                    times = interleaved_runs(variants(nets, masks, data_of, iterations), warmup=warmup, repeats=repeats)
                rows.append({"model": name, "dataset": data_of.name, "n": n, "threads": count, "iterations": iterations,
                             "sequential_seconds": summary(times["sequential"]), "together_seconds": summary(times["together"]),
                             "raw_seconds": times, "speedup": paired_ratio(times["sequential"], times["together"])})
    target = next((row for row in rows if (row["model"], row["n"], row["threads"]) == TARGET_CASE), None)
    speedup = None if target is None else target["speedup"]["median"]
    by_process = None
    if target_processes > 1 and data is None:
        runs = in_fresh_processes("train_many", target_processes, model_names=[TARGET_CASE[0]], ns=[TARGET_CASE[1]],
                                  threads=[TARGET_CASE[2]], min_seconds=min_seconds, warmup=warmup, repeats=repeats)
        by_process = sorted(run["rows"][0]["speedup"]["median"] for run in runs)
        speedup = by_process[len(by_process) // 2]
    return {"settings": {"datasets": {name: DATASETS[name] if data is None else data.name for name in model_names},
                         **{k: v for k, v in SETTINGS.items() if k != "device"},
                         "sparsity": SPARSITY, "min_seconds": min_seconds, "warmup": warmup, "repeats": repeats,
                         "order": "sequential, together interleaved"},
            "target": {"model": TARGET_CASE[0], "n": TARGET_CASE[1], "threads": TARGET_CASE[2], "speedup": TARGET},
            "target_speedup": speedup, "target_speedup_by_process": by_process,
            "met": None if speedup is None else speedup >= TARGET,
            "rows": rows}
