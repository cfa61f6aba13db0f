"""The pruning loop — score, prune the least important weights, train, repeat — written once, with
its sparsity schedules and the ratio curves built on it (chapters 5, 6 and 8; chapters 9 and 10 add a rewind).

:func:`prune_finetune_loop` is the loop of the lecture: given a list of target sparsities it prunes
the model to each in turn (pruned weights stay pruned), fine-tunes it with the mask held fixed and
records one :class:`LevelRecord` per level. One-shot pruning is the loop with one level; iterative
pruning is the loop with the levels of :func:`sparsity_schedule`; a ratio curve (:func:`ratio_curve`)
is the loop over increasing pruning ratios, with or without retraining. Iterative magnitude pruning
(:func:`lecturelib.lottery.iterative_magnitude_pruning`) is the same loop with one change: before
each level's training the surviving weights are rewound to a :class:`Snapshot` ``W_k`` of the dense
run. :func:`prune_finetune_many` runs the loop for several networks at once (one per seed), training
them together (:func:`lecturelib.training.train_many`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._checks import as_scalar, check_choice, check_fraction, check_one_each, check_positive_int, checked_train_kwargs
from .data import Dataset
from .pruning import Mask, apply_mask, check_mask, global_magnitude_mask, layerwise_magnitude_mask, prunable_names, sparsity
from .training import History, evaluate, train, train_many

SCOPES = ("layerwise", "global")
Sparsity = float | dict[str, float]   # one sparsity for every layer, or {weight name: sparsity}


# --------------------------------------------------------------------------------------------
# Schedules: the sparsity of each level and the steps of each round.
# --------------------------------------------------------------------------------------------

def iterative_sparsities(rate: float, rounds: int) -> list[float]:
    """Return the sparsity after each of ``rounds`` rounds that each prune ``rate`` of the *remaining* weights.

    Round ``r`` (1-based) reaches ``1 - (1 - rate) ** r``.

    Examples:
        >>> [round(s, 3) for s in iterative_sparsities(0.2, 3)]
        [0.2, 0.36, 0.488]
    """
    rate = check_fraction("rate", rate)
    rounds = check_positive_int("rounds", rounds)
    return [1 - (1 - rate) ** r for r in range(1, rounds + 1)]


def sparsity_schedule(final_sparsity: float, rounds: int) -> list[float]:
    """Return the sparsity after each of ``rounds`` rounds that prune the same fraction of the remaining weights and end exactly at ``final_sparsity``.

    The per-round rate is ``p = 1 - (1 - final_sparsity) ** (1 / rounds)`` and the schedule is
    :func:`iterative_sparsities` ``(p, rounds)``; its last entry is set to ``final_sparsity`` itself so
    that rounding in floating point cannot miss the target.

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


def layer_sparsity_schedule(model: nn.Module, rate: float, rounds: int, output_rate: float | None = None) -> list[dict[str, float]]:
    """Return ``{weight name: sparsity}`` after each of ``rounds`` rounds that prune ``rate`` of each layer's remaining weights (``output_rate`` for the last layer).

    Layer ``l`` pruned at rate ``r_l`` per round reaches ``1 - (1 - r_l) ** r`` after round ``r``
    (:func:`iterative_sparsities`, layer by layer). Frankle & Carbin prune LeNet-300-100's output
    layer at half the rate of the hidden layers.

    Args:
        model: the network; its layers are :func:`~lecturelib.pruning.prunable_names`.
        rate: fraction of the *remaining* weights of a layer pruned in each round, in [0, 1).
        rounds: number of rounds, >= 1.
        output_rate: the rate of the output (last) layer; default ``rate``.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> [{name: round(s, 3) for name, s in level.items()} for level in layer_sparsity_schedule(net, 0.2, 2, 0.1)]
        [{'0.weight': 0.2, '2.weight': 0.1}, {'0.weight': 0.36, '2.weight': 0.19}]
    """
    names = prunable_names(model)
    rates = {name: check_fraction("rate", rate) for name in names}
    if output_rate is not None:
        rates[names[-1]] = check_fraction("output_rate", output_rate)
    per_layer = {name: iterative_sparsities(r, rounds) for name, r in rates.items()}
    return [{name: per_layer[name][i] for name in names} for i in range(check_positive_int("rounds", rounds))]


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


