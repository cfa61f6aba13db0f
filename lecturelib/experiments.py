"""The experiment runner of the lottery-ticket chapters: named experiments, profiles and an on-disk cache.

An experiment is a pure function of a config dataclass. :func:`run` builds the config from a
*profile* (a dict of overrides) plus your own overrides, names it by :func:`config_hash`, and
returns the JSON result stored under that hash if there is one — otherwise it computes it and
writes it atomically. Changing any setting changes the hash, so it recomputes.

=========== ================================================================= ==========================
profile     what it reproduces                                                expected runtime
=========== ================================================================= ==========================
``ci``      the chapters' defaults: LeNet-300-100 on offline data (MNIST-1D   ≈ 30–60 s per notebook on
            for ``lottery``, digits for the rest); 3 seeds; the phenomena     2 CPU cores (measured times:
            at small scale                                                    the book's performance page)
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
finds), ``stability`` (chapter 10: the dense network's error barrier as a function of k) and
``noisy_stability`` (chapter 10: the same analysis for the course's CNN on digits with 30 % of the
training labels wrong and a step learning-rate schedule — a CPU-scale setting that is unstable at
initialisation and becomes stable within the first epoch) and ``noisy_rewinding`` (IMP with reset vs
rewinding in that setting: the test of chapter 10's prediction; a few minutes under ``lecture``).

From the command line: ``python -m lecturelib run lottery --profile lecture``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from . import data as data_module
from . import lottery, models, stability, training
from ._checks import check_choice


# --------------------------------------------------------------------------------------------
# Configs: one dataclass per experiment; the defaults are the ci profile.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LotteryConfig:
    """Chapter 9: IMP with reset to initialisation vs the same masks from a fresh random init."""

    dataset: str = "mnist1d"             # MNIST-1D (offline, hard enough for tickets to matter); "mnist" for the paper profile
    root: str | None = None              # folder of torchvision datasets (None: $LECTURELIB_DATA or ~/.cache)
    download: bool = False               # never reach for the network unless asked
    val_fraction: float = 0.15           # held out from training for the early-stopping iteration
    hidden: tuple[int, ...] = (300, 100) # LeNet-300-100
    optimizer: str = "adam"              # Frankle & Carbin train LeNet with Adam…
    lr: float = 1.2e-3                   # …at learning rate 1.2e-3…
    batch_size: int = 60                 # …with minibatches of 60
    iterations: int = 1500               # T, per training run (≈ 26 epochs of MNIST-1D's 3,400 training sequences)
    eval_every: int = 100                # iterations between evaluations (resolution of the early-stopping iteration)
    rounds: int = 7                      # pruning rounds: 8 levels including the dense network
    rate: float = 0.36                   # hidden layers: 1 - 0.8², two of Frankle & Carbin's 20 % rounds at once (0.64**7 ≈ 4.4 % left)
    output_rate: float = 0.19            # output layer: 1 - 0.9², two of their 10 % rounds
    long_iterations: int = 6000          # convergence control: the sparsest levels' tickets and re-inits trained again this long (0: none)
    long_levels: int = 2                 # how many of the sparsest levels get the convergence control
    seeds: tuple[int, ...] = (0, 1, 2)   # one IMP run per seed (init seed; data order too)
    reinit_seed_offset: int = 1000       # the random re-init of seed s is drawn from seed s + this
    device: str = "cpu"                  # "auto" (the paper profile): CUDA or MPS when there is one


@dataclass(frozen=True)
class RewindingConfig:
    """Chapter 10: IMP with reset (k = 0) vs rewinding to iteration k, and the sub-networks' instability."""

    dataset: str = "digits"
    root: str | None = None
    download: bool = False
    val_fraction: float = 0.15
    hidden: tuple[int, ...] = (300, 100)
    optimizer: str = "sgd"               # plain SGD (the u of the lecture is its minibatch order)…
    lr: float = 0.1                      # …with a large learning rate and no warm-up…
    momentum: float = 0.0
    batch_size: int = 8                  # …and small, noisy minibatches
    iterations: int = 300                # per training run (≈ 2 epochs of digits)
    eval_every: int = 20
    rounds: int = 6                      # 7 levels
    rate: float = 0.5                    # hidden layers: 0.5**6 ≈ 1.6 % of the weights left
    output_rate: float = 0.25            # output layer: half the hidden rate
    rewind_iterations: tuple[int, ...] = (0, 50)   # 0 = reset to init; k > 0 = rewind to W_k
    seeds: tuple[int, ...] = (0, 1, 2)
    alphas: int = 11                     # points on the linear path of the instability analysis
    lr_milestones: tuple[int, ...] = ()  # iterations after which the learning rate drops 10×
    model: str = "mlp"                   # "mlp" (LeNet-300-100 shape, `hidden`) or "cnn" (the course's Conv-2)
    label_noise: float = 0.0             # fraction of training labels made wrong (lecturelib.data.with_label_noise)
    device: str = "cpu"


