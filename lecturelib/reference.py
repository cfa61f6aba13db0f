"""Reference implementations of the algorithm exercises of chapters 6–10, with the exercises' signatures.

Each is a few lines built from lecturelib's building blocks (masks, ``train``, ``evaluate``) the way
the exercise asks a student to write it, so that a check (:mod:`lecturelib.checks`) can compare a student's function with lecturelib on its
own cases, and a chapter whose exercise was skipped can run on the reference instead
(:func:`lecturelib.checks.use_or_fallback`).

* :func:`pruned_accuracies` — chapter 6: a ratio curve without retraining.
* :func:`remove_channels` — chapter 7: channel surgery on a layer and the layer after it.
* :func:`iterative_prune` — chapter 8: the iterative schedule and the pruning loop.
* :func:`find_ticket` — chapter 9: IMP with reset; its control :func:`random_reinit` is
  :func:`lecturelib.lottery.random_reinit` itself.
* chapter 10's error barrier is :func:`lecturelib.stability.error_barrier` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .data import Dataset
from .iterative import prune_finetune_loop, sparsity_schedule
from .lottery import iterative_magnitude_pruning, random_reinit
from .pruning import Mask, apply_mask, global_magnitude_mask
from .structured import sliced_layer
from .training import clone_model, evaluate


def pruned_accuracies(model: nn.Module, data: Dataset, ratios: Sequence[float]) -> list[float]:
    """Return the test accuracy (fraction) of the trained ``model`` pruned by global magnitude to each of ``ratios``, without retraining.

    ``model`` is not changed (each ratio prunes a copy). This is the "without retraining" curve of
    :func:`lecturelib.iterative.ratio_curve`.
    """
    accuracies = []
    for ratio in ratios:
        pruned = apply_mask(clone_model(model), global_magnitude_mask(model, ratio))
        accuracies.append(evaluate(pruned, data.x_test, data.y_test)[1])
    return accuracies


def remove_channels(layer: nn.Module, next_layer: nn.Module, keep: torch.Tensor) -> tuple[nn.Module, nn.Module]:
    """Return new copies of ``layer`` with only its output channels (rows) ``keep`` and of ``next_layer`` with only those input channels.

    ``layer`` and ``next_layer`` are ``nn.Conv2d`` or ``nn.Linear`` (``next_layer`` reads ``layer``'s
    outputs directly, through channel-wise layers such as ReLU or pooling at most); ``keep`` is a
    sorted 1-D tensor of channel indices. The bias of a removed channel goes with it. When the removed
    channels were zero (weights and bias), the smaller pair computes what the original pair computes.
    The given layers are not changed. :func:`lecturelib.structured.prune_channels` does this for a whole network,
    with the same :func:`lecturelib.structured.sliced_layer`.
    """
    keep = torch.as_tensor(keep).long()
    return sliced_layer(layer, out_idx=keep), sliced_layer(next_layer, in_idx=keep)


def iterative_prune(model: nn.Module, data: Dataset, final_sparsity: float, rounds: int, finetune_iterations: int) -> list[Mask]:
    """Prune ``model`` in place to ``final_sparsity`` in ``rounds`` rounds of global magnitude pruning, fine-tuning with the mask after each; return each round's mask.

    Round ``r`` (1, 2, …) prunes to the ``r``-th sparsity of :func:`lecturelib.iterative.sparsity_schedule`
    (the same fraction of the remaining weights every round; pruned weights stay pruned), then fine-tunes
    for ``finetune_iterations`` steps of :func:`lecturelib.training.train` with its defaults, the mask and
    ``data_seed=r``: :func:`lecturelib.iterative.prune_finetune_loop` with ``scope="global"``, which runs it.
    """
    records = prune_finetune_loop(model, data, sparsity_schedule(final_sparsity, rounds), finetune_iterations=finetune_iterations,
                                  scope="global")
    return [record.mask for record in records[1:]]


def find_ticket(model: nn.Module, data: Dataset, rounds: int, rate: float, iterations: int) -> list[Mask]:
    """Run IMP with reset on ``model`` (at its initialisation ``W_0``) and return the mask after each of ``rounds`` rounds.

    Train ``iterations`` steps (:func:`lecturelib.training.train`, its defaults) → prune ``rate`` of each
    layer's surviving weights by magnitude (after round ``r`` a fraction ``1 - (1 - rate) ** r`` of every
    layer is pruned) → reset the survivors to ``W_0`` → train with the mask → … ``model`` ends with the
    last level's trained weights: :func:`lecturelib.lottery.iterative_magnitude_pruning` with ``k = 0``, which runs it.
    """
    run = iterative_magnitude_pruning([model], data, rounds=rounds, rate=rate, train_kwargs={"iterations": iterations})[0]
    return [level.mask for level in run.levels[1:]]
