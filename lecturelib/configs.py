"""The settings of the experiments of chapters 9 and 10: one config dataclass per kind of experiment
(its defaults are the ``ci`` profile), the profiles as data, and the check every config passes when
it is made. :mod:`lecturelib.experiments` runs them; its docstring describes the profiles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from . import data as data_module
from . import models, training
from ._checks import as_scalar, check_choice, check_fraction, check_number, check_positive_int


@dataclass(frozen=True)
class ExperimentConfig(training.TrainSettings):
    """The settings every experiment shares: how to train (:class:`~lecturelib.training.TrainSettings`,
    inherited), the data, the network and the seeds. Each experiment's config adds its own."""

    dataset: str = "mnist1d"             # MNIST-1D (offline); "mnist" for the paper profile
    root: str | None = None              # folder of torchvision datasets (None: $LECTURELIB_DATA or ~/.cache)
    download: bool = True                # torchvision may download a missing dataset (False: never touch the network)
    val_fraction: float = 0.0            # held out from training for the early-stopping iteration
    label_noise: float = 0.0             # fraction of training labels made wrong (lecturelib.data.with_label_noise)
    model: str = "mlp"                   # "mlp" (widths `hidden`), "cnn1d" (the MNIST-1D paper's 1-D CNN) or "cnn" (Conv-2)
    hidden: tuple[int, ...] = (300, 100) # LeNet-300-100
    seeds: tuple[int, ...] = (0, 1, 2)   # one run per seed (init seed; data order too)
    device: str = "cpu"                  # "auto" (the paper profile): CUDA or MPS when there is one

    def __post_init__(self) -> None:
        check_config(self)


@dataclass(frozen=True)
class LotteryConfig(ExperimentConfig):
    """Chapter 9: IMP with reset to initialisation vs the same masks from a fresh random init."""

    val_fraction: float = 0.15           # held out from training for the early-stopping iteration
    optimizer: str = "adam"              # Frankle & Carbin train LeNet with Adam…
    lr: float = 1.2e-3                   # …at learning rate 1.2e-3…
    batch_size: int = 60                 # …with minibatches of 60
    iterations: int = 1000               # T, per training run (≈ 18 epochs of MNIST-1D's 3,400 training sequences; the lecture profile: 1,500)
    eval_every: int = 100                # iterations between evaluations (resolution of the early-stopping iteration)
    rounds: int = 7                      # pruning rounds: 8 levels including the dense network
    rate: float = 0.36                   # hidden layers: 1 - 0.8², two of Frankle & Carbin's 20 % rounds at once (0.64**7 ≈ 4.4 % left)
    output_rate: float = 0.19            # output layer: 1 - 0.9², two of their 10 % rounds
    long_iterations: int = 4000          # convergence control: the sparsest levels' tickets and re-inits trained again 4T (0: none)
    long_levels: int = 2                 # how many of the sparsest levels get the convergence control
    reinit_seed_offset: int = 1000       # the random re-init of seed s is drawn from seed s + this


@dataclass(frozen=True)
class StabilityConfig(ExperimentConfig):
    """Chapter 10: instability (error barrier) of the dense network trained from W_k, against k.

    The defaults (the ci profile) are the MNIST-1D paper's 1-D CNN trained as Frankle et al. (2020)
    train ResNet-20 — SGD with momentum at a large learning rate, no warm-up, annealed to 0 — which
    is unstable at initialisation and stable after a few epochs; ``T`` is shortened for CI (the
    lecture profile runs the full 2,000 steps). The copies of seed ``s`` use data orders ``2s + 1``
    and ``2s + 2``.
    """

    model: str = "cnn1d"                 # MNIST-1D: hard enough for a small CNN to be unstable at init
    optimizer: str = "sgd"               # SGD with momentum 0.9 at lr 0.1, no warm-up
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 100
    iterations: int = 600                # T: both copies end at iteration T (15 epochs of MNIST-1D)
    lr_schedule: str = "cosine"          # both end points annealed: lr → 0 at T ("step": lr_milestones, 10× lower from each)
    ks: tuple[int, ...] = (0, 25, 100)   # rewind points W_k
    alphas: int = 11                     # points on the path: Frankle et al.'s barrier needs the interior, ≥ 11