@dataclass(frozen=True)
class StabilityConfig:
    """Chapter 10: instability (error barrier) of the dense network trained from W_k, against k."""

    dataset: str = "digits"
    root: str | None = None
    download: bool = False
    hidden: tuple[int, ...] = (300, 100)
    optimizer: str = "sgd"               # the same noisy setting as RewindingConfig
    lr: float = 0.1
    momentum: float = 0.0
    batch_size: int = 8
    iterations: int = 500                # T: both copies end at iteration T
    lr_milestones: tuple[int, ...] = ()  # iterations after which the learning rate drops 10×
    ks: tuple[int, ...] = (0, 20, 100, 250)  # rewind points W_k
    seeds: tuple[int, ...] = (0, 1, 2)   # init seeds; the copies of seed s use data orders 2s+1 and 2s+2
    alphas: int = 11
    model: str = "mlp"                   # "mlp" (LeNet-300-100 shape, `hidden`) or "cnn" (the course's Conv-2)
    label_noise: float = 0.0             # fraction of training labels made wrong (lecturelib.data.with_label_noise)
    device: str = "cpu"


CONFIGS = {"lottery": LotteryConfig, "digits_lottery": LotteryConfig, "rewinding": RewindingConfig,
           "stability": StabilityConfig, "noisy_stability": StabilityConfig, "noisy_rewinding": RewindingConfig}
EXPERIMENTS = tuple(CONFIGS)

