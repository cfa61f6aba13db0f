"""Fine-grained pruning of a whole model, fine-tuning that keeps the mask, and the per-layer sensitivity
scan: the references of chapter 5's exercises (notebooks/05_pruning_loop.ipynb), written with the
library's building blocks so that a student's version can be compared with them step for step.

The fine-tuning here is deliberately the simplest loop — full-batch SGD with momentum on ``(x, y)`` —
so that two correct implementations give the same weights; :func:`lecturelib.training.train` with
``mask=`` is the course's general version (minibatches, schedules, Adam).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_positive_int
from .pruning import Mask, apply_mask, layerwise_magnitude_mask, prunable_names
from .training import clone_model, evaluate

MOMENTUM = 0.9   # the SGD momentum of finetune_with_mask (momentum is what revives pruned weights when the mask is not re-applied)


def prune_model(model: nn.Module, sparsity: float) -> Mask:
    """Prune every ``Linear``/``Conv`` weight of ``model`` to ``sparsity`` by magnitude, layer by layer, in place; return the mask.

    The mask is ``{name: bool tensor}`` over the weights (not the biases), ``True`` = kept; each layer
    loses ``round(sparsity * n)`` of its ``n`` weights, the smallest ``|w|``.
    """
    mask = layerwise_magnitude_mask(model, sparsity)
    apply_mask(model, mask)   # in place, without autograd (apply_mask runs under torch.no_grad)
    return mask


def finetune_with_mask(model: nn.Module, mask: Mask, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> nn.Module:
    """Fine-tune ``model`` in place for ``steps`` full-batch SGD steps (momentum :data:`MOMENTUM`, cross-entropy on ``(x, y)``) keeping ``mask``.

    The mask is applied before the first step and re-applied after every optimiser step, so pruned
    weights are exactly 0 at every forward pass and at the end. Returns the model.
    """
    steps = check_positive_int("steps", steps)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)
    model.train()
    apply_mask(model, mask)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        apply_mask(model, mask)
    return model


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Return the fraction of ``x`` ``(N, ...)`` that ``model`` (in eval mode, then restored) classifies as ``y``: :func:`lecturelib.training.evaluate`'s accuracy."""
    return evaluate(model, x, y)[1]


def sensitivity_scan(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sparsities: Sequence[float]) -> dict[str, list[float]]:
    """Return ``{weight name: [accuracy on (x, y) with only that layer pruned to s, for s in sparsities]}``; ``model`` is not changed.

    Each entry starts from ``model`` itself (a copy), prunes the one layer by magnitude and evaluates
    it without fine-tuning: how sensitive the network is to each layer, the scan of MIT 6.5940's lab 1.
    """
    scan: dict[str, list[float]] = {}
    for name in prunable_names(model):
        scan[name] = []
        for s in sparsities:
            copy = clone_model(model)
            apply_mask(copy, layerwise_magnitude_mask(copy, s, names=[name]))
            scan[name].append(accuracy(copy, x, y))
    return scan
