"""The experiment runner of the lottery-ticket chapters: named experiments, profiles and an on-disk cache.

An experiment is a pure function of a config dataclass. :func:`run` builds the config from a
*profile* (a dict of overrides) plus your own overrides — every setting is checked before anything
is trained (:func:`lecturelib.configs.check_config`) — names it by :func:`lecturelib.cache.config_hash`
and by the code that computes it (:func:`lecturelib.cache.code_fingerprint`: lecturelib's version, a
hash of its source, torch's version), and
returns the JSON result stored under those names if there is one and it validates — otherwise it
computes it (with a progress bar on a terminal) and writes it atomically. Changing any setting, or
any module that computes results, recomputes; a cache file that does not validate is recomputed
with a warning.

=========== ================================================================= ==========================
profile     what it reproduces                                                expected runtime
=========== ================================================================= ==========================
``ci``      the chapters' defaults on offline data: LeNet-300-100 on         ≈ 30–60 s per notebook on
            MNIST-1D (``lottery``), the 1-D CNN on MNIST-1D with shortened    2 CPU cores (measured times:
            training (``rewinding``, ``stability``), digits for the rest;    the book's performance page)
            3 seeds; the phenomena at small scale
``lecture`` the same questions with more rounds (``lottery``: Frankle &       a few minutes on a CPU or
            Carbin's 20 % per round) and 5 seeds, on the same data            a Colab session
``paper``   Frankle & Carbin 2019's LeNet-300-100 on MNIST: Adam 1.2e-3,      hours on a CPU; ≈ 1 h per
            batch 60, 50,000 iterations, 20 % per round of the hidden layers  experiment on a GPU
            and 10 % of the output layer, 20 rounds (≈ 1.5 % weights), a      (recommended)
            5,000-image validation split. Needs the MNIST files (downloaded
            by torchvision, or in ``$LECTURELIB_DATA``)
=========== ================================================================= ==========================

Experiments: ``lottery`` (chapter 9: winning tickets vs random re-initialisation on MNIST-1D, with a
convergence control that trains the sparsest tickets and re-inits 4× longer), ``digits_lottery`` (the
same on the easy digits, where the re-inits catch up once trained long enough), ``rewinding``
(chapter 10: IMP with reset to W_0 vs rewinding to W_k, and the instability of the sub-networks it
finds), ``stability`` (chapter 10: the dense network's error barrier as a function of k — both on
MNIST-1D with the MNIST-1D paper's 1-D CNN, SGD with momentum at lr 0.1 and a cosine decay, a setting
that is unstable at initialisation and stable a few epochs in), ``noisy_stability`` (the first
edition's analysis of the course's CNN on digits with 30 % of the training labels wrong and a step
schedule: its loss barrier falls with k, but its error barrier stays below Frankle et al.'s 2 % at
every k, so by their criterion it is stable from W_0) and ``noisy_rewinding`` (IMP with reset vs
rewinding in that setting; a few minutes under ``lecture``).

From the command line: ``python -m lecturelib run lottery --profile lecture``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from . import atomic, cache, iterative, lottery, machine, models, stability, training
from . import data as data_module
from ._checks import check_choice
from .configs import PROFILES, ExperimentConfig, LotteryConfig, RewindingConfig, StabilityConfig


def make_config(experiment: str, profile: str = "ci", **overrides):
    """Return the config of ``experiment`` under ``profile`` with ``overrides`` applied, checked.

    Raises:
        ValueError: unknown experiment or profile, or a setting with a bad value (see :func:`lecturelib.configs.check_config`).
        TypeError: an override names no field of the config, or a setting of the wrong type.
    """
    check_choice("experiment", experiment, EXPERIMENTS)
    check_choice("profile", profile, PROFILES)
    cls = EXPERIMENTS[experiment].config
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"{experiment} has no setting {', '.join(map(repr, unknown))}; its settings are: {', '.join(sorted(names))}")
    return cls(**{**PROFILES[profile][experiment], **overrides})


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_outcome` did: the ``record``, the cache file (``None`` with ``use_cache=False``) and
    whether the record was read from it (``False``: computed now)."""

    record: dict
    path: Path | None
    from_cache: bool


