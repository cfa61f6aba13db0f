"""Lottery tickets: iterative magnitude pruning (IMP) with reset to initialisation or rewinding to
iteration k, and the random re-initialisation control (Frankle & Carbin 2019; Frankle et al. 2020).

The whole procedure is :func:`iterative_magnitude_pruning`, one loop you can read top to bottom::

    W_0 ← initial weights;  M ← ones
    train(W_0)  (keep W_k)                    # level 0: the dense network
    repeat for each round:
        M ← prune the smallest surviving |W| of each layer (rate r_l of what is left)
        W ← M ⊙ W_k                           # k = 0 is "reset to initialisation"
        train(W, mask M)                      # one record per level

Per-layer rates follow Frankle & Carbin: e.g. 20 % of the hidden layers' remaining weights per round
but only 10 % of the output layer's (:func:`layer_rates`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ._checks import check_fraction, check_positive_int
from .data import Dataset
from .pruning import Mask, check_mask, iterative_sparsities, layerwise_magnitude_mask, ones_mask, prunable_names, sparsity
from .training import History, train, train_many


@dataclass
class LevelResult:
    """What one IMP level (one training run of one sub-network) gave.

    Accuracies are fractions in [0, 1]. ``best_iteration`` is the early-stopping iteration (the
    evaluation with the best validation accuracy; the test accuracy if there is no validation split)
    and ``best_test_acc`` the test accuracy at that iteration. ``mask`` is the sub-network's mask
    (not written to JSON by :meth:`to_dict`).
    """

    level: int
    weights_left: float                      # fraction of prunable weights that are kept, in (0, 1]
    layer_weights_left: dict[str, float]     # the same, per layer
    final_test_acc: float
    best_iteration: int
    best_val_acc: float
    best_test_acc: float
    history: dict[str, list] = field(default_factory=dict)
    mask: Mask | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The result as plain JSON-ready values (the mask left out)."""
        return {
            "level": self.level, "weights_left": self.weights_left, "layer_weights_left": dict(self.layer_weights_left),
            "final_test_acc": self.final_test_acc, "best_iteration": self.best_iteration,
            "best_val_acc": self.best_val_acc, "best_test_acc": self.best_test_acc, "history": self.history,
        }


def layer_rates(model: nn.Module, rate: float, output_rate: float | None = None) -> dict[str, float]:
    """Return ``{weight name: pruning rate per round}``: ``rate`` for every layer, ``output_rate`` for the last.

    Args:
        model: the network; its prunable weights are :func:`~lecturelib.pruning.prunable_names`.
        rate: fraction of the *remaining* weights of a layer pruned in each round, in [0, 1).
        output_rate: the rate of the output (last) layer; default ``rate``. Frankle & Carbin
            prune LeNet-300-100's output layer at half the rate of the hidden layers.

    Raises:
        ValueError: a rate outside [0, 1).
    """
    rate = check_fraction("rate", rate)
    names = prunable_names(model)
    rates = {name: rate for name in names}
    if output_rate is not None:
        rates[names[-1]] = check_fraction("output_rate", output_rate)
    return rates


def layer_sparsity_schedule(rates: Mapping[str, float], rounds: int) -> list[dict[str, float]]:
    """Return the per-layer target sparsity after each of ``rounds`` rounds.

    Layer ``l`` pruned at rate ``r_l`` per round reaches ``1 - (1 - r_l) ** r`` after round ``r``
    (:func:`~lecturelib.pruning.iterative_sparsities`, layer by layer).

    Returns:
        A list of ``rounds`` dicts ``{weight name: sparsity}``, ready for
        :func:`~lecturelib.pruning.layerwise_magnitude_mask`.

    Examples:
        >>> [{name: round(s, 3) for name, s in level.items()} for level in layer_sparsity_schedule({"fc1.weight": 0.2, "fc3.weight": 0.1}, 2)]
        [{'fc1.weight': 0.2, 'fc3.weight': 0.1}, {'fc1.weight': 0.36, 'fc3.weight': 0.19}]
    """
    rounds = check_positive_int("rounds", rounds)
    per_layer = {name: iterative_sparsities(rate, rounds) for name, rate in rates.items()}
    return [{name: per_layer[name][r] for name in rates} for r in range(rounds)]