# --------------------------------------------------------------------------------------------
# The loop and its record.
# --------------------------------------------------------------------------------------------

@dataclass
class Snapshot:
    """The weights ``W_k`` of a run after its first ``k`` iterations: IMP rewinds to them (chapter 9's
    reset is ``k = 0``) and the instability analysis trains two copies from them (chapter 10).

    ``k`` and ``state`` travel together, so a state cannot be paired with another run's ``k``.
    """

    k: int
    state: dict[str, torch.Tensor] = field(repr=False)


@dataclass
class LevelRecord:
    """One level of the pruning loop.

    ``level`` 0 is the model before the loop prunes it (for IMP: the trained dense network).
    ``target_sparsity`` is what the schedule asked for (one fraction, or one per layer) and
    ``sparsity`` the fraction of zeros the mask really has. ``pruned_*`` are measured right after
    pruning (before training), ``test_*`` after training; losses are mean cross-entropy, accuracies
    fractions in [0, 1], on the test split. ``iterations`` is the number of training steps of this
    level and ``total_iterations`` the running total since level 0. ``mask`` is the level's mask
    (``{}`` at level 0 when the loop started without one) and ``history`` the level's training
    (``None`` without training).
    """

    level: int
    target_sparsity: Sparsity
    sparsity: float
    pruned_loss: float
    pruned_acc: float
    test_loss: float
    test_acc: float
    iterations: int
    total_iterations: int
    mask: Mask = field(repr=False)
    history: History | None = field(default=None, repr=False)

    @property
    def weights_left(self) -> float:
        """Fraction of the prunable weights that are kept, ``1 - sparsity``."""
        return 1.0 - self.sparsity

    def to_dict(self) -> dict:
        """The level as plain JSON-ready values (the mask left out): the early-stopping iteration
        (best validation accuracy, or test accuracy without a validation split) and the accuracies
        there and at the end, the weights left (overall and per layer) and the training curves."""
        if self.history is None:
            raise ValueError(f"level {self.level} was not trained: it has no history to write")
        best = self.history.best_index
        return {
            "level": self.level, "weights_left": self.weights_left,
            "layer_weights_left": {name: float(keep.float().mean()) for name, keep in self.mask.items()},
            "final_test_acc": self.test_acc, "best_iteration": self.history.best_iteration,
            "best_val_acc": (self.history.val_acc or self.history.test_acc)[best],
            "best_test_acc": self.history.test_acc[best], "history": self.history.to_dict(),
        }


def train_together(models: Sequence[nn.Module], data: Dataset, *, masks: Sequence[Mask | None], data_seeds: Sequence[int],
                   **train_kwargs) -> list[History]:
    """Train ``models`` with one mask and data seed each: together with :func:`~lecturelib.training.train_many` where that
    is faster (several networks without 2-D convolutions), otherwise one by one with :func:`~lecturelib.training.train`.

    Either way each network ends where ``train`` takes it (to float rounding). On a CPU, stacked 2-D
    convolutions (grouped) are not faster than one network after another (the performance page).
    """
    if len(models) > 1 and not any(isinstance(m, (nn.Conv2d, nn.Conv3d)) for m in models[0].modules()):
        return train_many(models, data, masks=masks, data_seeds=data_seeds, **train_kwargs)
    return [train(model, data, mask=mask, data_seed=seed, **train_kwargs) for model, mask, seed in zip(models, masks, data_seeds)]