# PyTorch threads of an experiment on a CPU, the same on every machine so that no result depends on
# its core count. One, measured on a 2-core machine: two threads ran the stacked networks of chapter 9's
# lottery experiment faster when the machine was idle (37 → 26 s, bit-identical results), but 2.5× slower
# when two other processes kept it busy (122 s vs 46 s) — the threads wait on each other at every step —
# and the test suite executes every chapter on whatever machine runs it, busy or not. The runners use the
# other cores by training independent groups side by side instead (machine.side_by_side: one thread per
# operation, bit-identical results; measured beside two busy processes: rewinding 24 s vs 31 s one after another).
CPU_THREADS = 1


def run(experiment: str, profile: str = "ci", *, use_cache: bool = True, directory: str | os.PathLike | None = None,
        progress: bool | None = None, **overrides) -> dict:
    """Return the result of ``experiment`` under ``profile`` (plus ``overrides``), from the cache if there.

    Args:
        experiment: one of :data:`EXPERIMENTS` (see the module's docstring).
        profile: ``"ci"``, ``"lecture"`` or ``"paper"`` (see the module's table).
        use_cache: read and write the cache (``False``: always compute, write nothing).
        directory: the cache folder (default :func:`lecturelib.cache.cache_dir`).
        progress: show a ``tqdm`` bar (with an ETA) over the optimiser steps of all the run's
            trainings — every seed, round and rewind point — once the run has taken two seconds.
            ``None`` (the default): only when stderr is a terminal and ``$CI`` is not set, so
            notebooks and CI logs stay free of it.
        **overrides: settings of the experiment's config, e.g. ``seeds=(0,)``.

    Returns:
        ``{"experiment", "config", "config_hash", "code", "results"}``, JSON-ready; the same whether
        it was computed now or read from the cache (:func:`run_outcome` also says which).

    Raises:
        ValueError / TypeError: a bad setting (:func:`lecturelib.configs.check_config`) or a device this machine lacks.
        lecturelib.data.DatasetUnavailableError: the dataset is not on disk and cannot be downloaded.
        FloatingPointError: a training diverged (the loss became NaN or infinite: lower ``lr``).

    Warns:
        RuntimeWarning: a cache file that does not validate (unreadable JSON, another config or
            code, missing or empty results) — it is recomputed and replaced; or ``device="auto"``
            (the paper profile) finding no GPU, with the time it will take on this CPU.
    """
    return run_outcome(experiment, profile, use_cache=use_cache, directory=directory, progress=progress, **overrides).record


def run_outcome(experiment: str, profile: str = "ci", *, use_cache: bool = True, directory: str | os.PathLike | None = None,
                progress: bool | None = None, **overrides) -> RunOutcome:
    """Do what :func:`run` does and return a :class:`RunOutcome`: the record and whether it came from the cache."""
    config = make_config(experiment, profile, **overrides)
    path = cache.result_path(experiment, config, directory)
    if use_cache and path.exists():
        cached = cache.read_cached(path, experiment, config, EXPERIMENTS[experiment].result_keys)
        if cached is not None:
            return RunOutcome(cached, path, True)
    _check_device_here(experiment, config)
    on_cpu = training.resolve_device(config.device).type == "cpu"
    with machine.torch_threads(CPU_THREADS if on_cpu else None), _progress_bar(experiment, config, progress):
        results = EXPERIMENTS[experiment].runner(config)
    record = {"experiment": experiment, "config": asdict(config), "config_hash": cache.config_hash(config),
              "code": cache.code_fingerprint(), "results": results}
    record = json.loads(json.dumps(record))  # exactly what a cache hit returns (tuples → lists)
    if use_cache:
        atomic.write_json(path, record)
    return RunOutcome(record, path if use_cache else None, False)