# Profiles as data: overrides of each experiment's defaults (the defaults are "ci").
_PAPER_DATA = {"dataset": "mnist", "val_fraction": 5000 / 60000, "device": "auto"}
_NOISY = {"model": "cnn", "label_noise": 0.3}   # chapter 10's harder task: the CNN on 30 % wrong training labels
# chapter 9's easy task: digits, the first edition's short training (T = 240) and its convergence control at 1,000
_DIGITS_LOTTERY = {"dataset": "digits", "iterations": 240, "eval_every": 20, "long_iterations": 1000}
PROFILES: dict[str, dict[str, dict]] = {
    "ci": {"lottery": {}, "rewinding": {}, "stability": {},
           "digits_lottery": {**_DIGITS_LOTTERY, "rounds": 4, "rate": 0.64, "output_rate": 0.34, "long_levels": 3},
           "noisy_stability": {**_NOISY, "iterations": 900, "lr_milestones": (600,), "ks": (0, 20, 100, 300)},
           "noisy_rewinding": {**_NOISY, "iterations": 600, "lr_milestones": (400,), "eval_every": 100, "rounds": 4, "rate": 0.55,
                               "output_rate": 0.3, "rewind_iterations": (0, 100)}},
    "lecture": {
        "lottery": {"rounds": 14, "rate": 0.2, "output_rate": 0.1, "long_levels": 4, "seeds": (0, 1, 2, 3, 4)},
        "digits_lottery": {**_DIGITS_LOTTERY, "rounds": 9, "rate": 0.38, "output_rate": 0.19, "long_levels": 5,
                           "seeds": (0, 1, 2, 3, 4)},
        "rewinding": {"iterations": 1000, "eval_every": 50, "rounds": 9, "rewind_iterations": (0, 25, 100), "seeds": (0, 1, 2, 3, 4)},
        "stability": {"iterations": 1500, "ks": (0, 10, 25, 100, 300, 1000), "seeds": (0, 1, 2, 3, 4)},
        "noisy_stability": {**_NOISY, "iterations": 900, "lr_milestones": (600,), "ks": (0, 5, 20, 100, 300), "seeds": (0, 1, 2, 3, 4)},
        "noisy_rewinding": {**_NOISY, "iterations": 900, "lr_milestones": (600,), "eval_every": 100, "rounds": 5, "rate": 0.5,
                            "output_rate": 0.25, "rewind_iterations": (0, 100), "seeds": (0, 1, 2, 3, 4)},
    },
    "paper": {
        "lottery": {**_PAPER_DATA, "optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "iterations": 50_000,
                    "eval_every": 1000, "rounds": 20, "rate": 0.2, "output_rate": 0.1, "long_iterations": 0, "seeds": (0, 1, 2)},
        "digits_lottery": {**_DIGITS_LOTTERY, "iterations": 1000, "eval_every": 50, "long_iterations": 4000, "rounds": 20,
                           "rate": 0.2, "output_rate": 0.1, "long_levels": 5, "seeds": (0, 1, 2)},
        "rewinding": {**_PAPER_DATA, "batch_size": 60, "iterations": 50_000, "eval_every": 1000, "rounds": 20,
                      "rate": 0.2, "output_rate": 0.1, "rewind_iterations": (0, 500, 2000), "seeds": (0, 1, 2)},
        "stability": {**{k: v for k, v in _PAPER_DATA.items() if k != "val_fraction"}, "batch_size": 60,
                      "iterations": 50_000, "ks": (0, 100, 500, 2000, 10_000), "seeds": (0, 1, 2)},
        "noisy_stability": {**{k: v for k, v in _PAPER_DATA.items() if k != "val_fraction"}, **_NOISY,
                            "batch_size": 60, "iterations": 20_000, "lr_milestones": (15_000,),
                            "ks": (0, 100, 500, 2000), "seeds": (0, 1, 2)},
        "noisy_rewinding": {**_PAPER_DATA, **_NOISY, "batch_size": 60, "iterations": 20_000, "lr_milestones": (15_000,),
                            "eval_every": 1000, "rounds": 8, "rate": 0.4, "output_rate": 0.2,
                            "rewind_iterations": (0, 500, 2000), "seeds": (0, 1, 2)},
    },
}


def make_config(experiment: str, profile: str = "ci", **overrides):
    """Return the config of ``experiment`` under ``profile`` with ``overrides`` applied.

    Raises:
        ValueError: unknown experiment or profile.
        TypeError: an override names no field of the config.
    """
    check_choice("experiment", experiment, EXPERIMENTS)
    check_choice("profile", profile, PROFILES)
    cls = CONFIGS[experiment]
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"{experiment} has no setting {', '.join(map(repr, unknown))}; its settings are: {', '.join(sorted(names))}")
    values = {**PROFILES[profile][experiment], **overrides}
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
    return cls(**values)