def prune_finetune_loop(
    model: nn.Module,
    data: Dataset,
    sparsities: Sequence[Sparsity],
    *,
    finetune_iterations: int | Sequence[int],
    scope: str = "layerwise",
    mask: Mask | None = None,
    names: Sequence[str] | None = None,
    data_seed: int = 0,
    rewind: Snapshot | None = None,
    train_kwargs: Mapping[str, object] | None = None,
) -> list[LevelRecord]:
    """Run the pruning loop on ``model`` in place and return one record per level (level 0 first).

    For each target ``s`` in ``sparsities`` (the levels 1, 2, …):

    1. score every weight by its magnitude ``|w|`` (the importance);
    2. prune the least important ones so that a fraction ``s`` is zero (``M ← M ⊙ keep``,
       ``W ← W ⊙ M``); weights pruned at an earlier level stay pruned;
    3. with ``rewind``: put the surviving weights back to their values ``W_k`` (``W ← M ⊙ W_k``);
    4. fine-tune for ``finetune_iterations`` steps with the mask held fixed (masked gradients,
       weights re-zeroed after every optimiser step, see :func:`lecturelib.training.train`);
    5. go on to the next level, or stop after the last.

    Args:
        model: a (usually trained) network, modified in place; at the end it holds the last
            level's weights, with its pruned weights at exactly 0.
        data: the dataset to fine-tune on and evaluate (test split).
        sparsities: non-decreasing target sparsities in [0, 1), one per level — each one fraction
            or ``{weight name: fraction}`` per layer.
        finetune_iterations: optimiser steps per level — one int for every level or one per
            level; 0 means no fine-tuning (pruning only).
        scope: ``"layerwise"`` (each layer pruned to ``s``) or ``"global"`` (``s`` over all
            layers together, so layers with small weights lose more).
        mask: a starting mask (default: all ones, nothing pruned) over the weights to prune.
        names: the parameters to prune (default: the weights of every Linear/Conv layer, or
            the keys of ``mask``).
        data_seed: seed of the minibatch order of level 1; level ``l`` uses ``data_seed + l``.
        rewind: a :class:`Snapshot` ``W_k`` of the model's run to rewind the survivors to before
            each level's training (IMP); the training then continues that run from iteration ``k``
            (``start_iteration=k``: its learning-rate schedule goes on from ``k``).
        train_kwargs: further arguments of :func:`lecturelib.training.train` used for fine-tuning
            (``lr``, ``optimizer``, ``momentum``, ``weight_decay``, ``l1``, ``batch_size``,
            ``eval_every`` (default: once, at the end)…).

    Returns:
        ``len(sparsities) + 1`` :class:`LevelRecord` objects; each keeps its mask.

    Raises:
        ValueError: sparsities outside [0, 1) or decreasing, a negative or mismatched
            ``finetune_iterations``, an unknown ``scope``, or keys of ``train_kwargs`` the loop
            sets itself.
    """
    return prune_finetune_many([model], data, sparsities, finetune_iterations=finetune_iterations, scope=scope,
                               masks=None if mask is None else [mask], names=names, data_seeds=[data_seed],
                               rewinds=None if rewind is None else [rewind], train_kwargs=train_kwargs)[0]


