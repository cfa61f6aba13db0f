"""Weight distributions of a network before pruning, right after pruning and after retraining (Chapter 3,
notebooks/03_weight_distributions.ipynb; chapter 7 compares them for both kinds of pruning):
histograms on shared bins and the numbers that describe them (the hole around zero, the spread).

A histogram here counts **surviving** weights: weights that are exactly zero because a mask pruned
them are left out (and reported separately), so "a hole around zero" means no surviving weight
lies there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_positive_int
from .pruning import prunable_names

State = Mapping[str, torch.Tensor]


def layer_weights(state: State | nn.Module, names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Return ``{name: flat float tensor}`` of the weights ``names`` of a model or ``state_dict``.

    The default ``names`` are the ``*.weight`` tensors with 2 or 4 dimensions (Linear, Conv2d).
    """
    if isinstance(state, nn.Module):
        names = prunable_names(state) if names is None else names
        state = {k: v for k, v in state.state_dict().items()}
    if names is None:
        names = [k for k, v in state.items() if k.endswith("weight") and v.dim() in (2, 4)]
    out = {}
    for name in names:
        if name not in state:
            raise KeyError(f"no weight {name!r}; available: {', '.join(state)}")
        out[name] = state[name].detach().float().reshape(-1).cpu()
    return out


def survivors(weights: torch.Tensor) -> torch.Tensor:
    """Return the non-zero entries of ``weights`` as a flat tensor (pruned weights are exactly 0)."""
    flat = weights.detach().reshape(-1)
    return flat[flat != 0]


def shared_edges(weight_sets: Iterable[torch.Tensor], bins: int = 60, *, quantile: float = 1.0) -> torch.Tensor:
    """Return ``bins + 1`` equal-width bin edges, symmetric around 0, covering every tensor given.

    Using the same edges for "before", "pruned" and "retrained" makes their histograms comparable
    bar by bar. The range is ``±`` the ``quantile`` of ``|w|`` over all tensors (1.0 = the maximum).
    """
    bins = check_positive_int("bins", bins)
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    values = torch.cat([w.detach().reshape(-1).abs().float() for w in weight_sets])
    if values.numel() == 0:
        raise ValueError("weight_sets holds no weights")
    limit = float(torch.quantile(values, quantile)) if quantile < 1 else float(values.max())
    limit = limit if limit > 0 else 1.0
    return torch.linspace(-limit, limit, bins + 1)


def survivor_histogram(weights: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Return how many **surviving** (non-zero) weights fall in each bin ``[edges[i], edges[i+1])``.

    The last bin is closed on the right; weights outside ``[edges[0], edges[-1]]`` are not counted.

    Returns:
        Int64 tensor ``(len(edges) - 1,)``: entry ``i`` is the number of weights with a value in bin ``i``.
    """
    if edges.dim() != 1 or len(edges) < 2:
        raise ValueError(f"edges must be a 1-D tensor of at least 2 increasing values, got shape {tuple(edges.shape)}")
    alive = survivors(weights).float()
    edges = edges.float()
    alive = alive[(alive >= edges[0]) & (alive <= edges[-1])]
    index = torch.bucketize(alive, edges, right=True) - 1
    index = index.clamp(max=len(edges) - 2)  # the right edge belongs to the last bin
    return torch.bincount(index, minlength=len(edges) - 1)


@dataclass(frozen=True)
class DistributionSummary:
    """Numbers that describe one weight distribution.

    ``total`` weights, of which ``pruned`` are exactly zero; ``std`` and ``mean_abs`` are over the
    survivors; ``inside`` is the number of survivors with ``|w| < threshold`` (inside the hole),
    ``p99_abs`` the 99th percentile of the survivors' ``|w|``.
    """

    total: int
    pruned: int
    std: float
    mean_abs: float
    p99_abs: float
    inside: int


def summarize(weights: torch.Tensor, threshold: float = 0.0) -> DistributionSummary:
    """Return the :class:`DistributionSummary` of ``weights`` (the hole is ``|w| < threshold``)."""
    flat = weights.detach().reshape(-1).float()
    alive = survivors(flat)
    if alive.numel() == 0:
        return DistributionSummary(flat.numel(), flat.numel(), 0.0, 0.0, 0.0, 0)
    return DistributionSummary(
        total=flat.numel(),
        pruned=int((flat == 0).sum()),
        std=float(alive.std()) if alive.numel() > 1 else 0.0,
        mean_abs=float(alive.abs().mean()),
        p99_abs=float(torch.quantile(alive.abs(), 0.99)),
        inside=int((alive.abs() < threshold).sum()),
    )


def pruning_threshold(before: torch.Tensor, after: torch.Tensor) -> float:
    """Return the magnitude threshold a pruning used: the smallest ``|w|`` that survived in ``after``.

    Every weight of ``before`` with ``|w|`` below it was pruned. ``before`` and ``after`` have the same shape.
    """
    if before.shape != after.shape:
        raise ValueError(f"before and after must have the same shape, got {tuple(before.shape)} and {tuple(after.shape)}")
    kept = after.reshape(-1) != 0
    if not kept.any():
        return float("inf")
    return float(before.reshape(-1)[kept].abs().min())


def hole_change(pruned: torch.Tensor, retrained: torch.Tensor) -> dict[str, float]:
    """Return how retraining with the mask changed one layer's survivors: the reference of chapter 3's exercise.

    ``pruned`` holds the layer right after magnitude pruning (pruned weights exactly 0), ``retrained``
    the same layer after retraining with the mask (same shape). The survivors are the entries that are
    non-zero in ``pruned``. Returns ``{"threshold": t, "refilled": …, "p99_growth": …}``: ``t`` is the
    smallest surviving ``|w|`` of ``pruned`` (the edge of the hole), ``refilled`` the fraction of the
    survivors whose retrained ``|w|`` is strictly below ``t``, and ``p99_growth`` the 99th percentile of
    the survivors' ``|w|`` after retraining divided by the same percentile right after pruning.
    """
    if pruned.shape != retrained.shape:
        raise ValueError(f"pruned and retrained must have the same shape, got {tuple(pruned.shape)} and {tuple(retrained.shape)}")
    kept = pruned.detach().reshape(-1) != 0
    if not kept.any():
        raise ValueError("pruned has no surviving (non-zero) weight")
    before, after = pruned.detach().reshape(-1)[kept].abs().float(), retrained.detach().reshape(-1)[kept].abs().float()
    t = float(before.min())
    return {"threshold": t, "refilled": float((after < t).float().mean()),
            "p99_growth": float(torch.quantile(after, 0.99) / torch.quantile(before, 0.99))}
