"""Unstructured magnitude pruning with explicit masks (Chapter 5, notebooks/05_pruning_loop.ipynb), and the
one selection every pruning function of the library uses, :func:`keep_largest` (stable ties).

A *mask* is a plain ``dict`` ``{parameter name: bool tensor}`` keyed like ``model.named_parameters()``;
``True`` keeps a weight, ``False`` prunes it. Parameters missing from a mask are not pruned.

*Sparsity* is always the fraction of weights that are **zero** (pruned) among the weights a mask
covers, in [0, 1). A sparsity ``s`` over ``n`` weights prunes ``round(s * n)`` of them — the rounding
rule of ``torch.nn.utils.prune`` — the ones with the smallest scores. Asking for a sparsity lower
than the current mask's is an error: pruned weights are never revived.

**A layer is never emptied.** A sparsity below 1 always leaves each pruned layer at least one
weight: where ``round(s * n)`` would be all ``n`` weights of a layer (``round(0.99 * 40) = 40``), the
layer keeps its largest-scoring weight and ``n - 1`` are pruned. The global mask protects each
layer's largest surviving weight in the same way, so it prunes at most ``N - L`` of ``N`` weights in
``L`` layers. A layer with no weight left has no signal to pass on: the network's output would no
longer depend on its input, and many IMP rounds on a small network would otherwise end there
without a word. (A layer that a given ``current_mask`` has already emptied stays empty.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from ._checks import check_choice, check_fraction

Mask = dict[str, torch.Tensor]


PRUNABLE_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_names(model: nn.Module) -> list[str]:
    """Return the names of the weights of the ``Linear`` and ``Conv1d/2d/3d`` layers, in order.

    Examples:
        >>> prunable_names(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)))
        ['0.weight', '3.weight']
    """
    return [f"{name}.weight" if name else "weight" for name, module in model.named_modules() if isinstance(module, PRUNABLE_LAYERS)]


def ones_mask(model: nn.Module, names: Iterable[str] | None = None) -> Mask:
    """Return the all-ones mask M (nothing pruned) over ``names`` (default :func:`prunable_names`)."""
    params = dict(model.named_parameters())
    names = prunable_names(model) if names is None else list(names)
    _check_names(params, names, "names")
    return {name: torch.ones_like(params[name], dtype=torch.bool) for name in names}


def check_mask(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> None:
    """Raise if ``mask`` names a parameter ``model`` lacks, has a wrong shape, or holds values other than 0/1."""
    if not isinstance(mask, Mapping):
        raise TypeError(f"mask must be a dict {{parameter name: bool tensor}}, got {type(mask).__name__}")
    params = dict(model.named_parameters())
    _check_names(params, mask, "mask")
    for name, keep in mask.items():
        if not isinstance(keep, torch.Tensor):
            raise TypeError(f"mask[{name!r}] must be a tensor, got {type(keep).__name__}")
        if keep.shape != params[name].shape:
            raise ValueError(
                f"mask[{name!r}] has shape {tuple(keep.shape)}, but parameter {name!r} has shape {tuple(params[name].shape)}"
            )
        if keep.dtype != torch.bool and not torch.all((keep == 0) | (keep == 1)):
            raise ValueError(f"mask[{name!r}] must hold only 0/1 (or True/False) values")


def _check_names(params: Mapping[str, torch.Tensor], names: Iterable[str], argument: str) -> None:
    for name in names:
        if name not in params:
            raise KeyError(f"{argument}: the model has no parameter {name!r}; its parameters are: {', '.join(params)}")


def _names_to_prune(model: nn.Module, names: Iterable[str] | None, current_mask: Mask | None) -> list[str]:
    """The parameters a mask function prunes: ``names``, else ``current_mask``'s, else :func:`prunable_names`; checked."""
    if names is None:
        return list(current_mask) if current_mask is not None else prunable_names(model)
    if isinstance(names, str):
        raise TypeError(f"names must be a list of parameter names, got the string {names!r}; write names=[{names!r}]")
    names = list(names)
    if not names:
        raise ValueError(f"names must list at least one parameter, got []; prunable: {', '.join(prunable_names(model))}")
    _check_names(dict(model.named_parameters()), names, "names")
    return names


def magnitude_scores(weight: torch.Tensor, norm: int = 1) -> torch.Tensor:
    """Return the importance of each weight: ``|w|`` for ``norm=1`` (L1) or ``w²`` for ``norm=2`` (L2).

    Element by element both rank weights identically; they differ once scores are summed over a
    group (a row, a channel), which :mod:`lecturelib.structured` does.
    """
    check_choice("norm", norm, (1, 2))
    return weight.detach().abs() if norm == 1 else weight.detach() ** 2


