"""The pruning loop — score, prune the least important weights, fine-tune, repeat — written once,
with the sparsity schedules and ratio curves built on it.

:func:`prune_finetune_loop` is the loop of the lecture: given a list of target sparsities it prunes
the model to each in turn (pruned weights stay pruned), fine-tunes it with the mask held fixed and
records one :class:`LevelRecord` per level. One-shot pruning is the loop with one level; iterative
pruning is the loop with the levels of :func:`sparsity_schedule`; a ratio curve
(:func:`ratio_curve`) is the loop over increasing pruning ratios, with or without retraining.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._checks import as_scalar, check_choice, check_fraction, check_positive_int
from .data import Dataset
from .pruning import Mask, apply_mask, check_mask, global_magnitude_mask, iterative_sparsities, layerwise_magnitude_mask, sparsity
from .training import evaluate, train

SCOPES = ("layerwise", "global")


@dataclass
class LevelRecord:
    """One level of the pruning loop.

    ``level`` 0 is the model as it was given (nothing pruned by the loop, not fine-tuned).
    ``target_sparsity`` is what the schedule asked for and ``sparsity`` the fraction of zeros the
    mask really has. ``pruned_*`` are measured right after pruning (before fine-tuning), the other
    metrics after fine-tuning; losses are mean cross-entropy, accuracies fractions in [0, 1], on the
    test split. ``iterations`` is the number of fine-tuning steps of this level and
    ``total_iterations`` the running total since level 0. ``mask`` is the level's mask (``{}`` at
    level 0 when the loop started without one).
    """

    level: int
    target_sparsity: float
    sparsity: float
    pruned_loss: float
    pruned_acc: float
    test_loss: float
    test_acc: float
    iterations: int
    total_iterations: int
    mask: Mask = field(repr=False)


def sparsity_schedule(final_sparsity: float, rounds: int) -> list[float]:
    """Return the sparsity after each of ``rounds`` rounds that prune the same fraction of the remaining weights and end exactly at ``final_sparsity``.

    The per-round rate is ``p = 1 - (1 - final_sparsity) ** (1 / rounds)`` and the schedule is
    :func:`lecturelib.pruning.iterative_sparsities` ``(p, rounds)``; its last entry is set to
    ``final_sparsity`` itself so that rounding in floating point cannot miss the target.

    Args:
        final_sparsity: the fraction of weights pruned at the end, in [0, 1).
        rounds: number of pruning rounds, >= 1 (1 is one-shot pruning).

    Returns:
        ``rounds`` increasing sparsities; the last equals ``final_sparsity``.

    Raises:
        ValueError / TypeError: ``final_sparsity`` outside [0, 1) or ``rounds`` not an int >= 1.

    Examples:
        >>> [round(s, 3) for s in sparsity_schedule(0.875, 3)]
        [0.5, 0.75, 0.875]
    """
    final_sparsity = check_fraction("final_sparsity", final_sparsity)
    rounds = check_positive_int("rounds", rounds)
    rate = 1.0 - (1.0 - final_sparsity) ** (1.0 / rounds)
    schedule = iterative_sparsities(min(rate, final_sparsity), rounds)
    schedule[-1] = final_sparsity
    return schedule


def prune_to(
    model: nn.Module,
    target_sparsity: float,
    *,
    scope: str = "layerwise",
    current_mask: Mask | None = None,
    names: Sequence[str] | None = None,
) -> Mask:
    """Return the magnitude mask that brings ``model`` to ``target_sparsity`` (``"layerwise"``: every layer; ``"global"``: all layers together), keeping ``current_mask``'s zeros."""
    check_choice("scope", scope, SCOPES)
    make = layerwise_magnitude_mask if scope == "layerwise" else global_magnitude_mask
    return make(model, target_sparsity, names=names, current_mask=current_mask)


