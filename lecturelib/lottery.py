"""Lottery tickets (chapter 9, notebooks/09_lottery_ticket.ipynb; rewinding: chapter 10): iterative
magnitude pruning (IMP) with reset to initialisation or rewinding to iteration k, and the random
re-initialisation control (Frankle & Carbin 2019; Frankle et al. 2020).

IMP is the pruning loop of chapter 8 (:func:`lecturelib.iterative.prune_finetune_loop`) with one
change — a rewind to the snapshot ``W_k`` of the dense run before each level's training::

    W_0 ← initial weights;  M ← ones
    train(W_0)  (keep W_k)                    # level 0: the dense network
    repeat for each round:
        M ← prune the smallest surviving |W| of each layer (rate r_l of what is left)
        W ← M ⊙ W_k                           # k = 0 is "reset to initialisation"
        train(W, mask M) from k to T          # one record per level

Per-layer rates follow Frankle & Carbin: e.g. 20 % of the hidden layers' remaining weights per round
but only 10 % of the output layer's (:func:`lecturelib.iterative.layer_sparsity_schedule`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from torch import nn

from ._checks import check_one_each, check_positive_int, checked_train_kwargs
from .data import Dataset
from .iterative import LevelRecord, Snapshot, layer_sparsity_schedule, prune_finetune_many, train_together
from .pruning import Mask, apply_mask, ones_mask, sparsity
from .training import evaluate


@dataclass
class IMPRun:
    """One network's IMP: its levels (level 0 = the dense training) and the snapshot ``W_k`` its levels were rewound to."""

    levels: list[LevelRecord]
    rewind: Snapshot


def iterative_magnitude_pruning(
    models: Sequence[nn.Module],
    data: Dataset,
    *,
    rounds: int,
    rate: float = 0.2,
    output_rate: float | None = None,
    k: int = 0,
    data_seeds: Sequence[int] | None = None,
    train_kwargs: Mapping | None = None,
) -> list[IMPRun]:
    """Run IMP on each of ``models`` (one per seed, trained together) and return one :class:`IMPRun` per model.

    Train → prune ``rate`` of each layer's surviving weights by magnitude → rewind the survivors to
    their values ``W_k`` at iteration ``k`` of the first (dense) training → train again …

    As in Frankle et al. (2020), a level rewound to ``W_k`` trains the remaining ``T - k`` iterations
    of the ``T``-iteration run (``start_iteration=k``: the learning-rate schedule continues from
    ``k``), so every level ends at iteration ``T`` of the same schedule; its history's iterations
    count from ``k``. Reset (``k = 0``) trains every level for all ``T``. The levels of all models
    train together (:func:`lecturelib.iterative.prune_finetune_many`): each ends where it would alone.

    Args:
        models: networks of one architecture at their initialisations ``W_0``; each is trained in
            place and ends at its last level's trained weights.
        data: the dataset (give it a validation split for a true early-stopping iteration).
        rounds: number of pruning rounds; ``rounds + 1`` networks are trained per model.
        rate: fraction of the remaining weights of each layer pruned per round.
        output_rate: the (lower) rate of the output layer; default ``rate``.
        k: the rewind iteration; ``0`` resets to the initialisation (the original lottery ticket),
            ``k > 0`` rewinds to ``W_k`` (Frankle et al. 2020). Must be below the training length.
        data_seeds: one minibatch-order seed per model (default 0 for all), the same at every level.
        train_kwargs: arguments of :func:`~lecturelib.training.train` (``iterations``, ``lr``,
            ``batch_size``, ``eval_every``…), the same for every level.

    Raises:
        ValueError: ``rounds`` < 1, a rate outside [0, 1), ``k`` < 0 or beyond the training, or
            ``train_kwargs`` setting what IMP sets (``mask``, ``data_seed``, ``snapshot_at``,
            ``start_iteration``, ``run_iterations``).
    """
    models = list(models)
    rounds = check_positive_int("rounds", rounds)
    k = check_positive_int("k", k, allow_zero=True)
    data_seeds = [0] * len(models) if data_seeds is None else list(data_seeds)
    train_kwargs = checked_train_kwargs(train_kwargs, ("mask", "data_seed", "snapshot_at", "start_iteration", "run_iterations"),
                                        "iterative_magnitude_pruning")
    schedule = layer_sparsity_schedule(models[0], rate, rounds, output_rate)
    if k >= train_kwargs.get("iterations", k + 1):   # known before training: say so now
        _rewind_beyond(k, train_kwargs["iterations"])

    masks = [ones_mask(model) for model in models]
    dense = train_together(models, data, masks=masks, data_seeds=data_seeds, snapshot_at=[k], **train_kwargs)   # level 0
    total = dense[0].iteration[-1]                                                                                # T
    if k >= total:
        _rewind_beyond(k, total)
    rewinds = [Snapshot(k, history.snapshots[k]) for history in dense]                                           # W_k
    rest = {key: value for key, value in train_kwargs.items() if key not in ("iterations", "epochs")}
    runs = prune_finetune_many(models, data, schedule, finetune_iterations=total - k, masks=masks, data_seeds=data_seeds,
                               rewinds=rewinds, new_order_per_level=False, train_kwargs=rest)
    for levels, history in zip(runs, dense):
        levels[0] = replace(levels[0], iterations=total, total_iterations=total, history=history)
        levels[1:] = [replace(level, total_iterations=level.total_iterations + total) for level in levels[1:]]
    return [IMPRun(levels, rewind) for levels, rewind in zip(runs, rewinds)]