def _scores(model: nn.Module, names: list[str], current: Mask | None, norm: int) -> dict[str, torch.Tensor]:
    """``{name: float32 CPU scores}``; the entries ``current`` (checked) has pruned score -1, below every weight."""
    if current is not None:
        check_mask(model, current)
    params = dict(model.named_parameters())
    scores = {}
    for name in names:
        score = magnitude_scores(params[name], norm).float().cpu()
        if current is not None and name in current:
            score = torch.where(current[name].bool().cpu(), score, torch.full_like(score, -1.0))  # pruned stay pruned
        scores[name] = score
    return scores


def keep_largest(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Return a bool tensor of ``scores``' shape, ``True`` at its ``n_keep`` largest entries: the library's one selection.

    Every pruning function selects through this one: weights by ``|w|`` (:func:`prune_weights`, the
    masks), rows and channels by :func:`row_norms` (:mod:`lecturelib.structured`, :mod:`lecturelib.latency`).
    Ties are broken by position, as a *stable* sort would: among equal scores the one with the lower
    (flattened) index is pruned first — the same result on every platform. It runs in O(n) (a selected
    threshold — ``np.partition`` on the CPU, ``kthvalue`` elsewhere; the entries tied at it are taken in
    index order), not O(n log n).

    Examples:
        >>> keep_largest(torch.tensor([0.5, 0.1, 0.5, 0.3]), 1).tolist()   # the tie 0.5 / 0.5: index 0 goes first
        [False, False, True, False]
    """
    flat = scores.reshape(-1)
    if not 0 <= n_keep <= flat.numel():
        raise ValueError(f"n_keep must be in [0, {flat.numel()}] (the number of scores), got {n_keep!r}")
    n_prune = flat.numel() - n_keep
    if n_prune == 0:
        return torch.ones_like(scores, dtype=torch.bool)
    if flat.device.type == "cpu" and flat.dtype in (torch.float32, torch.float64):   # NumPy's selection: the same value, ~2× faster
        threshold = torch.as_tensor(np.partition(flat.detach().numpy(), n_prune - 1)[n_prune - 1])
    else:
        threshold = flat.kthvalue(n_prune).values
    keep = flat > threshold
    ties = (flat == threshold).nonzero().flatten()
    below = flat.numel() - int(torch.count_nonzero(keep)) - len(ties)
    keep[ties[n_prune - below:]] = True
    return keep.reshape(scores.shape)


def kept_count(sparsity: float, n: int) -> int:
    """Return how many of ``n`` entries survive ``sparsity``: ``n - round(sparsity * n)``, at least 1 (a layer is never emptied)."""
    return n - min(round(sparsity * n), max(n - 1, 0))


def row_norms(weight: torch.Tensor, norm: int = 1) -> torch.Tensor:
    """Return the L1 (``Σ|w|``, ``norm=1``) or L2 (``sqrt(Σw²)``, ``norm=2``) norm of each output row / filter ``weight[i]``.

    Shape ``(n_out,)``, float32 on the CPU; the norm runs over all dimensions but the first, so a
    Linear weight ``(n_out, n_in)`` gives its rows' norms and a Conv2d weight ``(C_out, C_in, kH, kW)`` its filters'.
    """
    check_choice("norm", norm, (1, 2))
    rows = weight.detach().float().cpu().flatten(1)
    return rows.abs().sum(1) if norm == 1 else rows.pow(2).sum(1).sqrt()


ORDERS = ("smallest", "largest", "random")


def prune_weights(w: torch.Tensor, sparsity: float, order: str = "smallest", *, seed: int = 0) -> torch.Tensor:
    """Return a copy of ``w`` (any shape) with ``round(sparsity * n)`` of its ``n`` entries set to 0, at most ``n - 1``.

    Args:
        w: weights of any shape — one neuron's ``(n,)`` or a whole matrix; the ranking runs over every entry.
        sparsity: fraction to zero, in [0, 1).
        order: which go first — ``"smallest"`` |w| (magnitude pruning), ``"largest"`` |w|, or ``"random"``.
        seed: seed of the ``"random"`` order.

    The shape (and so the work of a dense kernel) is unchanged: this is unstructured pruning.

    Examples:
        >>> int((prune_weights(torch.arange(1.0, 17.0).reshape(4, 4), 0.5) == 0).sum())
        8
    """
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"w must be a tensor, got {type(w).__name__}")
    sparsity = check_fraction("sparsity", sparsity)
    check_choice("order", order, ORDERS)
    w = w.detach()
    if order == "random":   # score = position in a random permutation
        scores = torch.empty(w.numel(), dtype=torch.float64)   # float64: exact positions beyond 2**24 weights
        scores[torch.randperm(w.numel(), generator=torch.Generator().manual_seed(seed))] = torch.arange(w.numel(), dtype=scores.dtype)
    else:
        scores = magnitude_scores(w).reshape(-1) * (1 if order == "smallest" else -1)
    keep = keep_largest(scores, kept_count(sparsity, w.numel())).to(w.device)
    return w.masked_fill(~keep.reshape(w.shape), 0)


def _protect_largest(score: torch.Tensor) -> torch.Tensor:
    """A copy of one layer's ``score`` whose largest surviving entry is ``+inf``, so no count prunes it (the layer-never-emptied rule)."""
    score = score.clone()
    if (score >= 0).any():
        score.view(-1)[score.argmax()] = float("inf")
    return score


def _target_count(name: str, sparsity: float, n: int, current_zeros: int, protected: int = 1) -> int:
    """``round(sparsity * n)``, at most ``n - protected`` (every layer keeps a weight), never fewer than ``current_zeros``."""
    n_prune = min(round(sparsity * n), max(n - protected, current_zeros))
    if n_prune < current_zeros:
        raise ValueError(
            f"{name}: sparsity {sparsity!r} would prune {n_prune} of {n} weights, but the current mask already "
            f"prunes {current_zeros}; pruned weights cannot be revived — ask for sparsity >= {current_zeros / n:.4f}"
        )
    return n_prune


def layerwise_magnitude_mask(
    model: nn.Module,
    sparsity: float | Mapping[str, float],
    *,
    names: Iterable[str] | None = None,
    current_mask: Mask | None = None,
    norm: int = 1,
) -> Mask:
    """Return a mask that prunes the smallest-magnitude weights of each layer separately.

    Args:
        model: the network whose weights are scored.
        sparsity: target fraction of zeros in every layer, or ``{name: sparsity}`` per layer
            (e.g. a lower rate for the output layer); names missing from the dict are not pruned.
        names: parameters to prune (default: :func:`prunable_names`, the weights of all Linear and Conv layers, not biases).
        current_mask: an existing mask; its pruned weights stay pruned and count toward the sparsity.
        norm: 1 (L1, ``|w|``) or 2 (L2, ``w²``) scores.

    Returns:
        A new mask ``{name: bool tensor}`` (on the CPU) with exactly ``round(s * n)`` zeros per layer,
        but at most ``n - 1``: a layer is never emptied (see the module's docstring).

    Raises:
        KeyError: ``names`` or ``current_mask`` name a parameter the model lacks (the message lists its parameters).
        ValueError: ``names`` is empty, a sparsity outside [0, 1) (NaN included), or one below ``current_mask``'s.
        TypeError: a sparsity that is not a number, or ``names`` given as one string.

    Examples:
        >>> layer = nn.Linear(8, 5)          # 40 weights: round(0.99 * 40) = 40, but one is kept
        >>> int(layerwise_magnitude_mask(layer, 0.99)["weight"].sum())
        1
    """
    names = _names_to_prune(model, names, current_mask)
    per_layer = layer_sparsities(sparsity, names)
    scores = _scores(model, names, current_mask, norm)
    mask = {}
    for name, score in scores.items():
        current_zeros = int((score < 0).sum())
        n_prune = _target_count(name, per_layer.get(name, 0.0), score.numel(), current_zeros) if name in per_layer else current_zeros
        mask[name] = keep_largest(_protect_largest(score), score.numel() - n_prune)
    return mask


def global_magnitude_mask(
    model: nn.Module,
    sparsity: float,
    *,
    names: Iterable[str] | None = None,
    current_mask: Mask | None = None,
    norm: int = 1,
) -> Mask:
    """Return a mask that prunes the smallest-magnitude weights across all chosen layers at once.

    Same arguments as :func:`layerwise_magnitude_mask`, but ``sparsity`` (one float) is reached over
    the union of the layers, so layers with many small weights lose more. Equals
    ``torch.nn.utils.prune.global_unstructured(..., pruning_method=prune.L1Unstructured, amount=sparsity)``
    on the same weights — except that no layer is emptied: each layer's largest surviving weight is
    kept, so at most ``N - L`` of the ``N`` weights of ``L`` layers are pruned.
    """
    sparsity = check_fraction("sparsity", sparsity)
    names = _names_to_prune(model, names, current_mask)
    scores = _scores(model, names, current_mask, norm)
    flat = torch.cat([_protect_largest(score).reshape(-1) for score in scores.values()])
    alive_layers = sum(int((score >= 0).any()) for score in scores.values())
    n_prune = _target_count("global", sparsity, flat.numel(), int((flat < 0).sum()), protected=alive_layers)
    keep = keep_largest(flat, flat.numel() - n_prune).split([score.numel() for score in scores.values()])
    return {name: part.reshape(score.shape) for (name, score), part in zip(scores.items(), keep)}


def layer_sparsities(sparsity: float | Mapping[str, float], names: list[str]) -> dict[str, float]:
    """Return ``{name: sparsity}`` for one sparsity given to all ``names`` or a checked ``{name: sparsity}`` for some of them."""
    if isinstance(sparsity, Mapping):
        unknown = set(sparsity) - set(names)
        if unknown:
            raise KeyError(f"sparsity names layers that are not pruned here: {sorted(unknown)}; prunable: {names}")
        return {name: check_fraction(f"sparsity[{name!r}]", value) for name, value in sparsity.items()}
    value = check_fraction("sparsity", sparsity)
    return {name: value for name in names}


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mask) -> nn.Module:
    """Zero the pruned weights of ``model`` in place (``W ← W ⊙ M``) and return it."""
    check_mask(model, mask)
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        params[name].mul_(keep.to(device=params[name].device, dtype=params[name].dtype))
    return model