def prune_finetune_loop(
    model: nn.Module,
    data: Dataset,
    sparsities: Sequence[float],
    *,
    finetune_iterations: int | Sequence[int],
    scope: str = "layerwise",
    mask: Mask | None = None,
    names: Sequence[str] | None = None,
    data_seed: int = 0,
    train_kwargs: Mapping[str, object] | None = None,
) -> list[LevelRecord]:
    """Run the pruning loop on ``model`` in place and return one record per level (level 0 first).

    For each target ``s`` in ``sparsities`` (the levels 1, 2, …):

    1. score every weight by its magnitude ``|w|`` (the importance);
    2. prune the least important ones so that a fraction ``s`` is zero (``M ← M ⊙ keep``,
       ``W ← W ⊙ M``); weights pruned at an earlier level stay pruned;
    3. fine-tune for ``finetune_iterations`` steps with the mask held fixed (masked gradients,
       weights re-zeroed after every optimiser step, see :func:`lecturelib.training.train`);
    4. go on to the next level, or stop after the last.

    Args:
        model: a (usually trained) network, modified in place; at the end it holds the last
            level's weights, with its pruned weights at exactly 0.
        data: the dataset to fine-tune on and evaluate (test split).
        sparsities: non-decreasing target sparsities in [0, 1), one per level.
        finetune_iterations: optimiser steps per level — one int for every level or one per
            level; 0 means no fine-tuning (pruning only).
        scope: ``"layerwise"`` (each layer pruned to ``s``) or ``"global"`` (``s`` over all
            layers together, so layers with small weights lose more).
        mask: a starting mask (default: all ones, nothing pruned) over the weights to prune.
        names: the parameters to prune (default: the weights of every Linear/Conv2d layer, or
            the keys of ``mask``).
        data_seed: seed of the minibatch order of level 1; level ``l`` uses ``data_seed + l``.
        train_kwargs: further arguments of :func:`lecturelib.training.train` used for fine-tuning
            (``lr``, ``optimizer``, ``momentum``, ``weight_decay``, ``l1``, ``batch_size``…).

    Returns:
        ``len(sparsities) + 1`` :class:`LevelRecord` objects; each keeps its mask.

    Raises:
        ValueError: sparsities outside [0, 1) or decreasing, a negative or mismatched
            ``finetune_iterations``, an unknown ``scope``, or keys of ``train_kwargs`` the loop
            sets itself.
    """
    check_choice("scope", scope, SCOPES)
    sparsities = [check_fraction(f"sparsities[{i}]", s) for i, s in enumerate(sparsities)]
    if any(b < a for a, b in zip(sparsities[:-1], sparsities[1:])):
        raise ValueError(f"sparsities must be non-decreasing (pruned weights are never revived), got {sparsities!r}")
    budgets = _budgets(finetune_iterations, len(sparsities))
    train_kwargs = dict(train_kwargs or {})
    reserved = {"mask", "iterations", "epochs", "data_seed", "eval_every"} & set(train_kwargs)
    if reserved:
        raise ValueError(f"train_kwargs may not set {sorted(reserved)}: prune_finetune_loop sets them itself")
    if mask is not None:
        check_mask(model, mask)
        mask = {name: keep.bool().cpu().clone() for name, keep in mask.items()}
        apply_mask(model, mask)
        names = list(mask) if names is None else names

    loss, acc = evaluate(model, data.x_test, data.y_test)
    start = sparsity(mask) if mask is not None else 0.0
    records = [LevelRecord(0, start, start, loss, acc, loss, acc, 0, 0, _copy_mask(mask) if mask is not None else {})]
    total = 0
    for level, (target, steps) in enumerate(zip(sparsities, budgets), start=1):
        mask = prune_to(model, target, scope=scope, current_mask=mask, names=names)
        apply_mask(model, mask)
        pruned_loss, pruned_acc = evaluate(model, data.x_test, data.y_test)
        if steps:
            train(model, data, iterations=steps, mask=mask, data_seed=data_seed + level, eval_every=steps, **train_kwargs)
            loss, acc = evaluate(model, data.x_test, data.y_test)
        else:
            loss, acc = pruned_loss, pruned_acc
        total += steps
        records.append(LevelRecord(level, target, sparsity(mask), pruned_loss, pruned_acc, loss, acc, steps, total, _copy_mask(mask)))
    return records