def config_hash(config) -> str:
    """Return the 12-hex-digit name of ``config``: sha256 of its fields as sorted JSON.

    Equal configs give equal hashes on every machine; any changed field changes it.
    """
    payload = json.dumps({"experiment": type(config).__name__, **asdict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    """Return the cache folder: ``$LECTURELIB_CACHE`` or ``.lecturelib_cache/`` in the current directory."""
    return Path(os.environ.get("LECTURELIB_CACHE", ".lecturelib_cache"))


def result_path(experiment: str, config, directory: str | os.PathLike | None = None) -> Path:
    """Return where the result of ``config`` is cached: ``<cache>/<experiment>-<hash>.json``."""
    return Path(directory if directory is not None else cache_dir()) / f"{experiment}-{config_hash(config)}.json"


def run(experiment: str, profile: str = "ci", *, use_cache: bool = True, directory: str | os.PathLike | None = None, **overrides) -> dict:
    """Return the result of ``experiment`` under ``profile`` (plus ``overrides``), from the cache if there.

    Args:
        experiment: ``"lottery"``, ``"rewinding"`` or ``"stability"``.
        profile: ``"ci"``, ``"lecture"`` or ``"paper"`` (see the module's table).
        use_cache: read and write the cache (``False``: always compute, write nothing).
        directory: the cache folder (default :func:`cache_dir`).
        **overrides: settings of the experiment's config, e.g. ``seeds=(0,)``.

    Returns:
        ``{"experiment", "config", "config_hash", "results"}``, JSON-ready; the same whether it was
        computed now or read from the cache.

    Raises:
        lecturelib.data.DatasetUnavailableError: the dataset is not on disk and may not be downloaded.
    """
    config = make_config(experiment, profile, **overrides)
    path = result_path(experiment, config, directory)
    if use_cache and path.exists():
        cached = _read_cached(path, config)
        if cached is not None:
            return cached
    with _cpu_threads(config.device):
        results = {"lottery": _run_lottery, "digits_lottery": _run_lottery, "rewinding": _run_rewinding, "stability": _run_stability,
                   "noisy_stability": _run_stability, "noisy_rewinding": _run_rewinding}[experiment](config)
    record = {"experiment": experiment, "config": asdict(config), "config_hash": config_hash(config), "results": results}
    record = json.loads(json.dumps(record))  # exactly what a cache hit returns (tuples → lists)
    if use_cache:
        write_json_atomic(path, record)
    return record


def write_json_atomic(path: str | os.PathLike, obj, *, indent: int | None = None) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=indent) + ("\n" if indent is not None else ""))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    A reader never sees a half-written file, and an interrupted write leaves the old file in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_cached(path: Path, config) -> dict | None:
    try:
        record = json.loads(path.read_text())
        if record["config_hash"] != config_hash(config) or "results" not in record:
            raise ValueError("it belongs to another configuration")
        return record
    except (OSError, ValueError, KeyError, TypeError) as error:
        warnings.warn(f"cache entry {path} is unreadable ({type(error).__name__}: {error}); recomputing it", RuntimeWarning, stacklevel=3)
        return None


@contextlib.contextmanager
def _cpu_threads(device: str) -> Iterator[None]:
    # One thread on a CPU: the tiny networks gain nothing from more, and results do not then
    # depend on the machine's core count.
    if (training.default_device().type if device == "auto" else device) != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------
# The experiments.
# --------------------------------------------------------------------------------------------

def _load(config, seed: int = 0, val_fraction: float | None = None) -> data_module.Dataset:
    data = data_module.load_dataset(
        config.dataset, seed=seed, val_fraction=getattr(config, "val_fraction", 0.0) if val_fraction is None else val_fraction,
        root=config.root, download=config.download,
    )
    noise = getattr(config, "label_noise", 0.0)
    return data_module.with_label_noise(data, noise, seed=0) if noise else data


def _model_maker(config, data: data_module.Dataset):
    """Return ``seed -> freshly initialised network``: the MLP of ``config.hidden`` or the course's CNN."""
    model = getattr(config, "model", "mlp")
    check_choice("model", model, ("mlp", "cnn"))
    if model == "mlp":
        return lambda seed: models.mlp(data.input_shape, data.num_classes, config.hidden, seed=seed)
    return lambda seed: models.build_model("cnn", data.input_shape, data.num_classes, seed=seed)


def _train_kwargs(config) -> dict:
    kwargs = {"iterations": config.iterations, "batch_size": config.batch_size, "optimizer": config.optimizer,
              "lr": config.lr, "device": None if config.device == "auto" else config.device}
    if hasattr(config, "momentum"):
        kwargs["momentum"] = config.momentum
    if hasattr(config, "eval_every"):
        kwargs["eval_every"] = config.eval_every
    if hasattr(config, "lr_milestones"):
        kwargs["lr_milestones"] = config.lr_milestones
    return kwargs