def sparsity(mask: Mask) -> float:
    """Return the fraction of pruned (zero) entries over all tensors of ``mask``."""
    total = sum(keep.numel() for keep in mask.values())
    return 1.0 - sum(int(keep.sum()) for keep in mask.values()) / total if total else 0.0


def sparsity_report(model: nn.Module, mask: Mask | None = None) -> list[dict[str, object]]:
    """Return one row per prunable weight plus a ``"total"`` row: name, shape, weights, zeros, sparsity.

    Zeros are counted in the model's weights (``mask=None``) or in the mask.
    """
    params = dict(model.named_parameters())
    rows, total, zeros = [], 0, 0
    for name in (mask.keys() if mask is not None else prunable_names(model)):
        n = params[name].numel()
        z = int((~mask[name].bool()).sum()) if mask is not None else int((params[name] == 0).sum())
        rows.append({"name": name, "shape": tuple(params[name].shape), "weights": n, "zeros": z, "sparsity": z / n})
        total, zeros = total + n, zeros + z
    rows.append({"name": "total", "shape": (), "weights": total, "zeros": zeros, "sparsity": zeros / total if total else 0.0})
    return rows


def format_sparsity_report(rows: list[dict[str, object]]) -> str:
    """Return :func:`sparsity_report`'s rows as a fixed-width text table."""
    lines = [f"{'parameter':<14}{'shape':>14}{'weights':>10}{'pruned':>10}{'sparsity':>10}"]
    for row in rows:
        shape = "x".join(map(str, row["shape"]))
        lines.append(f"{row['name']:<14}{shape:>14}{row['weights']:>10}{row['zeros']:>10}{row['sparsity']:>10.1%}")
    return "\n".join(lines)