def level_result(level: int, mask: Mask, history: History) -> LevelResult:
    """Return the :class:`LevelResult` of a training run ``history`` of the sub-network ``mask``."""
    best = history.best_index
    return LevelResult(
        level=level,
        weights_left=1.0 - sparsity(mask),
        layer_weights_left={name: float(keep.float().mean()) for name, keep in mask.items()},
        final_test_acc=history.final_test_acc,
        best_iteration=history.best_iteration,
        best_val_acc=(history.val_acc or history.test_acc)[best],
        best_test_acc=history.test_acc[best],
        history=history.to_dict(),
        mask={name: keep.clone() for name, keep in mask.items()},
    )


def iterative_magnitude_pruning(
    model: nn.Module,
    data: Dataset,
    *,
    rounds: int,
    rate: float = 0.2,
    output_rate: float | None = None,
    rewind_iteration: int = 0,
    train_kwargs: Mapping | None = None,
) -> list[LevelResult]:
    """Run IMP and return one :class:`LevelResult` per level (level 0 = the dense network).

    Train → prune ``rate`` of each layer's surviving weights by magnitude → rewind the survivors to
    their values at iteration ``rewind_iteration`` of the first (dense) training → train again …

    As in Frankle et al. (2020), a level rewound to ``W_k`` trains the remaining ``T - k`` iterations
    of the ``T``-iteration run (``start_iteration=k``: the learning-rate schedule continues from
    ``k``), so every level ends at iteration ``T`` of the same schedule; its history's iterations
    count from ``k``. Reset (``k = 0``) trains every level for all ``T``.

    Args:
        model: the network at its initialisation ``W_0``; it is trained in place and ends at the
            last level's trained weights.
        data: the dataset (give it a validation split for a true early-stopping iteration).
        rounds: number of pruning rounds; ``rounds + 1`` networks are trained.
        rate: fraction of the remaining weights of each layer pruned per round.
        output_rate: the (lower) rate of the output layer; default ``rate``.
        rewind_iteration: ``k``; ``0`` resets to the initialisation (the original lottery ticket),
            ``k > 0`` rewinds to ``W_k`` (Frankle et al. 2020). Must be below the training length.
        train_kwargs: arguments of :func:`~lecturelib.training.train` (``iterations``, ``lr``,
            ``batch_size``, ``data_seed``, ``eval_every``…), the same for every level.

    Raises:
        ValueError: ``rounds`` < 1, a rate outside [0, 1), ``rewind_iteration`` < 0 or beyond the training,
            or ``train_kwargs`` containing ``mask`` / ``snapshot_at`` / ``start_iteration`` / ``run_iterations``
            (IMP sets them).
    """
    rounds = check_positive_int("rounds", rounds)
    rewind_iteration = check_positive_int("rewind_iteration", rewind_iteration, allow_zero=True)
    train_kwargs = dict(train_kwargs or {})
    for reserved in ("mask", "snapshot_at", "start_iteration", "run_iterations"):
        if reserved in train_kwargs:
            raise ValueError(f"train_kwargs must not set {reserved!r}: iterative_magnitude_pruning sets it")
    schedule = layer_sparsity_schedule(layer_rates(model, rate, output_rate), rounds)

    mask = ones_mask(model)
    if rewind_iteration >= train_kwargs.get("iterations", rewind_iteration + 1):   # known before training: say so now
        _rewind_beyond(rewind_iteration, train_kwargs["iterations"])
    history = train(model, data, mask=mask, snapshot_at=[rewind_iteration], **train_kwargs)  # level 0: dense
    total = history.iteration[-1]                                                             # T
    if rewind_iteration >= total:
        _rewind_beyond(rewind_iteration, total)
    rewind_state = history.snapshots[rewind_iteration]                                        # W_k (k = 0: W_0)
    rest = {key: value for key, value in train_kwargs.items() if key not in ("iterations", "epochs")}
    rest.update(iterations=total - rewind_iteration, start_iteration=rewind_iteration)        # from W_k to T
    results = [level_result(0, mask, history)]
    for level in range(1, rounds + 1):
        mask = layerwise_magnitude_mask(model, schedule[level - 1], current_mask=mask)  # prune the trained weights
        model.load_state_dict(rewind_state)                                              # rewind: W ← W_k
        history = train(model, data, mask=mask, **rest)                                  # train m ⊙ W_k from k to T
        results.append(level_result(level, mask, history))
    return results