@dataclass(frozen=True)
class RewindingConfig(StabilityConfig):
    """Chapter 10: IMP with reset (k = 0) vs rewinding to iteration k, and the sub-networks' instability.

    The defaults (the ci profile) are :class:`StabilityConfig`'s MNIST-1D setting, where training is
    unstable at initialisation; a level rewound to ``W_k`` trains the remaining ``T - k`` iterations;
    the levels are compared at their annealed end (final test error).
    """

    eval_every: int = 600
    rounds: int = 3                      # 4 levels
    rate: float = 0.45                   # conv layers: 0.55**3 ≈ 17 % of the weights left
    output_rate: float = 0.225           # output layer: half the rate
    ks: tuple[int, ...] = (0, 100)       # rewind iterations k: 0 = reset to init; k > 0 = rewind to W_k


# Profiles as data: overrides of each experiment's defaults (the defaults are "ci").
_PAPER_MNIST = {"dataset": "mnist", "device": "auto"}          # the stability tests hold out no validation split
_PAPER_DATA = {**_PAPER_MNIST, "val_fraction": 5000 / 60000}
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
           "digits_lottery": {**_DIGITS_LOTTERY, "rounds": 4, "rate": 0.64, "output_rate": 0.34, "long_levels": 2},
           "noisy_stability": {**_NOISY, "iterations": 900, "lr_milestones": (600,), "ks": (0, 20, 100, 300)},
           "noisy_rewinding": {**_NOISY_REWINDING, "iterations": 600, "lr_milestones": (400,), "eval_every": 100, "rounds": 4, "rate": 0.55,
                               "output_rate": 0.3, "ks": (0, 100)}},
    "lecture": {
        "lottery": {"iterations": 1500, "long_iterations": 6000, "rounds": 14, "rate": 0.2, "output_rate": 0.1, "long_levels": 4,
                    "seeds": (0, 1, 2, 3, 4)},
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
        "stability": {**_PAPER_MNIST, **_PAPER_MLP,
                      "iterations": 50_000, "ks": (0, 100, 500, 2000, 10_000), "seeds": (0, 1, 2)},
        "noisy_stability": {**_NOISY, **_PAPER_MNIST,
                            "batch_size": 60, "iterations": 20_000, "lr_milestones": (15_000,),
                            "ks": (0, 100, 500, 2000), "seeds": (0, 1, 2)},
        "noisy_rewinding": {**_NOISY, **_PAPER_DATA, "batch_size": 60, "iterations": 20_000, "lr_milestones": (15_000,),
                            "eval_every": 1000, "rounds": 8, "rate": 0.4, "output_rate": 0.2,
                            "ks": (0, 500, 2000), "seeds": (0, 1, 2)},
    },
}


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
    training.TrainSettings.__post_init__(config)   # the inherited training settings, checked as TrainSettings checks them
    for name, values, what in (("ks", getattr(config, "ks", ()), "a rewind point W_k is taken during the training"),
                               ("lr_milestones", config.lr_milestones, "a milestone lies inside the training")):
        late = [v for v in values if v >= config.iterations]
        if late:
            raise ValueError(f"{name} must all be < iterations = {config.iterations} ({what}), got {values!r}")
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
    if name == "momentum":   # the training settings allow any momentum >= 0; SGD's heavy ball needs < 1
        value = check_number(name, value)
        if not 0 <= value < 1:
            raise ValueError(f"momentum must be in [0, 1), got {value!r}")
        return value
    if name in ("iterations", "rounds", "reinit_seed_offset", "long_levels"):
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
    elif name == "model":
        check_choice("model", value, models.MODELS)
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