def to_torch_prune(model: nn.Module, mask: Mask) -> nn.Module:
    """Attach ``mask`` with ``torch.nn.utils.prune.custom_from_mask`` (``weight_orig`` + ``weight_mask``) and return the model."""
    check_mask(model, mask)
    modules = dict(model.named_modules())
    for name, keep in mask.items():
        module_name, _, param_name = name.rpartition(".")
        module = modules[module_name]
        torch_prune.custom_from_mask(module, param_name, keep.to(module.weight.device))
    return model


def from_torch_prune(model: nn.Module, *, make_permanent: bool = False) -> Mask:
    """Return the masks ``torch.nn.utils.prune`` attached to ``model`` as a :data:`Mask`.

    With ``make_permanent``, also call ``prune.remove`` on each: the zeros are written into the
    ordinary parameter and the reparametrisation (``*_orig``, ``*_mask``, the forward pre-hook) is dropped.
    """
    mask = {}
    for module_name, module in model.named_modules():
        for buffer_name, buffer in list(module.named_buffers(recurse=False)):
            if buffer_name.endswith("_mask"):
                param_name = buffer_name[: -len("_mask")]
                mask[f"{module_name}.{param_name}" if module_name else param_name] = buffer.detach().bool().cpu().clone()
                if make_permanent:
                    torch_prune.remove(module, param_name)
    return mask
