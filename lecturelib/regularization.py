"""Pruning and dropout as regularisers (Chapter 2, notebooks/02_gains_and_costs.ipynb, and Chapter 4,
notebooks/04_pruning_vs_dropout.ipynb): train a dense, a pruned-then-retrained and a dropout network
on the same small training set, for several seeds, with the same budget of optimiser steps — and
the control that any claim of regularisation needs, the dense network stopped early.

Every regime but the control gets ``2 * iterations`` steps in all, so none wins by training longer:

* ``"dense"`` — the plain MLP, ``2 * iterations`` steps.
* ``"pruned"`` — the same dense run up to step ``iterations`` (same seed, so the very same
  weights), then magnitude pruning to ``sparsity`` (layer-wise) and ``iterations`` steps of
  retraining with the mask.
* ``"dropout"`` — :func:`lecturelib.dropout.mlp_dropout` (same initial weights), ``2 * iterations`` steps;
  its dropout masks are drawn from a generator seeded with the seed, so runs repeat exactly.
* ``"early_stopped"`` — the control: the dense run stopped at step ``iterations``, i.e. the very
  network the ``"pruned"`` regime starts from. A regulariser whose test score the dense net also
  reaches by simply training less has not shown more than early stopping does.

Whatever device trains them (:func:`lecturelib.training.default_device`: a GPU where there is one),
the runs' models are handed back on the CPU, where the datasets' tensors are.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import data as data_module
from . import dropout, machine, models, pruning, training
from ._checks import check_choice, check_fraction, check_positive_int
from .training import History

REGIMES = ("dense", "pruned", "dropout", "early_stopped")


@dataclass
class RegimeRun:
    """One regime trained with one seed: its learning curves and final train / test scores.

    Accuracies are fractions in [0, 1]; losses are mean cross-entropy (the train scores are measured
    in ``eval()`` mode, i.e. with dropout off). ``model`` is the trained network, in eval mode, on the CPU.
    """

    regime: str
    seed: int
    history: History
    train_acc: float
    train_loss: float
    test_acc: float
    test_loss: float
    sparsity: float
    model: nn.Module | None = None


def concat_histories(first: History, second: History) -> History:
    """Return one :class:`History` with ``second``'s iterations shifted to follow ``first``'s last one."""
    offset = first.iteration[-1] if first.iteration else 0
    tail = {**second.to_dict(), "iteration": [offset + it for it in second.iteration]}
    return History(**{key: values + tail[key] for key, values in first.to_dict().items()})


def _run(regime: str, seed: int, model, dataset, history: History, sparsity: float) -> RegimeRun:
    model = model.cpu().eval()
    train_loss, train_acc = training.evaluate(model, dataset.x_train, dataset.y_train)
    test_loss, test_acc = training.evaluate(model, dataset.x_test, dataset.y_test)
    return RegimeRun(regime, seed, history, train_acc, train_loss, test_acc, test_loss, sparsity, model)


def compare_regimes(
    dataset: str = "digits",
    *,
    n_train: int = 100,
    seeds: Iterable[int] = (0, 1, 2, 3, 4),
    iterations: int = 300,
    sparsity: float = 0.8,
    p: float = 0.5,
    regimes: Sequence[str] = ("dense", "pruned"),
    hidden: Sequence[int] = (300, 100),
    batch_size: int = 32,
    lr: float = 1e-3,
    eval_every: int = 25,
    device: torch.device | str | None = None,
) -> list[RegimeRun]:
    """Train each regime on a small training set for each seed; return one :class:`RegimeRun` each.

    For seed ``s`` the dataset split (``load_dataset(dataset, n_train=n_train, seed=s)``), the initial
    weights and the minibatch order are all drawn from ``s``; every regime of that seed sees the
    same data and starts from the same weights.

    Args:
        dataset: dataset name (see :func:`lecturelib.data.load_dataset`).
        n_train: size of the (stratified) training subset — small, so that the dense net overfits.
        seeds: seeds to repeat the experiment with.
        iterations: half of each regime's step budget (see the module docstring).
        sparsity: fraction of each layer's weights pruned in ``"pruned"``.
        p: dropout probability in ``"dropout"``.
        regimes: which of ``"dense"``, ``"pruned"``, ``"dropout"``, ``"early_stopped"`` to run.
        hidden: hidden widths of the MLP.
        batch_size, lr: Adam settings.
        eval_every: steps between two points of the learning curves.
        device: where to train (default :func:`lecturelib.training.default_device`); the models
            come back on the CPU either way.

    Returns:
        Runs ordered by seed, then by ``regimes``. The ``"early_stopped"`` run's history is the
        first ``iterations`` steps of the dense run.
    """
    for regime in regimes:
        check_choice("regime", regime, REGIMES)
    iterations = check_positive_int("iterations", iterations)
    sparsity = check_fraction("sparsity", sparsity)
    fit = functools.partial(training.train, batch_size=batch_size, lr=lr, eval_every=eval_every, device=device)   # every regime's settings
    seeds = list(seeds)
    datasets = {seed: data_module.load_dataset(dataset, n_train=n_train, seed=seed) for seed in seeds}

    def from_one_dense_run(seed: int) -> dict[str, RegimeRun]:   # the regimes that continue seed's dense network
        ds, by_regime = datasets[seed], {}
        if {"dense", "pruned", "early_stopped"} & set(regimes):
            model = models.mlp(ds.input_shape, ds.num_classes, hidden, seed=seed)
            first = fit(model, ds, iterations=iterations, data_seed=seed)
            if "early_stopped" in regimes:
                by_regime["early_stopped"] = _run("early_stopped", seed, training.clone_model(model), ds, first, 0.0)
            if "pruned" in regimes:
                pruned = training.clone_model(model)
                mask = pruning.layerwise_magnitude_mask(pruned, sparsity)
                second = fit(pruned, ds, iterations=iterations, mask=mask, data_seed=seed + 1000)
                by_regime["pruned"] = _run("pruned", seed, pruned, ds, concat_histories(first, second),
                                           pruning.sparsity(mask))
            if "dense" in regimes:
                second = fit(model, ds, iterations=iterations, data_seed=seed + 1000)
                by_regime["dense"] = _run("dense", seed, model, ds, concat_histories(first, second), 0.0)
        return by_regime

    runs: list[RegimeRun] = []
    for seed, by_regime in zip(seeds, machine.side_by_side(from_one_dense_run, seeds, device=device)):   # seeds on separate cores
        if "dropout" in regimes:   # one seed at a time: nn.Dropout draws from the global generator
            ds = datasets[seed]
            model = dropout.mlp_dropout(ds.input_shape, ds.num_classes, hidden, p=p, seed=seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                history = fit(model, ds, iterations=2 * iterations, data_seed=seed)
            by_regime["dropout"] = _run("dropout", seed, model, ds, history, 0.0)
        runs += [by_regime[r] for r in regimes]
    return runs


def summarize(runs: Sequence[RegimeRun], metric: str = "test_acc") -> dict[str, dict[str, float]]:
    """Return ``{regime: {"mean", "std", "min", "max", "n"}}`` of ``metric`` over seeds.

    ``metric`` is one of ``"train_acc"``, ``"train_loss"``, ``"test_acc"``, ``"test_loss"``.
    """
    check_choice("metric", metric, ("train_acc", "train_loss", "test_acc", "test_loss"))
    out: dict[str, dict[str, float]] = {}
    for regime in dict.fromkeys(run.regime for run in runs):
        values = np.array([getattr(run, metric) for run in runs if run.regime == regime], dtype=float)
        out[regime] = {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
                       "max": float(values.max()), "n": int(len(values))}
    return out


def paired_differences(runs: Sequence[RegimeRun], regime: str, baseline: str, metric: str = "test_acc") -> np.ndarray:
    """Return ``metric`` of ``regime`` minus that of ``baseline``, seed by seed: shape ``(seeds,)``, in seed order.

    Both regimes of one seed share the data split and the initial weights, so the paired
    difference removes most of the seed-to-seed spread; a claim that one regime beats another
    needs these differences to share a sign (and a margin), not only the means to differ.

    Raises:
        ValueError: an unknown ``metric``, or the two regimes were not run for the same seeds.
    """
    check_choice("metric", metric, ("train_acc", "train_loss", "test_acc", "test_loss"))
    values = {r: {run.seed: getattr(run, metric) for run in runs if run.regime == r} for r in (regime, baseline)}
    if not values[regime] or sorted(values[regime]) != sorted(values[baseline]):
        raise ValueError(f"regimes {regime!r} and {baseline!r} need runs for the same seeds, got seeds "
                         f"{sorted(values[regime])} and {sorted(values[baseline])}")
    return np.array([values[regime][s] - values[baseline][s] for s in sorted(values[regime])], dtype=float)


def curves(runs: Sequence[RegimeRun], regime: str, metric: str = "test_acc") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(iterations, values)`` of one regime's learning curves over seeds: shapes ``(T,)`` and ``(seeds, T)``."""
    chosen = [run for run in runs if run.regime == regime]
    if not chosen:
        raise ValueError(f"no runs of regime {regime!r}; regimes present: {sorted({r.regime for r in runs})}")
    iterations = np.asarray(chosen[0].history.iteration)
    return iterations, np.array([getattr(run.history, metric) for run in chosen], dtype=float)