def _rewind_beyond(k: int, total: int) -> None:
    raise ValueError(f"k (the rewind iteration) must be below the {total} training iterations, got {k}")


def random_reinit(make_model: Callable[[int], nn.Module], mask: Mask, seed: int) -> nn.Module:
    """Return the random re-initialisation control of a ticket: ``make_model(seed)`` (a fresh draw) with its pruned weights set to 0.

    Only the ticket's mask is kept; its initial values are not (Frankle & Carbin 2019). ``mask`` is not changed.
    """
    return apply_mask(make_model(seed), mask)


def train_random_reinits(
    make_model: Callable[[int], nn.Module],
    data: Dataset,
    masks: Sequence[Mask],
    *,
    seeds: Sequence[int],
    data_seeds: Sequence[int],
    train_kwargs: Mapping | None = None,
    levels: Sequence[int] | None = None,
) -> list[LevelRecord]:
    """Return the records of training each sub-network ``masks[i]`` from a *fresh* random initialisation, all together.

    This is Frankle & Carbin's control: the same architecture and mask as a winning ticket, but
    the surviving weights drawn anew, so only the mask (the structure) is kept from IMP. Network
    ``i`` is the sub-network ``masks[i]`` of ``make_model(seeds[i])``, trained with minibatch order
    ``data_seeds[i]``; all train in one :func:`~lecturelib.training.train_many` call, each as
    :func:`~lecturelib.training.train` would train it alone, to float rounding.

    Args:
        make_model: ``seed -> model`` building the architecture with init drawn from ``seed``.
        data: the dataset.
        masks: the tickets' masks.
        seeds / data_seeds: one initialisation seed (use ones that differ from the tickets') and one
            data-order seed per mask.
        train_kwargs: arguments of :func:`~lecturelib.training.train` (as for the tickets).
        levels: the IMP level of each mask (stored in the records); default all 0.

    Raises:
        ValueError: ``seeds``, ``data_seeds`` or ``levels`` do not hold one entry per mask, or
            ``train_kwargs`` sets ``mask``, ``masks`` or ``data_seed``.
    """
    levels = [0] * len(masks) if levels is None else list(levels)
    check_one_each("mask", len(masks), seeds=seeds, data_seeds=data_seeds, levels=levels)
    train_kwargs = checked_train_kwargs(train_kwargs, ("mask", "masks", "data_seed", "data_seeds"), "train_random_reinits")
    nets = [random_reinit(make_model, mask, seed) for seed, mask in zip(seeds, masks)]
    before = [evaluate(net, data.x_test, data.y_test) for net in nets]   # m ⊙ W_fresh, untrained
    histories = train_together(nets, data, masks=masks, data_seeds=data_seeds, **train_kwargs)
    return [LevelRecord(level, sparsity(mask), sparsity(mask), *untrained, history.test_loss[-1], history.test_acc[-1],
                        history.iteration[-1], history.iteration[-1], {name: keep.clone() for name, keep in mask.items()}, history)
            for level, mask, untrained, history in zip(levels, masks, before, histories)]
