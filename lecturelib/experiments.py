"""The experiment runner of the lottery-ticket chapters: named experiments, profiles and an on-disk cache.

An experiment is a pure function of a config dataclass. :func:`run` builds the config from a
*profile* (a dict of overrides) plus your own overrides — every setting is checked before anything
is trained (:func:`check_config`) — names it by :func:`config_hash` and by the code that computes
it (:func:`code_fingerprint`: lecturelib's version, a hash of its source, torch's version), and
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
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from . import __version__, atomic, iterative, lottery, machine, models, stability, training
from . import data as data_module
from ._checks import as_scalar, check_choice, check_fraction, check_number, check_positive_int


# --------------------------------------------------------------------------------------------
# Configs: one dataclass per experiment; the defaults are the ci profile.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LotteryConfig:
    """Chapter 9: IMP with reset to initialisation vs the same masks from a fresh random init."""

    dataset: str = "mnist1d"             # MNIST-1D (offline, hard enough for tickets to matter); "mnist" for the paper profile
    root: str | None = None              # folder of torchvision datasets (None: $LECTURELIB_DATA or ~/.cache)
    download: bool = True                # torchvision may download a missing dataset (False: never touch the network)
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

    def __post_init__(self) -> None:
        check_config(self)


@dataclass(frozen=True)
class RewindingConfig:
    """Chapter 10: IMP with reset (k = 0) vs rewinding to iteration k, and the sub-networks' instability.

    The defaults (the ci profile) are :class:`StabilityConfig`'s MNIST-1D setting, where training is
    unstable at initialisation; a level rewound to ``W_k`` trains the remaining ``T - k`` iterations.
    """

    dataset: str = "mnist1d"             # MNIST-1D: hard enough for a small CNN to be unstable at init
    root: str | None = None
    download: bool = True
    val_fraction: float = 0.0            # the levels are compared at their annealed end (final test error)
    hidden: tuple[int, ...] = (300, 100) # widths when model = "mlp"
    optimizer: str = "sgd"               # SGD with momentum 0.9 at lr 0.1, no warm-up…
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 100
    iterations: int = 600                # T of every training run (15 epochs of MNIST-1D)…
    lr_schedule: str = "cosine"          # …annealed to lr 0 at T ("step": lr_milestones)
    eval_every: int = 600
    rounds: int = 3                      # 4 levels
    rate: float = 0.45                   # conv layers: 0.55**3 ≈ 17 % of the weights left
    output_rate: float = 0.225           # output layer: half the rate
    ks: tuple[int, ...] = (0, 100)       # rewind iterations k: 0 = reset to init; k > 0 = rewind to W_k
    seeds: tuple[int, ...] = (0, 1, 2)
    alphas: int = 11                     # points on the linear path of the instability analysis
    lr_milestones: tuple[int, ...] = ()  # iterations from which the learning rate is 10× lower (lr_schedule "step")
    model: str = "cnn1d"                 # the MNIST-1D paper's 1-D CNN; "mlp" (`hidden`) or "cnn" (Conv-2) for images
    label_noise: float = 0.0             # fraction of training labels made wrong (lecturelib.data.with_label_noise)
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_config(self)


@dataclass(frozen=True)
class StabilityConfig:
    """Chapter 10: instability (error barrier) of the dense network trained from W_k, against k.

    The defaults (the ci profile) are the MNIST-1D paper's 1-D CNN trained as Frankle et al. (2020)
    train ResNet-20 — SGD with momentum at a large learning rate, no warm-up, annealed to 0 — which
    is unstable at initialisation and stable after a few epochs; ``T`` is shortened for CI (the
    lecture profile runs the full 2,000 steps).
    """

    dataset: str = "mnist1d"
    root: str | None = None
    download: bool = True
    hidden: tuple[int, ...] = (300, 100) # widths when model = "mlp"
    optimizer: str = "sgd"               # SGD with momentum 0.9 at lr 0.1, no warm-up
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 100
    iterations: int = 600                # T: both copies end at iteration T (15 epochs of MNIST-1D)
    lr_schedule: str = "cosine"          # both end points annealed: lr → 0 at T ("step": lr_milestones)
    lr_milestones: tuple[int, ...] = ()  # iterations from which the learning rate is 10× lower (lr_schedule "step")
    ks: tuple[int, ...] = (0, 25, 100)   # rewind points W_k
    seeds: tuple[int, ...] = (0, 1, 2)   # init seeds; the copies of seed s use data orders 2s+1 and 2s+2
    alphas: int = 11                     # points on the path: Frankle et al.'s barrier needs the interior, ≥ 11
    model: str = "cnn1d"                 # the MNIST-1D paper's 1-D CNN; "mlp" (`hidden`) or "cnn" (Conv-2) for images
    label_noise: float = 0.0             # fraction of training labels made wrong (lecturelib.data.with_label_noise)
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_config(self)


CONFIGS = {"lottery": LotteryConfig, "digits_lottery": LotteryConfig, "rewinding": RewindingConfig,
           "stability": StabilityConfig, "noisy_stability": StabilityConfig, "noisy_rewinding": RewindingConfig}
EXPERIMENTS = tuple(CONFIGS)

# Profiles as data: overrides of each experiment's defaults (the defaults are "ci").
_PAPER_DATA = {"dataset": "mnist", "val_fraction": 5000 / 60000, "device": "auto"}
# The first edition's noisy-label setting: the Conv-2 CNN on digits with 30 % wrong training labels, plain
# SGD at lr 0.1 with batches of 8 and a step decay. Its loss barrier falls with k, but its error barrier
# stays below Frankle et al.'s 2 % at every k: by their criterion it is stable from W_0.
_NOISY = {"dataset": "digits", "model": "cnn", "label_noise": 0.3, "batch_size": 8, "momentum": 0.0, "lr_schedule": "step"}
_NOISY_REWINDING = {**_NOISY, "val_fraction": 0.15}
# The MNIST-1D setting at full length (COURSE_SPEC's feasibility run): 2,000 steps (50 epochs), 5 seeds.
_MNIST1D_FULL = {"iterations": 2000, "seeds": (0, 1, 2, 3, 4)}
# Frankle et al.'s LeNet-300-100 on MNIST: plain SGD at lr 0.1, minibatches of 60, no decay.
_PAPER_MLP = {"model": "mlp", "momentum": 0.0, "lr_schedule": "step", "batch_size": 60}
# chapter 9's easy task: digits, the first edition's short training (T = 240) and its convergence control at 1,000
_DIGITS_LOTTERY = {"dataset": "digits", "iterations": 240, "eval_every": 20, "long_iterations": 1000}
PROFILES: dict[str, dict[str, dict]] = {
    "ci": {"lottery": {}, "rewinding": {}, "stability": {},
           "digits_lottery": {**_DIGITS_LOTTERY, "rounds": 4, "rate": 0.64, "output_rate": 0.34, "long_levels": 3},
           "noisy_stability": {**_NOISY, "iterations": 900, "lr_milestones": (600,), "ks": (0, 20, 100, 300)},
           "noisy_rewinding": {**_NOISY_REWINDING, "iterations": 600, "lr_milestones": (400,), "eval_every": 100, "rounds": 4, "rate": 0.55,
                               "output_rate": 0.3, "ks": (0, 100)}},
    "lecture": {
        "lottery": {"rounds": 14, "rate": 0.2, "output_rate": 0.1, "long_levels": 4, "seeds": (0, 1, 2, 3, 4)},
        "digits_lottery": {**_DIGITS_LOTTERY, "rounds": 9, "rate": 0.38, "output_rate": 0.19, "long_levels": 5,
                           "seeds": (0, 1, 2, 3, 4)},
        "rewinding": {**_MNIST1D_FULL, "eval_every": 2000, "rounds": 8, "rate": 0.2, "output_rate": 0.1, "ks": (0, 200)},
        "stability": {**_MNIST1D_FULL, "ks": (0, 50, 100, 200, 800)},
        "noisy_stability": {**_NOISY, "iterations": 900, "lr_milestones": (600,), "ks": (0, 5, 20, 100, 300), "seeds": (0, 1, 2, 3, 4)},
        "noisy_rewinding": {**_NOISY_REWINDING, "iterations": 900, "lr_milestones": (600,), "eval_every": 100, "rounds": 5, "rate": 0.5,
                            "output_rate": 0.25, "ks": (0, 100), "seeds": (0, 1, 2, 3, 4)},
    },
    "paper": {
        "lottery": {**_PAPER_DATA, "optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "iterations": 50_000,
                    "eval_every": 1000, "rounds": 20, "rate": 0.2, "output_rate": 0.1, "long_iterations": 0, "seeds": (0, 1, 2)},
        "digits_lottery": {**_DIGITS_LOTTERY, "iterations": 1000, "eval_every": 50, "long_iterations": 4000, "rounds": 20,
                           "rate": 0.2, "output_rate": 0.1, "long_levels": 5, "seeds": (0, 1, 2)},
        "rewinding": {**_PAPER_DATA, **_PAPER_MLP, "iterations": 50_000, "eval_every": 1000, "rounds": 20,
                      "rate": 0.2, "output_rate": 0.1, "ks": (0, 500, 2000), "seeds": (0, 1, 2)},
        "stability": {**{k: v for k, v in _PAPER_DATA.items() if k != "val_fraction"}, **_PAPER_MLP,
                      "iterations": 50_000, "ks": (0, 100, 500, 2000, 10_000), "seeds": (0, 1, 2)},
        "noisy_stability": {**_NOISY, **{k: v for k, v in _PAPER_DATA.items() if k != "val_fraction"},
                            "batch_size": 60, "iterations": 20_000, "lr_milestones": (15_000,),
                            "ks": (0, 100, 500, 2000), "seeds": (0, 1, 2)},
        "noisy_rewinding": {**_NOISY, **_PAPER_DATA, "batch_size": 60, "iterations": 20_000, "lr_milestones": (15_000,),
                            "eval_every": 1000, "rounds": 8, "rate": 0.4, "output_rate": 0.2,
                            "ks": (0, 500, 2000), "seeds": (0, 1, 2)},
    },
}


def make_config(experiment: str, profile: str = "ci", **overrides):
    """Return the config of ``experiment`` under ``profile`` with ``overrides`` applied, checked.

    Raises:
        ValueError: unknown experiment or profile, or a setting with a bad value (see :func:`check_config`).
        TypeError: an override names no field of the config, or a setting of the wrong type.
    """
    check_choice("experiment", experiment, EXPERIMENTS)
    check_choice("profile", profile, PROFILES)
    cls = CONFIGS[experiment]
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"{experiment} has no setting {', '.join(map(repr, unknown))}; its settings are: {', '.join(sorted(names))}")
    return cls(**{**PROFILES[profile][experiment], **overrides})


# --------------------------------------------------------------------------------------------
# Checking a config: every setting, before any training (the configs' __post_init__ calls it).
# --------------------------------------------------------------------------------------------

DEVICES = ("auto", "cpu", "cuda", "mps")   # and "cuda:N"; "auto" = CUDA, then MPS, then the CPU


def check_config(config) -> None:
    """Check every setting of ``config`` and normalise it in place (lists → tuples, NumPy scalars → Python).

    Called by each config's ``__post_init__``, so a config that exists is a valid one: a mistake is
    reported in one line naming the setting, the bad value and what is allowed before anything is
    trained — not as a crash halfway through a run.

    Raises:
        TypeError: a setting of the wrong type (``lr="fast"``, ``seeds=0``).
        ValueError: a bad value: NaN or ±inf, a fraction outside [0, 1), an unknown dataset, model,
            optimiser or device, empty or repeated ``seeds``, rewind points ``ks``
            or ``lr_milestones`` that repeat, are unsorted or are not below
            ``iterations``.
    """
    for f in fields(config):
        object.__setattr__(config, f.name, _checked_setting(f.name, getattr(config, f.name)))
    for name, values, what in (("ks", getattr(config, "ks", ()), "a rewind point W_k is taken during the training"),
                               ("lr_milestones", getattr(config, "lr_milestones", ()), "a milestone lies inside the training")):
        late = [v for v in values if v >= config.iterations]
        if late:
            raise ValueError(f"{name} must all be < iterations = {config.iterations} ({what}), got {values!r}")
    if getattr(config, "lr_schedule", "step") != "step" and getattr(config, "lr_milestones", ()):
        raise ValueError(f"lr_milestones apply only to lr_schedule='step', got lr_milestones={config.lr_milestones!r} "
                         f"with lr_schedule={config.lr_schedule!r}")
    if getattr(config, "long_iterations", 0):
        if config.long_iterations <= config.iterations:
            raise ValueError(f"long_iterations must be 0 (no convergence control) or > iterations = {config.iterations}, "
                             f"got {config.long_iterations!r}")
        if config.long_levels > config.rounds:
            raise ValueError(f"long_levels must be <= rounds = {config.rounds} (it counts pruned levels), got {config.long_levels!r}")


def _checked_setting(name: str, value):
    value = as_scalar(value)
    if name in ("val_fraction", "rate", "output_rate", "label_noise"):
        return check_fraction(name, value)
    if name in ("lr", "momentum"):
        value = check_number(name, value)
        if not (0 < value if name == "lr" else 0 <= value < 1):
            raise ValueError(f"{name} must be {'> 0' if name == 'lr' else 'in [0, 1)'}, got {value!r}")
        return value
    if name in ("batch_size", "iterations", "eval_every", "rounds", "reinit_seed_offset", "long_levels"):
        return check_positive_int(name, value)
    if name == "long_iterations":
        return check_positive_int(name, value, allow_zero=True)
    if name == "alphas":
        value = check_positive_int(name, value)
        if value < 2:
            raise ValueError(f"alphas must be >= 2 (the two end points of the path), got {value!r}")
        return value
    if name in ("hidden", "seeds", "ks", "lr_milestones"):
        return _checked_ints(name, value)
    if name == "dataset":
        check_choice("dataset", value, data_module.DATASETS)
    elif name == "optimizer":
        check_choice("optimizer", value, training.OPTIMIZERS)
    elif name == "model":
        check_choice("model", value, models.MODELS)
    elif name == "lr_schedule":
        check_choice("lr_schedule", value, training.LR_SCHEDULES)
    elif name == "device":
        if not (isinstance(value, str) and (value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit()))):
            raise ValueError(f"unknown device {value!r}; allowed: {', '.join(map(repr, DEVICES))} or 'cuda:N'")
    elif name == "download" and not isinstance(value, bool):
        raise TypeError(f"download must be True or False, got {value!r}")
    elif name == "root" and value is not None:
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"root must be a folder (a str) or None, got {value!r} of type {type(value).__name__}")
        return os.fspath(value)
    return value


def _checked_ints(name: str, value) -> tuple[int, ...]:
    """``value`` as a tuple of ints, with the rule of setting ``name``: what each may be, sorted, non-empty."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a tuple of ints, got {value!r} of type {type(value).__name__}")
    values = tuple(check_positive_int(f"{name} entry", v, allow_zero=name != "hidden" and name != "lr_milestones")
                   for v in value)
    if name == "seeds" and not values:
        raise ValueError("seeds must hold at least one seed, got ()")
    if name == "seeds" and len(set(values)) < len(values):
        raise ValueError(f"seeds must not repeat (a repeated seed repeats a run), got {values!r}")
    if name == "ks" and not values:
        raise ValueError(f"{name} must hold at least one iteration, got ()")
    if name in ("ks", "lr_milestones") and list(values) != sorted(set(values)):
        raise ValueError(f"{name} must be increasing with no repeats, got {values!r}; e.g. {tuple(sorted(set(values)))!r}")
    return values