def _budgets(finetune_iterations: int | Sequence[int], levels: int) -> list[int]:
    finetune_iterations = as_scalar(finetune_iterations)
    if isinstance(finetune_iterations, int) and not isinstance(finetune_iterations, bool):
        budgets = [finetune_iterations] * levels
    elif isinstance(finetune_iterations, Sequence):
        budgets = list(finetune_iterations)
        if len(budgets) != levels:
            raise ValueError(f"finetune_iterations has {len(budgets)} entries but there are {levels} sparsities")
    else:
        raise TypeError(f"finetune_iterations must be an int or a list of ints, got {finetune_iterations!r}")
    return [check_positive_int(f"finetune_iterations[{i}]", steps, allow_zero=True) for i, steps in enumerate(budgets)]


def _copy_mask(mask: Mask) -> Mask:
    return {name: keep.clone() for name, keep in mask.items()}


def split_budget(total_iterations: int, rounds: int) -> list[int]:
    """Return ``rounds`` step counts that add up to ``total_iterations``, as equal as possible (earlier rounds get the remainder).

    Examples:
        >>> split_budget(10, 3)
        [4, 3, 3]
    """
    total_iterations = check_positive_int("total_iterations", total_iterations, allow_zero=True)
    rounds = check_positive_int("rounds", rounds)
    base, extra = divmod(total_iterations, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


def prune_to_sparsity(
    model: nn.Module,
    data: Dataset,
    final_sparsity: float,
    *,
    rounds: int,
    finetune_iterations: int,
    **loop_kwargs,
) -> LevelRecord:
    """Prune ``model`` (in place) to ``final_sparsity`` in ``rounds`` rounds sharing ``finetune_iterations`` fine-tuning steps; return the last record.

    ``rounds=1`` is one-shot pruning (prune once, fine-tune for the whole budget); ``rounds > 1`` is
    iterative pruning along :func:`sparsity_schedule` with the same total budget split by
    :func:`split_budget`, so the two are compared at equal cost. ``loop_kwargs`` go to
    :func:`prune_finetune_loop` (``scope``, ``data_seed``, ``train_kwargs``…).
    """
    schedule = sparsity_schedule(final_sparsity, rounds)
    records = prune_finetune_loop(model, data, schedule, finetune_iterations=split_budget(finetune_iterations, rounds), **loop_kwargs)
    return records[-1]


@dataclass
class RatioCurve:
    """Test accuracy (fraction) and loss of one trained model pruned to each sparsity: without retraining, retrained once, retrained iteratively.

    The three curves of Han et al. 2015, Fig. 5. Arrays have shape ``(len(sparsities),)``;
    ``dense_acc`` / ``dense_loss`` are the unpruned model's. ``pruned_*``: the trained model pruned
    to each sparsity, no retraining. ``oneshot_*``: the trained model pruned to each sparsity in one step,
    then retrained ("prune and retrain"). ``iterative_*``: the model pruned along the increasing
    ``sparsities`` with retraining at every one ("iterative prune and retrain"). At sparsity ``i`` both
    retrained curves have spent the same number of retraining steps, ``budget[i]``.
    """

    sparsities: np.ndarray
    dense_acc: float
    dense_loss: float
    pruned_acc: np.ndarray
    pruned_loss: np.ndarray
    oneshot_acc: np.ndarray
    oneshot_loss: np.ndarray
    iterative_acc: np.ndarray
    iterative_loss: np.ndarray
    budget: np.ndarray


def ratio_curve(
    model: nn.Module,
    data: Dataset,
    sparsities: Sequence[float],
    *,
    retrain_iterations: int,
    scope: str = "layerwise",
    data_seed: int = 0,
    train_kwargs: Mapping[str, object] | None = None,
) -> RatioCurve:
    """Return accuracy and loss of the trained ``model`` against the fraction of weights pruned: without retraining, retrained once, retrained iteratively.

    ``model`` is not modified (copies are pruned). Without retraining, each sparsity prunes the
    trained weights by magnitude. Iteratively, the model is pruned along the increasing ``sparsities``
    and retrained for ``retrain_iterations`` steps at each, so sparsity ``i`` has cost
    ``(i + 1) * retrain_iterations`` steps. One-shot, a fresh copy of the trained model is pruned
    straight to sparsity ``i`` and retrained for that same number of steps, so the two retrained curves
    differ only in the schedule. Retraining uses ``train_kwargs`` (e.g. the training's regulariser).

    Args:
        model: the trained network.
        data: dataset to retrain on and evaluate (test split).
        sparsities: increasing fractions of weights pruned, in [0, 1).
        retrain_iterations: retraining steps at each sparsity, >= 1.
        scope, data_seed, train_kwargs: as in :func:`prune_finetune_loop`.

    Returns:
        A :class:`RatioCurve`.
    """
    import copy

    retrain_iterations = check_positive_int("retrain_iterations", retrain_iterations)
    plain = prune_finetune_loop(copy.deepcopy(model), data, sparsities, finetune_iterations=0, scope=scope)
    iterative = prune_finetune_loop(
        copy.deepcopy(model), data, sparsities, finetune_iterations=retrain_iterations, scope=scope,
        data_seed=data_seed, train_kwargs=train_kwargs,
    )
    oneshot = [
        prune_finetune_loop(copy.deepcopy(model), data, [sparsity], finetune_iterations=level.total_iterations, scope=scope,
                            data_seed=data_seed, train_kwargs=train_kwargs)[-1]
        for sparsity, level in zip(sparsities, iterative[1:])
    ]
    return RatioCurve(
        sparsities=np.asarray(sparsities, dtype=float),
        dense_acc=plain[0].test_acc,
        dense_loss=plain[0].test_loss,
        pruned_acc=np.array([r.test_acc for r in plain[1:]]),
        pruned_loss=np.array([r.test_loss for r in plain[1:]]),
        oneshot_acc=np.array([r.test_acc for r in oneshot]),
        oneshot_loss=np.array([r.test_loss for r in oneshot]),
        iterative_acc=np.array([r.test_acc for r in iterative[1:]]),
        iterative_loss=np.array([r.test_loss for r in iterative[1:]]),
        budget=np.array([r.total_iterations for r in iterative[1:]]),
    )


def largest_ratio_within(sparsities: Sequence[float], accuracies: Sequence[float], reference: float, tolerance: float) -> float:
    """Return the largest sparsity up to which every accuracy stays within ``tolerance`` of ``reference`` (0.0 if the first already falls below).

    Accuracies and ``tolerance`` are in the same unit (fractions or percentage points); ``sparsities``
    must be increasing. "Up to which" means the accuracy at that sparsity *and at every smaller one*
    is at least ``reference - tolerance``.

    Examples:
        >>> largest_ratio_within([0.5, 0.8, 0.9, 0.95], [0.97, 0.965, 0.90, 0.96], 0.97, 0.01)
        0.8
    """
    sparsities, accuracies = list(sparsities), list(accuracies)
    if len(sparsities) != len(accuracies):
        raise ValueError(f"sparsities and accuracies must have the same length, got {len(sparsities)} and {len(accuracies)}")
    best = 0.0
    for sparsity, acc in zip(sparsities, accuracies):
        if acc < reference - tolerance:
            break
        best = float(sparsity)
    return best
