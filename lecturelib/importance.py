"""The weighted sum ``S = Σ_i w_i x_i`` and how much each term matters to it
(Chapter 1, notebooks/01_weighted_sum.ipynb).

Shapes: one neuron's weights ``w`` are ``(n,)``; inputs ``x`` are ``(n,)`` or a batch ``(B, n)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .pruning import prune_weights


def weighted_sum(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return ``S = Σ_i w_i x_i``: a scalar for ``x`` of shape ``(n,)``, shape ``(B,)`` for ``(B, n)``."""
    _check_shapes(w, x)
    return x @ w


def contributions(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return the terms ``w_i x_i`` of the weighted sum, the shape of ``x``; they add up to :func:`weighted_sum`."""
    _check_shapes(w, x)
    return x * w


def sum_change(
    w: torch.Tensor, x: torch.Tensor, sparsities: Sequence[float], order: str = "smallest", *, seed: int = 0
) -> torch.Tensor:
    """Return, for each sparsity, the mean ``|S_pruned - S|`` over the batch ``x`` ``(B, n)``, in units of the spread (std) of ``S``.

    ``w`` is pruned by :func:`lecturelib.pruning.prune_weights` in the ``order`` given. A value of 1
    means pruning moves the weighted sum by as much as it varies from input to input.
    """
    s = weighted_sum(w, x)
    scale = s.std()
    return torch.stack([(weighted_sum(prune_weights(w, r, order, seed=seed), x) - s).abs().mean() / scale for r in sparsities])


def _check_shapes(w: torch.Tensor, x: torch.Tensor) -> None:
    if w.ndim != 1:
        raise ValueError(f"w must be one neuron's weights of shape (n,), got shape {tuple(w.shape)}")
    if x.shape[-1] != w.shape[0] or x.ndim not in (1, 2):
        raise ValueError(f"x must have shape ({w.shape[0]},) or (B, {w.shape[0]}) to match w, got {tuple(x.shape)}")