def _rewind_beyond(rewind_iteration: int, total: int) -> None:
    raise ValueError(f"rewind_iteration must be below the {total} training iterations, got {rewind_iteration}")


def train_random_reinit(
    make_model: Callable[[int], nn.Module],
    data: Dataset,
    mask: Mask,
    *,
    seed: int,
    train_kwargs: Mapping | None = None,
    level: int = 0,
) -> LevelResult:
    """Return the result of training the sub-network ``mask`` from a *fresh* random initialisation.

    This is Frankle & Carbin's control: the same architecture and mask as a winning ticket, but
    the surviving weights drawn anew, so only the mask (the structure) is kept from IMP.

    Args:
        make_model: ``seed -> model`` building the architecture with init drawn from ``seed``.
        data: the dataset.
        mask: the ticket's mask.
        seed: seed of the fresh initialisation (use one that differs from the ticket's).
        train_kwargs: arguments of :func:`~lecturelib.training.train` (as for the ticket).
        level: the IMP level the mask comes from (stored in the result).
    """
    train_kwargs = dict(train_kwargs or {})
    data_seed = train_kwargs.pop("data_seed", 0)
    return train_random_reinits(make_model, data, [mask], seeds=[seed], data_seeds=[data_seed],
                                train_kwargs=train_kwargs, levels=[level])[0]


def train_random_reinits(
    make_model: Callable[[int], nn.Module],
    data: Dataset,
    masks: Sequence[Mask],
    *,
    seeds: Sequence[int],
    data_seeds: Sequence[int],
    train_kwargs: Mapping | None = None,
    levels: Sequence[int] | None = None,
) -> list[LevelResult]:
    """Return the results of :func:`train_random_reinit` for many masks, trained together (:func:`~lecturelib.training.train_many`).

    Network ``i`` is the sub-network ``masks[i]`` of ``make_model(seeds[i])``, trained with minibatch
    order ``data_seeds[i]``; each result equals what :func:`train_random_reinit` returns for it, to
    float rounding. The controls of every seed and IMP level of an experiment are one call.

    Args:
        make_model, data, train_kwargs: as for :func:`train_random_reinit` (``train_kwargs`` without ``data_seed``).
        masks: the tickets' masks.
        seeds / data_seeds: one initialisation seed and one data-order seed per mask.
        levels: the IMP level of each mask (stored in the results); default all 0.

    Raises:
        ValueError: ``seeds``, ``data_seeds`` or ``levels`` do not hold one entry per mask, or
            ``train_kwargs`` sets ``mask``, ``masks`` or ``data_seed``.
    """
    levels = [0] * len(masks) if levels is None else list(levels)
    for name, values in (("seeds", seeds), ("data_seeds", data_seeds), ("levels", levels)):
        if len(values) != len(masks):
            raise ValueError(f"{name} must hold one entry per mask ({len(masks)}), got {len(values)}")
    train_kwargs = dict(train_kwargs or {})
    for reserved in ("mask", "masks", "data_seed", "data_seeds"):
        if reserved in train_kwargs:
            raise ValueError(f"train_kwargs must not set {reserved!r}: train_random_reinits sets it")
    nets = [make_model(seed) for seed in seeds]
    for net, mask in zip(nets, masks):
        check_mask(net, mask)
    histories = train_many(nets, data, masks=masks, data_seeds=data_seeds, **train_kwargs)
    return [level_result(level, mask, history) for level, mask, history in zip(levels, masks, histories)]