def _run_lottery(config: LotteryConfig) -> dict:
    data = _load(config)
    make = lambda seed: models.mlp(data.input_shape, data.num_classes, config.hidden, seed=seed)  # noqa: E731
    kwargs = _train_kwargs(config)
    runs, long = {"ticket": [], "random": []}, {"ticket": [], "random": []}
    for seed in config.seeds:
        levels = lottery.iterative_magnitude_pruning(
            make(seed), data, rounds=config.rounds, rate=config.rate, output_rate=config.output_rate,
            train_kwargs={**kwargs, "data_seed": seed},
        )
        runs["ticket"].append([level.to_dict() for level in levels])
        runs["random"].append([
            lottery.train_random_reinit(make, data, level.mask, seed=seed + config.reinit_seed_offset,
                                        train_kwargs={**kwargs, "data_seed": seed}, level=level.level).to_dict()
            for level in levels
        ])
        if config.long_iterations:   # convergence control: the sparsest tickets and re-inits, trained long_iterations
            long_kwargs = {**kwargs, "iterations": config.long_iterations, "data_seed": seed}
            for kind, init_seed in (("ticket", seed), ("random", seed + config.reinit_seed_offset)):
                long[kind].append([   # with the ticket's own seed, train_random_reinit trains the ticket m ⊙ W_0 itself
                    lottery.train_random_reinit(make, data, level.mask, seed=init_seed, train_kwargs=long_kwargs,
                                                level=level.level).to_dict()
                    for level in levels[-config.long_levels:]
                ])
    return {"weights_left": [level["weights_left"] for level in runs["ticket"][0]], "runs": runs, "long": long,
            "trainings_per_seed": {"ticket": config.rounds + 1, "random": config.rounds + 1}}


def _run_rewinding(config: RewindingConfig) -> dict:
    data = _load(config)
    make = _model_maker(config, data)
    kwargs = _train_kwargs(config)
    stability_kwargs = {key: value for key, value in kwargs.items() if key not in ("iterations", "eval_every")}
    runs, sparse = {}, {}
    for k in config.rewind_iterations:
        runs[str(k)], sparse[str(k)] = [], []
        for seed in config.seeds:
            model = make(seed)
            history = training.train(training.clone_model(model), data, iterations=max(k, 1), snapshot_at=[k], data_seed=seed,
                                     **stability_kwargs)
            w_k = history.snapshots[k]
            levels = lottery.iterative_magnitude_pruning(
                model, data, rounds=config.rounds, rate=config.rate, output_rate=config.output_rate,
                rewind_iteration=k, train_kwargs={**kwargs, "data_seed": seed},
            )
            runs[str(k)].append([level.to_dict() for level in levels])
            result = stability.instability_analysis(
                make(seed), data, k=k, iterations=config.iterations, start_state=w_k, mask=levels[-1].mask,
                data_seeds=(2 * seed + 1, 2 * seed + 2), alphas=config.alphas, train_kwargs=stability_kwargs,
            )
            sparse[str(k)].append(result.to_dict())
    return {"weights_left": [level["weights_left"] for level in next(iter(runs.values()))[0]], "runs": runs,
            "sparse_instability": sparse, "n_test": len(data.y_test)}


def _run_stability(config: StabilityConfig) -> dict:
    data = _load(config, val_fraction=0.0)
    make = _model_maker(config, data)
    kwargs = {key: value for key, value in _train_kwargs(config).items() if key != "iterations"}
    by_k = {str(k): [] for k in config.ks}
    for seed in config.seeds:
        model = make(seed)
        history = training.train(training.clone_model(model), data, iterations=max(max(config.ks), 1), snapshot_at=config.ks,
                                 data_seed=0, eval_every=max(max(config.ks), 1), **{k: v for k, v in kwargs.items() if k != "eval_every"})
        for k in config.ks:
            result = stability.instability_analysis(
                model, data, k=k, iterations=config.iterations, start_state=history.snapshots[k],
                data_seeds=(2 * seed + 1, 2 * seed + 2), alphas=config.alphas,
                train_kwargs={**kwargs, "eval_every": config.iterations},
            )
            by_k[str(k)].append(result.to_dict())
    return {"ks": list(config.ks), "by_k": by_k, "n_train": len(data.y_train), "n_test": len(data.y_test)}