def _check_device_here(experiment: str, config) -> None:
    """Refuse a device this machine lacks; for ``"auto"`` without a GPU, warn how long the CPU will take."""
    device = config.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} is not available: torch finds no CUDA GPU here; use device='auto' or 'cpu'")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' is not available: this is not a Mac with Apple silicon; use device='auto' or 'cpu'")
    if device == "auto" and training.default_device().type == "cpu":
        steps = planned_steps(experiment, config)
        seconds = steps * _seconds_per_step(config)
        warnings.warn(
            f"no GPU found: {experiment} trains on this CPU, on "
            f"{'one thread' if CPU_THREADS == 1 else f'{CPU_THREADS} threads'} (so results do not depend on the core "
            f"count): {steps:,} optimiser steps at {1000 * seconds / steps:.2g} ms each (measured here just now) ≈ "
            f"{_duration(seconds)} plus evaluations; a GPU needs about an hour", RuntimeWarning, stacklevel=4)


def planned_steps(experiment: str, config) -> int:
    """Return how many optimiser steps ``experiment`` takes under ``config`` (all seeds, rounds and rewind points).

    The total of :func:`run`'s progress bar and of the paper profile's CPU-time estimate.
    """
    seeds, t = len(config.seeds), config.iterations
    if experiment in ("lottery", "digits_lottery"):    # ticket and random re-init, every level; the long control
        return seeds * 2 * ((config.rounds + 1) * t + min(config.long_levels, config.rounds + 1) * config.long_iterations)
    if experiment in ("rewinding", "noisy_rewinding"):  # the dense level; the rewound levels and two copies, from k to T
        return seeds * sum(t + (config.rounds + 2) * (t - k) for k in config.ks)
    return seeds * (max(max(config.ks), 1) + sum(2 * (t - k) for k in config.ks))   # W_k; two copies per k


_INPUT_SHAPES = {"digits": (1, 8, 8), "mnist1d": (1, 40), "mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28),
                 "cifar10": (3, 32, 32)}


def _seconds_per_step(config) -> float:
    """Time optimiser steps of the config's network on random data of its dataset's shape, on one CPU thread."""
    import time

    shape = _INPUT_SHAPES[config.dataset]
    model = _network(config, shape, 10, seed=0)
    opt = training.make_optimizer(model.parameters(), config.optimizer, lr=config.lr)
    x, y = torch.randn(config.batch_size, *shape), torch.randint(0, 10, (config.batch_size,))
    timings = []
    with machine.torch_threads(1):
        for _ in range(25):                            # the first five warm up
            start = time.perf_counter()
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            timings.append(time.perf_counter() - start)
    return float(np.median(timings[5:]))


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


@contextlib.contextmanager
def _progress_bar(experiment: str, config, progress: bool | None) -> Iterator[None]:
    """A ``tqdm.auto`` bar over the run's optimiser steps, fed by :func:`lecturelib.training.listening_to_steps`."""
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("CI")
    if not progress:
        yield
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=planned_steps(experiment, config), desc=f"{experiment}, {len(config.seeds)} seeds", unit="step",
               delay=2.0, file=sys.stderr, dynamic_ncols=True)
    try:
        with training.listening_to_steps(bar.update):
            yield
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# The experiments.
# --------------------------------------------------------------------------------------------

def _start(config: ExperimentConfig) -> tuple[data_module.Dataset, Callable[[int], torch.nn.Module], dict]:
    """Every runner's start: the dataset (with ``config.label_noise``), ``seed -> freshly initialised network`` (the MLP
    of ``config.hidden`` or another of :data:`models.MODELS`) and :func:`_train_kwargs`."""
    data = data_module.load_dataset(config.dataset, seed=0, val_fraction=config.val_fraction, root=config.root,
                                    download=config.download)
    if config.label_noise:
        data = data_module.with_label_noise(data, config.label_noise, seed=0)
    return data, lambda seed: _network(config, data.input_shape, data.num_classes, seed), _train_kwargs(config)


def _network(config: ExperimentConfig, input_shape: tuple[int, ...], num_classes: int, seed: int) -> torch.nn.Module:
    """``config.model`` (the MLP with ``config.hidden``) initialised from ``seed``."""
    return models.build_model(config.model, input_shape, num_classes, seed=seed, **({"hidden": config.hidden} if config.model == "mlp" else {}))


