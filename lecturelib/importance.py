"""The weighted sum ``S = Σ_i w_i x_i`` and how much each term matters to it.

Shapes: one neuron's weights ``w`` are ``(n,)``; inputs ``x`` are ``(n,)`` or a batch ``(B, n)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._checks import check_choice, check_fraction

ORDERS = ("smallest", "largest", "random")


def weighted_sum(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return ``S = Σ_i w_i x_i``: a scalar for ``x`` of shape ``(n,)``, shape ``(B,)`` for ``(B, n)``."""
    _check_shapes(w, x)
    return x @ w


def contributions(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return the terms ``w_i x_i`` of the weighted sum, the shape of ``x``; they add up to :func:`weighted_sum`."""
    _check_shapes(w, x)
    return x * w


def prune_weights(w: torch.Tensor, ratio: float, order: str = "smallest", *, seed: int = 0) -> torch.Tensor:
    """Return a copy of ``w`` with ``round(ratio * n)`` of its ``n`` weights set to 0.

    Args:
        w: weights of any shape — one neuron's ``(n,)`` or a whole matrix; ``n`` counts every entry
            and the ranking runs over all of them.
        ratio: fraction to zero, in [0, 1] (1 zeroes every weight).
        order: which go first — ``"smallest"`` |w| (magnitude pruning), ``"largest"`` |w|, or ``"random"``.
        seed: seed of the ``"random"`` order.

    Examples:
        >>> int((prune_weights(torch.arange(1.0, 17.0).reshape(4, 4), 0.5) == 0).sum())
        8
    """
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"w must be a tensor, got {type(w).__name__}")
    ratio = check_fraction("ratio", ratio, allow_one=True)
    check_choice("order", order, ORDERS)
    flat = w.detach().reshape(-1)
    n_prune = round(ratio * flat.numel())
    if order == "random":
        ranking = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(seed))
    else:
        ranking = flat.abs().argsort(descending=order == "largest", stable=True)
    pruned = flat.clone()
    pruned[ranking[:n_prune].to(pruned.device)] = 0
    return pruned.reshape(w.shape)


def sum_change(
    w: torch.Tensor, x: torch.Tensor, ratios: Sequence[float], order: str = "smallest", *, seed: int = 0
) -> torch.Tensor:
    """Return, for each ratio, the mean ``|S_pruned - S|`` over the batch ``x`` ``(B, n)``, in units of the spread (std) of ``S``.

    A value of 1 means pruning moves the weighted sum by as much as it varies from input to input.
    """
    s = weighted_sum(w, x)
    scale = s.std()
    return torch.stack([(weighted_sum(prune_weights(w, r, order, seed=seed), x) - s).abs().mean() / scale for r in ratios])


def _check_shapes(w: torch.Tensor, x: torch.Tensor) -> None:
    if w.ndim != 1:
        raise ValueError(f"w must be one neuron's weights of shape (n,), got shape {tuple(w.shape)}")
    if x.shape[-1] != w.shape[0] or x.ndim not in (1, 2):
        raise ValueError(f"x must have shape ({w.shape[0]},) or (B, {w.shape[0]}) to match w, got {tuple(x.shape)}")