# --------------------------------------------------------------------------------------------
# The cache: named by the config and by the code that computes it.
# --------------------------------------------------------------------------------------------

def config_hash(config) -> str:
    """Return the 12-hex-digit name of ``config``: sha256 of its fields as sorted JSON.

    Equal configs give equal hashes on every machine; any changed field changes it.
    """
    payload = json.dumps({"experiment": type(config).__name__, **asdict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


_SOURCE = Path(__file__).parent   # the lecturelib whose code computes the results
_NOT_COMPUTING = ("__main__.py", "checks.py", "plots.py", "widgets.py")   # command line, notebook checks, drawing


def code_fingerprint() -> dict[str, str]:
    """Return what besides the config decides a result: lecturelib's version, its source, torch's version.

    ``source_sha256`` hashes every ``lecturelib/*.py`` except the modules that compute no result
    (the command line, plotting, widgets and the notebooks' exercise checks). Hashing all the rest
    rather than tracing which functions a runner calls keeps it simple and never stale: any edit to
    a module that could change a number (even a comment) recomputes the results. Read on every call
    (about a millisecond), so an edit made while Python runs counts too.
    """
    digest = hashlib.sha256()
    for path in sorted(_SOURCE.glob("*.py")):
        if path.name not in _NOT_COMPUTING:
            digest.update(path.name.encode() + b"\0" + path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return {"lecturelib": __version__, "source_sha256": digest.hexdigest()[:16], "torch": torch.__version__}


def cache_dir() -> Path:
    """Return the cache folder: ``$LECTURELIB_CACHE`` or ``.lecturelib_cache/`` in the current directory."""
    return Path(os.environ.get("LECTURELIB_CACHE", ".lecturelib_cache"))


def result_path(experiment: str, config, directory: str | os.PathLike | None = None) -> Path:
    """Return where the result of ``config`` is cached: ``<cache>/<experiment>-<config hash>-<code hash>.json``.

    The code hash (8 hex digits) names :func:`code_fingerprint`: a new lecturelib or torch, or an
    edited module, looks for a different file, so a stale result is never read.
    """
    code = hashlib.sha256(json.dumps(code_fingerprint(), sort_keys=True).encode()).hexdigest()[:8]
    return Path(directory if directory is not None else cache_dir()) / f"{experiment}-{config_hash(config)}-{code}.json"


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_outcome` did: the ``record``, the cache file (``None`` with ``use_cache=False``) and
    whether the record was read from it (``False``: computed now)."""

    record: dict
    path: Path | None
    from_cache: bool


def run(experiment: str, profile: str = "ci", *, use_cache: bool = True, directory: str | os.PathLike | None = None,
        progress: bool | None = None, **overrides) -> dict:
    """Return the result of ``experiment`` under ``profile`` (plus ``overrides``), from the cache if there.

    Args:
        experiment: one of :data:`EXPERIMENTS` (see the module's docstring).
        profile: ``"ci"``, ``"lecture"`` or ``"paper"`` (see the module's table).
        use_cache: read and write the cache (``False``: always compute, write nothing).
        directory: the cache folder (default :func:`cache_dir`).
        progress: show a ``tqdm`` bar (with an ETA) over the optimiser steps of all the run's
            trainings — every seed, round and rewind point — once the run has taken two seconds.
            ``None`` (the default): only when stderr is a terminal and ``$CI`` is not set, so
            notebooks and CI logs stay free of it.
        **overrides: settings of the experiment's config, e.g. ``seeds=(0,)``.

    Returns:
        ``{"experiment", "config", "config_hash", "code", "results"}``, JSON-ready; the same whether
        it was computed now or read from the cache (:func:`run_outcome` also says which).

    Raises:
        ValueError / TypeError: a bad setting (:func:`check_config`) or a device this machine lacks.
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
    path = result_path(experiment, config, directory)
    if use_cache and path.exists():
        cached = _read_cached(path, experiment, config)
        if cached is not None:
            return RunOutcome(cached, path, True)
    _check_device_here(experiment, config)
    with _cpu_threads(config.device), _progress_bar(experiment, config, progress):
        results = {"lottery": _run_lottery, "digits_lottery": _run_lottery, "rewinding": _run_rewinding, "stability": _run_stability,
                   "noisy_stability": _run_stability, "noisy_rewinding": _run_rewinding}[experiment](config)
    record = {"experiment": experiment, "config": asdict(config), "config_hash": config_hash(config),
              "code": code_fingerprint(), "results": results}
    record = json.loads(json.dumps(record))  # exactly what a cache hit returns (tuples → lists)
    if use_cache:
        atomic.write_json(path, record)
    return RunOutcome(record, path if use_cache else None, False)


# The keys each experiment's results must have, each non-empty, for a cache file to count.
_RESULT_KEYS = {"lottery": ("weights_left", "runs"), "digits_lottery": ("weights_left", "runs"), "rewinding": ("weights_left", "runs", "sparse_instability"),
                "stability": ("ks", "by_k"), "noisy_stability": ("ks", "by_k"),
                "noisy_rewinding": ("weights_left", "runs", "sparse_instability")}


def _read_cached(path: Path, experiment: str, config) -> dict | None:
    """The record in ``path`` if it validates; otherwise ``None`` after one warning saying why."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError("it is not a JSON object")
        if record.get("experiment") != experiment or record.get("config_hash") != config_hash(config):
            raise ValueError("it belongs to another configuration")
        if record.get("code") != code_fingerprint():
            raise ValueError("it was computed by other code (lecturelib or torch version, or lecturelib's source)")
        results = record.get("results")
        missing = [key for key in _RESULT_KEYS[experiment] if not (isinstance(results, dict) and results.get(key))]
        if missing:
            raise ValueError(f"its results lack {', '.join(missing)} or have them empty")
        return record
    except (OSError, ValueError) as error:   # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        warnings.warn(f"cache entry {path} is unreadable or invalid ({type(error).__name__}: {error}); recomputing it",
                      RuntimeWarning, stacklevel=4)
        return None


def _check_device_here(experiment: str, config) -> None:
    """Refuse a device this machine lacks; for ``"auto"`` without a GPU, warn how long the CPU will take."""
    device = config.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} is not available: torch finds no CUDA GPU here; use device='auto' or 'cpu'")
    if device == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' is not available: this is not a Mac with Apple silicon; use device='auto' or 'cpu'")
    if device == "auto" and training.default_device().type == "cpu":
        steps = planned_steps(experiment, config)
        seconds = steps * _seconds_per_step(config)
        warnings.warn(
            f"no GPU found: {experiment} trains on this CPU, on one thread (so results do not depend on the core "
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
    name = getattr(config, "model", "mlp")
    model = models.mlp(shape, 10, config.hidden, seed=0) if name == "mlp" else models.build_model(name, shape, 10, seed=0)
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


@contextlib.contextmanager
def _cpu_threads(device: str) -> Iterator[None]:
    # One thread on a CPU: the tiny networks gain nothing from more, and results do not then
    # depend on the machine's core count.
    with machine.torch_threads(1 if (training.default_device().type if device == "auto" else device) == "cpu" else None):
        yield


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
    """Return ``seed -> freshly initialised network``: the MLP of ``config.hidden`` or another of :data:`models.MODELS`."""
    model = getattr(config, "model", "mlp")
    check_choice("model", model, models.MODELS)
    if model == "mlp":
        return lambda seed: models.mlp(data.input_shape, data.num_classes, config.hidden, seed=seed)
    return lambda seed: models.build_model(model, data.input_shape, data.num_classes, seed=seed)


def _train_kwargs(config) -> dict:
    kwargs = {"iterations": config.iterations, "batch_size": config.batch_size, "optimizer": config.optimizer,
              "lr": config.lr, "device": None if config.device == "auto" else config.device}
    if hasattr(config, "momentum"):
        kwargs["momentum"] = config.momentum
    if hasattr(config, "eval_every"):
        kwargs["eval_every"] = config.eval_every
    if hasattr(config, "lr_milestones"):
        kwargs["lr_milestones"] = config.lr_milestones
    if hasattr(config, "lr_schedule"):
        kwargs["lr_schedule"] = config.lr_schedule
    return kwargs


def _run_lottery(config: LotteryConfig) -> dict:
    data = _load(config)
    make = lambda seed: models.mlp(data.input_shape, data.num_classes, config.hidden, seed=seed)  # noqa: E731
    kwargs = _train_kwargs(config)
    imp = lottery.iterative_magnitude_pruning([make(seed) for seed in config.seeds], data, rounds=config.rounds, rate=config.rate,
                                              output_rate=config.output_rate, data_seeds=config.seeds, train_kwargs=kwargs)
    tickets = [run.levels for run in imp]
    reinit = lambda seed: seed + config.reinit_seed_offset  # noqa: E731
    runs = {"ticket": [[level.to_dict() for level in levels] for levels in tickets],
            "random": _masks_retrained(make, data, config.seeds, tickets, {"random": reinit}, kwargs)["random"]}
    long = {"ticket": [], "random": []}
    if config.long_iterations:   # convergence control: the sparsest tickets (m ⊙ W_0 itself) and re-inits, trained long_iterations
        long = _masks_retrained(make, data, config.seeds, [levels[-config.long_levels:] for levels in tickets],
                                {"ticket": lambda seed: seed, "random": reinit}, {**kwargs, "iterations": config.long_iterations})
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
    data = _load(config)
    make = _model_maker(config, data)
    kwargs = _train_kwargs(config)
    stability_kwargs = {key: value for key, value in kwargs.items() if key not in ("iterations", "eval_every")}
    runs, sparse = {}, {}
    for k in config.ks:
        imp = lottery.iterative_magnitude_pruning([make(seed) for seed in config.seeds], data, rounds=config.rounds, rate=config.rate,
                                                  output_rate=config.output_rate, k=k, data_seeds=config.seeds, train_kwargs=kwargs)
        runs[str(k)] = [[level.to_dict() for level in run.levels] for run in imp]
        sparse[str(k)] = [stability.instability_analysis(
            make(seed), data, run.rewind, iterations=config.iterations, mask=run.levels[-1].mask,
            data_seeds=(2 * seed + 1, 2 * seed + 2), alphas=config.alphas, train_kwargs=stability_kwargs).to_dict()
            for seed, run in zip(config.seeds, imp)]
    return {"weights_left": [level["weights_left"] for level in next(iter(runs.values()))[0]], "runs": runs,
            "sparse_instability": sparse, "n_test": len(data.y_test)}


def _run_stability(config: StabilityConfig) -> dict:
    data = _load(config, val_fraction=0.0)
    make = _model_maker(config, data)
    kwargs = {key: value for key, value in _train_kwargs(config).items() if key not in ("iterations", "eval_every")}
    by_k = {str(k): [] for k in config.ks}
    first = max(max(config.ks), 1)   # the first steps of a T-step run, on its learning-rate schedule
    for seed in config.seeds:
        model = make(seed)
        history = training.train(training.clone_model(model), data, iterations=first, run_iterations=config.iterations,
                                 snapshot_at=config.ks, data_seed=0, eval_every=first, **kwargs)
        for k in config.ks:
            result = stability.instability_analysis(
                model, data, iterative.Snapshot(k, history.snapshots[k]), iterations=config.iterations,
                data_seeds=(2 * seed + 1, 2 * seed + 2), alphas=config.alphas, train_kwargs={**kwargs, "eval_every": config.iterations},
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
        # with a validation split: the early-stopping accuracy; without (rewinding's ci): the annealed end's
        key, ylabel = (("best_test_acc", "test accuracy at early stopping (%)") if record["config"].get("val_fraction")
                       else ("final_test_acc", "final test accuracy (%)"))
        curves = {("reset to W_0" if k == "0" else f"rewind to W_{k}"): (level_metric(runs, key), plots.COLORS["ticket" if k == "0" else "rewind"])
                  for k, runs in results["runs"].items()}
        plots.plot_sparsity_curves(ax, results["weights_left"], curves, ylabel=ylabel, percent=True)
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