def _train_kwargs(config: ExperimentConfig) -> dict:
    """The training settings ``config`` sets — those that differ from :class:`~lecturelib.training.TrainSettings`'s defaults — as ``train``'s keywords."""
    default = training.TrainSettings()
    return {f.name: getattr(config, f.name) for f in fields(training.TrainSettings) if getattr(config, f.name) != getattr(default, f.name)}


def _run_lottery(config: LotteryConfig) -> dict:
    data, make, kwargs = _start(config)
    imp = lottery.iterative_magnitude_pruning([make(seed) for seed in config.seeds], data, rounds=config.rounds, rate=config.rate,
                                              output_rate=config.output_rate, data_seeds=config.seeds, train_kwargs=kwargs)
    tickets = [run.levels for run in imp]
    reinit = lambda seed: seed + config.reinit_seed_offset  # noqa: E731
    groups = [(tickets, {"random": reinit}, kwargs)]
    if config.long_iterations:   # convergence control: the sparsest tickets (m ⊙ W_0 itself) and re-inits, trained long_iterations
        groups.append(([levels[-config.long_levels:] for levels in tickets], {"ticket": lambda seed: seed, "random": reinit},
                       {**kwargs, "iterations": config.long_iterations}))
    # the re-inits beside the convergence control: two cores, the same numbers
    done = machine.side_by_side(lambda group: _masks_retrained(make, data, config.seeds, *group), groups, device=config.device)
    long = done[1] if config.long_iterations else {"ticket": [], "random": []}
    runs = {"ticket": [[level.to_dict() for level in levels] for levels in tickets], "random": done[0]["random"]}
    return {"weights_left": [level["weights_left"] for level in runs["ticket"][0]], "runs": runs, "long": long,
            "trainings_per_seed": {"ticket": config.rounds + 1, "random": config.rounds + 1}}


def _masks_retrained(make, data, seeds, tickets, inits, train_kwargs) -> dict[str, list[list[dict]]]:
    """Return ``{kind: per seed s, the results of training each mask of tickets[s] from make(inits[kind](s))}``.

    Each trains with the data order of seed ``s``'s IMP, ``s``; every kind's, seed's and level's network
    is trained in one :func:`~lecturelib.lottery.train_random_reinits` call.
    """
    flat = [(kind, seed, level) for kind in inits for seed, levels in zip(seeds, tickets) for level in levels]
    results = iter(lottery.train_random_reinits(
        make, data, [level.mask for _, _, level in flat], seeds=[inits[kind](seed) for kind, seed, _ in flat],
        data_seeds=[seed for _, seed, _ in flat], train_kwargs=train_kwargs, levels=[level.level for *_, level in flat]))
    return {kind: [[next(results).to_dict() for _ in levels] for levels in tickets] for kind in inits}


def _run_rewinding(config: RewindingConfig) -> dict:
    data, make, kwargs = _start(config)
    stability_kwargs = {key: value for key, value in kwargs.items() if key not in ("iterations", "eval_every")}

    def rewound_to(k: int) -> tuple[list, list]:   # IMP rewinding to W_k, and its sparsest sub-networks' instability
        imp = lottery.iterative_magnitude_pruning([make(seed) for seed in config.seeds], data, rounds=config.rounds, rate=config.rate,
                                                  output_rate=config.output_rate, k=k, data_seeds=config.seeds, train_kwargs=kwargs)
        return ([[level.to_dict() for level in run.levels] for run in imp],
                [result.to_dict() for result in stability.instability_analyses(
                    make(config.seeds[0]), data, [run.rewind for run in imp], iterations=config.iterations,
                    masks=[run.levels[-1].mask for run in imp], data_seeds=[(2 * seed + 1, 2 * seed + 2) for seed in config.seeds],
                    alphas=config.alphas, train_kwargs=stability_kwargs)])

    done = machine.side_by_side(rewound_to, config.ks, device=config.device)
    runs = {str(k): levels for k, (levels, _) in zip(config.ks, done)}
    sparse = {str(k): instability for k, (_, instability) in zip(config.ks, done)}
    return {"weights_left": [level["weights_left"] for level in next(iter(runs.values()))[0]], "runs": runs,
            "sparse_instability": sparse, "n_test": len(data.y_test)}