# --------------------------------------------------------------------------------------------
# Reading results.
# --------------------------------------------------------------------------------------------

def level_metric(runs: list[list[dict]], key: str) -> np.ndarray:
    """Return ``key`` (e.g. ``"best_test_acc"``) of every level of every seed: an array of shape ``(seeds, levels)``."""
    return np.array([[level[key] for level in levels] for levels in runs], dtype=float)


def history_metric_at(runs: list[list[dict]], key: str, iteration: int) -> np.ndarray:
    """Return the history curve ``key`` (e.g. ``"val_acc"``) at ``iteration`` for every seed and level: shape ``(seeds, levels)``."""
    out = []
    for levels in runs:
        row = []
        for level in levels:
            its = level["history"]["iteration"]
            if iteration not in its:
                raise ValueError(f"iteration {iteration} was not evaluated; evaluations at {its[:5]}…")
            row.append(level["history"][key][its.index(iteration)])
        out.append(row)
    return np.array(out, dtype=float)


def barrier_matrix(by_k: Mapping[str, list[dict]], key: str = "error_barrier") -> tuple[list[int], np.ndarray]:
    """Return ``(ks, values)`` with ``values[s, j]`` the ``key`` of seed ``s`` at ``ks[j]``."""
    ks = sorted(by_k, key=int)
    return [int(k) for k in ks], np.array([[run[key] for run in by_k[k]] for k in ks], dtype=float).T


def figures(record: Mapping) -> dict[str, "object"]:
    """Return ``{name: matplotlib Figure}`` drawing a :func:`run` result (the CLI saves them as PNG)."""
    import matplotlib.pyplot as plt

    from . import plots

    experiment, results = record["experiment"], record["results"]
    figs = {}
    if experiment in ("lottery", "digits_lottery"):
        fig, (left, right) = plt.subplots(1, 2, figsize=plots.FIGSIZE)
        plots.plot_sparsity_curves(left, results["weights_left"], {
            "winning ticket (reset to W_0)": (level_metric(results["runs"]["ticket"], "best_test_acc"), plots.COLORS["ticket"]),
            "random re-init": (level_metric(results["runs"]["random"], "best_test_acc"), plots.COLORS["random"]),
        }, ylabel="test accuracy at early stopping (%)", percent=True)
        plots.plot_sparsity_curves(right, results["weights_left"], {
            "winning ticket": (level_metric(results["runs"]["ticket"], "best_iteration"), plots.COLORS["ticket"]),
            "random re-init": (level_metric(results["runs"]["random"], "best_iteration"), plots.COLORS["random"]),
        }, ylabel="early-stopping iteration")
        figs["tickets"] = fig
    elif experiment in ("rewinding", "noisy_rewinding"):
        fig, ax = plt.subplots(figsize=plots.FIGSIZE)
        curves = {("reset to W_0" if k == "0" else f"rewind to W_{k}"): (level_metric(runs, "best_test_acc"), plots.COLORS["ticket" if k == "0" else "rewind"])
                  for k, runs in results["runs"].items()}
        plots.plot_sparsity_curves(ax, results["weights_left"], curves, ylabel="test accuracy at early stopping (%)", percent=True)
        figs[experiment] = fig
    else:
        loss = experiment == "noisy_stability"   # its error barrier is within test-set noise; its loss barrier is not
        fig, (left, right) = plt.subplots(1, 2, figsize=plots.FIGSIZE)
        plots.plot_interpolation(left, {f"k = {k}": runs for k, runs in results["by_k"].items()}, metric="losses" if loss else "errors")
        ks, values = barrier_matrix(results["by_k"], "loss_barrier" if loss else "error_barrier")
        plots.plot_barrier_vs_k(right, ks, {"dense": (values, plots.COLORS["dense"])},
                                **({"percent": False, "ylabel": "loss barrier (nats)"} if loss else {}))
        figs[experiment] = fig
    for name, fig in figs.items():
        fig.suptitle(f"{experiment} ({record['config_hash']})", fontsize=9)
    return figs
