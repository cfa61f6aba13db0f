"""Importance scores measured on data, the references of two exercises: a weight's mean contribution
``|w_i| · mean |x_i|`` (Chapter 1, notebooks/01_weighted_sum.ipynb) and a ReLU unit's average
percentage of zeros, APoZ (Chapter 2, notebooks/02_gains_and_costs.ipynb; Hu et al. 2016).

Magnitude pruning scores a weight by ``|w|`` alone; these scores look at what the weight or the unit
does on inputs ``x``: a weight whose input is never lit adds nothing, a unit that is almost always 0
after its ReLU passes almost nothing on.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_fraction
from .models import eval_mode
from .pruning import keep_largest, kept_count


def mean_contributions(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return ``|w_i| · mean_n |x_ni|``, shape ``(n,)``: the mean size of each term of the weighted sum over the batch ``x`` ``(B, n)``."""
    if w.ndim != 1 or x.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"w must have shape (n,) and x shape (B, n), got {tuple(w.shape)} and {tuple(x.shape)}")
    return w.detach().abs() * x.detach().abs().mean(0)


def prune_by_contribution(w: torch.Tensor, x: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Return a copy of ``w`` ``(n,)`` with the ``round(sparsity * n)`` weights of smallest :func:`mean_contributions` set to 0.

    Ties are broken by position (:func:`lecturelib.pruning.keep_largest`); at least one weight is kept.
    """
    sparsity = check_fraction("sparsity", sparsity)
    keep = keep_largest(mean_contributions(w, x), kept_count(sparsity, w.numel()))
    return w.detach().masked_fill(~keep, 0)


@torch.no_grad()
def hidden_apoz(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Return the average percentage of zeros (as a fraction in [0, 1]) of each unit of the first hidden layer, shape ``(units,)``.

    The unit's output is ``relu(fc1(flatten(x)))`` for an :func:`lecturelib.models.mlp`; APoZ is the
    fraction of the inputs ``x`` ``(B, ...)`` on which it is exactly 0.
    """
    with eval_mode(model):
        hidden = torch.relu(model.fc1(x.flatten(1)))
    return (hidden == 0).float().mean(0)


@torch.no_grad()
def accuracy_without_units(model: nn.Sequential, units: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    """Return the accuracy in [0, 1] on ``(x, y)`` of ``model`` with the hidden units ``units`` of ``fc1`` switched off (the model is not changed).

    A unit is switched off by zeroing its row of ``fc1.weight`` and its bias: its ReLU then outputs 0, as
    if it had been removed together with its column of ``fc2``.
    """
    off = torch.zeros(model.fc1.out_features, dtype=torch.bool)
    off[units] = True
    weight, bias = model.fc1.weight.masked_fill(off[:, None], 0), model.fc1.bias.masked_fill(off, 0)
    hidden = torch.relu(nn.functional.linear(x.flatten(1), weight, bias))
    rest = nn.Sequential(*list(model.children())[list(dict(model.named_children())).index("relu1") + 1:])
    return float((rest(hidden).argmax(1) == y).float().mean())