def _run_stability(config: StabilityConfig) -> dict:
    data, make, kwargs = _start(config)
    kwargs = {key: value for key, value in kwargs.items() if key not in ("iterations", "eval_every")}
    first = max(max(config.ks), 1)   # the first steps of a T-step run, on its learning-rate schedule
    histories = iterative.train_together([make(seed) for seed in config.seeds], data, masks=[None] * len(config.seeds),
                                         data_seeds=[0] * len(config.seeds), iterations=first, run_iterations=config.iterations,
                                         snapshot_at=config.ks, eval_every=first, **kwargs)
    model = make(config.seeds[0])
    by_k = machine.side_by_side(lambda k: [result.to_dict() for result in stability.instability_analyses(
        model, data, [iterative.Snapshot(k, history.snapshots[k]) for history in histories],
        iterations=config.iterations, data_seeds=[(2 * seed + 1, 2 * seed + 2) for seed in config.seeds], alphas=config.alphas,
        train_kwargs={**kwargs, "eval_every": config.iterations})], config.ks, device=config.device)   # each k on its own core
    by_k = dict(zip(map(str, config.ks), by_k))
    return {"ks": list(config.ks), "by_k": by_k, "n_train": len(data.y_train), "n_test": len(data.y_test)}


# --------------------------------------------------------------------------------------------
# The table of experiments: each one's config, the runner that computes it, the result keys a cache file must hold.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    """One named experiment: its ``config`` class, the ``runner`` (config → JSON-ready results) and the
    ``result_keys`` that must be non-empty for a cached result to count."""

    config: type
    runner: Callable[[object], dict]
    result_keys: tuple[str, ...]


_IMP, _REWINDING, _STABILITY = ("weights_left", "runs"), ("weights_left", "runs", "sparse_instability"), ("ks", "by_k")
EXPERIMENTS: dict[str, Experiment] = {
    "lottery": Experiment(LotteryConfig, _run_lottery, _IMP),
    "digits_lottery": Experiment(LotteryConfig, _run_lottery, _IMP),
    "rewinding": Experiment(RewindingConfig, _run_rewinding, _REWINDING),
    "stability": Experiment(StabilityConfig, _run_stability, _STABILITY),
    "noisy_stability": Experiment(StabilityConfig, _run_stability, _STABILITY),
    "noisy_rewinding": Experiment(RewindingConfig, _run_rewinding, _REWINDING),
}


# --------------------------------------------------------------------------------------------
# Reading results.
# --------------------------------------------------------------------------------------------

def level_metric(runs: list[list[dict]], key: str) -> np.ndarray:
    """Return ``key`` (e.g. ``"best_test_acc"``) of every level of every seed: an array of shape ``(seeds, levels)``."""
    return np.array([[level[key] for level in levels] for levels in runs], dtype=float)


def history_metric_at(runs: list[list[dict]], key: str, iteration: int) -> np.ndarray:
    """Return the history curve ``key`` (e.g. ``"val_acc"``) at ``iteration`` for every seed and level: shape ``(seeds, levels)``."""
    def at(history: dict) -> float:
        if iteration not in history["iteration"]:
            raise ValueError(f"iteration {iteration} was not evaluated; evaluations at {history['iteration'][:5]}…")
        return history[key][history["iteration"].index(iteration)]

    return np.array([[at(level["history"]) for level in levels] for levels in runs], dtype=float)


def barrier_matrix(by_k: Mapping[str, list[dict]], key: str = "error_barrier") -> tuple[list[int], np.ndarray]:
    """Return ``(ks, values)`` with ``values[s, j]`` the ``key`` of seed ``s`` at ``ks[j]``."""
    ks = sorted(by_k, key=int)
    return [int(k) for k in ks], np.array([[run[key] for run in by_k[k]] for k in ks], dtype=float).T