def prune_finetune_many(
    models: Sequence[nn.Module],
    data: Dataset,
    sparsities: Sequence[Sparsity],
    *,
    finetune_iterations: int | Sequence[int],
    scope: str = "layerwise",
    masks: Sequence[Mask] | None = None,
    names: Sequence[str] | None = None,
    data_seeds: Sequence[int] | None = None,
    rewinds: Sequence[Snapshot] | None = None,
    new_order_per_level: bool = True,
    train_kwargs: Mapping[str, object] | None = None,
) -> list[list[LevelRecord]]:
    """Run :func:`prune_finetune_loop` for several networks of one architecture at once and return each one's records.

    Every level prunes each network by its own weights, then trains them all together
    (:func:`lecturelib.training.train_many`; each as :func:`~lecturelib.training.train` would, to
    float rounding). ``masks``, ``data_seeds`` and ``rewinds`` hold one entry per network (default:
    no mask, data seed 0, no rewind); the rewinds must share one ``k``. Level ``l`` of a network with
    data seed ``s`` draws its minibatches from ``s + l``, or from ``s`` at every level with
    ``new_order_per_level=False`` (IMP: every level sees the dense run's order). Other arguments as
    :func:`prune_finetune_loop`.
    """
    models = list(models)
    check_choice("scope", scope, SCOPES)
    prune_to = layerwise_magnitude_mask if scope == "layerwise" else global_magnitude_mask
    levels = _checked_sparsities(sparsities)
    budgets = _budgets(finetune_iterations, len(levels))
    data_seeds = [0] * len(models) if data_seeds is None else [check_positive_int("data_seeds", s, allow_zero=True) for s in data_seeds]
    masks = [None] * len(models) if masks is None else list(masks)
    check_one_each("model", len(models), masks=masks, data_seeds=data_seeds, rewinds=rewinds or models)
    start = 0 if not rewinds else rewinds[0].k
    if rewinds and any(r.k != start for r in rewinds):
        raise ValueError(f"rewinds must share one k (the models train together), got {[r.k for r in rewinds]}")
    train_kwargs = checked_train_kwargs(train_kwargs, ("mask", "masks", "iterations", "epochs", "data_seed", "data_seeds", "start_iteration"),
                                        "the pruning loop")
    for i, (model, mask) in enumerate(zip(models, masks)):
        if mask is not None:
            check_mask(model, mask)
            masks[i] = {name: keep.bool().cpu().clone() for name, keep in mask.items()}
            apply_mask(model, masks[i])
    names = list(masks[0]) if names is None and masks[0] is not None else names

    records = []
    for model, mask in zip(models, masks):
        loss, acc = evaluate(model, data.x_test, data.y_test)
        now = sparsity(mask or {})
        records.append([LevelRecord(0, now, now, loss, acc, loss, acc, 0, 0, _copy_mask(mask or {}))])
    total = 0
    for level, (target, steps) in enumerate(zip(levels, budgets), start=1):
        pruned = []
        for i, model in enumerate(models):
            masks[i] = prune_to(model, target, current_mask=masks[i], names=names)
            apply_mask(model, masks[i])
            pruned.append(evaluate(model, data.x_test, data.y_test))
            if rewinds:
                model.load_state_dict(rewinds[i].state)   # W ← W_k; training zeroes the pruned weights: M ⊙ W_k
        histories = [None] * len(models)
        if steps:
            histories = train_together(models, data, masks=masks, data_seeds=[seed + level * new_order_per_level for seed in data_seeds],
                                       iterations=steps, start_iteration=start, **{"eval_every": steps, **train_kwargs})
        total += steps
        for i, history in enumerate(histories):
            loss, acc = (history.test_loss[-1], history.test_acc[-1]) if history else pruned[i]
            records[i].append(LevelRecord(level, target, sparsity(masks[i]), *pruned[i], loss, acc, steps, total,
                                          _copy_mask(masks[i]), history))
    return records


def _checked_sparsities(sparsities: Sequence[Sparsity]) -> list[Sparsity]:
    """The levels' sparsities, each a fraction in [0, 1) (one per layer for a dict), never decreasing from one level to the next."""
    levels = []
    for i, s in enumerate(sparsities):
        s = as_scalar(s)
        levels.append({name: check_fraction(f"sparsities[{i}][{name!r}]", v) for name, v in s.items()} if isinstance(s, Mapping)
                      else check_fraction(f"sparsities[{i}]", s))
    for a, b in zip(levels[:-1], levels[1:]):
        if isinstance(a, Mapping) != isinstance(b, Mapping) or (
                any(b.get(name, 0.0) < value for name, value in a.items()) if isinstance(a, Mapping) else b < a):
            raise ValueError(f"sparsities must be non-decreasing (pruned weights are never revived), got {list(sparsities)!r}")
    return levels


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
