"""Figure 2: the cost of iterative magnitude pruning beyond its trainings.

``R`` rounds of :func:`lecturelib.lottery.iterative_magnitude_pruning` train ``R + 1`` networks
(level 0 is the dense one). Its wall time is divided by the time of ``R + 1`` plain dense
trainings of the same length with the same settings, timed in the same rounds; a ratio near 1
means pruning, rewinding, masked steps and bookkeeping (snapshots, per-level results) are nearly free.
The settings are the chapters' default (``ci``) lottery experiment: LeNet-300-100 on digits,
Adam 1.2e-3, batch 60, on :data:`lecturelib.experiments.CPU_THREADS` (as :func:`lecturelib.experiments.run` trains on a CPU).
"""

from __future__ import annotations

import torch

from lecturelib import data as data_module
from lecturelib import experiments, lottery, models, training

from . import Timer, paired_ratio, summary, torch_threads

TARGET = 1.15  # IMP time / ((R + 1) x one dense training), at most


def run(
    *,
    rounds: int = 5,
    iterations: int = 300,
    eval_every: int = 20,
    hidden: tuple[int, ...] = (300, 100),
    rate: float = 0.35,
    output_rate: float = 0.175,
    warmup: int = 1,
    repeats: int = 6,
    threads: int | None = experiments.CPU_THREADS,
    data: data_module.Dataset | None = None,
) -> dict:
    """Time IMP with ``rounds`` rounds against ``rounds + 1`` dense trainings, alternating, ``repeats`` times.

    Args:
        rounds: IMP rounds ``R``; ``R + 1`` networks are trained.
        iterations, eval_every, hidden, rate, output_rate: the experiment (defaults: the ``ci`` lottery profile).
        warmup / repeats: untimed and timed rounds (each round: one IMP run and ``R + 1`` dense trainings,
            in alternating order — IMP first, then dense first — so a steady drift cancels).
        threads: torch threads during the benchmark (``None``: unchanged).
        data: the dataset (default: digits with a 15 % validation split, as the lottery experiment).

    Returns:
        A JSON-ready dict: settings, the IMP and dense-trainings seconds, the ratio (median of
        per-round ratios), the extra seconds per round, the target and whether it is met.
    """
    data = data_module.load_dataset("digits", seed=0, val_fraction=0.15) if data is None else data
    kwargs = {"iterations": iterations, "eval_every": eval_every, "batch_size": 60, "optimizer": "adam",
              "lr": 1.2e-3, "device": "cpu"}

    def make():
        return models.mlp(data.input_shape, data.num_classes, hidden, seed=0)

    def imp() -> float:
        model = make()
        with Timer() as t:
            lottery.iterative_magnitude_pruning([model], data, rounds=rounds, rate=rate, output_rate=output_rate,
                                                train_kwargs=kwargs)
        return t.seconds

    def dense_trainings() -> list[float]:
        times = []
        for _ in range(rounds + 1):
            model = make()
            with Timer() as t:
                training.train(model, data, **kwargs)
            times.append(t.seconds)
        return times

    imp_times, dense_totals, dense_each = [], [], []
    with torch_threads(threads):
        for repeat in range(warmup + repeats):
            if repeat % 2 == 0:  # ABBA order: a drift of the machine's speed hits both sides alike
                imp_time, dense = imp(), dense_trainings()
            else:
                dense = dense_trainings()
                imp_time = imp()
            if repeat >= warmup:
                imp_times.append(imp_time)
                dense_totals.append(sum(dense))
                dense_each.extend(dense)
        used_threads = torch.get_num_threads()
    ratio = paired_ratio(imp_times, dense_totals)
    extra = [(a - b) / rounds for a, b in zip(imp_times, dense_totals)]
    return {
        "settings": {"dataset": data.name, "model": f"mlp {hidden}", "rounds": rounds, "trainings": rounds + 1,
                     "iterations": iterations, "eval_every": eval_every, "rate": rate, "output_rate": output_rate,
                     "warmup": warmup, "repeats": repeats, "order": "IMP/dense alternating (ABBA)", "torch_threads": used_threads},
        "imp_seconds": summary(imp_times),
        "dense_trainings_seconds": summary(dense_totals),
        "one_dense_training_seconds": summary(dense_each),
        "extra_seconds_per_round": summary(extra),
        "ratio": ratio,
        "target": TARGET,
        "met": ratio["median"] <= TARGET,
    }
