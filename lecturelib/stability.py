"""Stability to SGD noise and linear mode connectivity (Frankle et al. 2020; Chapter 10, notebooks/10_rewinding_stability.ipynb).

From the weights ``W_k`` after ``k`` iterations, two copies are trained with different data orders
(two draws of the SGD noise *u*) to ``W_T¹`` and ``W_T²``. The network is evaluated along the
straight line ``(1 - α) W_T¹ + α W_T²``; the **error barrier** is the highest error on that line
minus the mean error of its two end points. A barrier ≈ 0 means the two solutions are *linearly mode
connected*: training from ``W_k`` is *stable* to SGD noise.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._checks import as_scalar, check_one_each, check_positive_int, checked_train_kwargs
from .data import Dataset
from .iterative import Snapshot, train_together
from .pruning import Mask
from .training import evaluate

State = Mapping[str, torch.Tensor]

# Frankle et al. (2020) call training from W_k stable to SGD noise when the error barrier between the two
# copies is below 2 % (percentage points of test error): "linearly mode connected" in their tables.
STABLE_BARRIER = 0.02


def interpolate(state_a: State, state_b: State, alpha: float) -> dict[str, torch.Tensor]:
    """Return the state dict ``(1 - alpha) * state_a + alpha * state_b``.

    Floating-point tensors are interpolated; others (integer buffers such as BatchNorm's counter)
    are copied from ``state_a``. ``alpha = 0`` gives ``state_a``, ``alpha = 1`` gives ``state_b``;
    values outside [0, 1] extrapolate.

    Raises:
        KeyError: the two states do not hold the same names.
        ValueError: a tensor's shape differs between the two states.
    """
    if set(state_a) != set(state_b):
        raise KeyError(f"the two states hold different tensors: {sorted(set(state_a) ^ set(state_b))}")
    mixed = {}
    for name, a in state_a.items():
        b = state_b[name]
        if a.shape != b.shape:
            raise ValueError(f"{name!r} has shape {tuple(a.shape)} in state_a but {tuple(b.shape)} in state_b")
        mixed[name] = torch.lerp(a, b.to(a.device), float(alpha)) if a.is_floating_point() else a.clone()
    return mixed


def _split(data: Dataset | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, Dataset):
        return data.x_test, data.y_test
    if isinstance(data, tuple) and len(data) == 2:
        return data
    raise TypeError(f"data must be a Dataset (its test split is used) or a tuple (x, y), got {type(data).__name__}")


def _alphas(alphas: Sequence[float] | int) -> np.ndarray:
    alphas = as_scalar(alphas)
    if isinstance(alphas, int) and not isinstance(alphas, bool):
        alphas = check_positive_int("alphas", alphas)
        if alphas < 2:
            raise ValueError(f"alphas must give at least the two end points, got {alphas!r}")
        return np.linspace(0.0, 1.0, alphas)
    values = np.asarray(alphas, dtype=float)
    if values.ndim != 1 or len(values) < 2 or values[0] != 0.0 or values[-1] != 1.0:
        raise ValueError(f"alphas must be a 1-D sequence from 0.0 to 1.0 (the two end points included), got {alphas!r}")
    return values


@torch.no_grad()
def path_metrics(
    model: nn.Module,
    state_a: State,
    state_b: State,
    data: Dataset | tuple[torch.Tensor, torch.Tensor],
    alphas: Sequence[float] | int = 11,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(alphas, errors, losses)`` of the networks on the line from ``state_a`` to ``state_b``.

    Args:
        model: a network of the states' architecture; its weights are overwritten.
        state_a, state_b: the two end points (``state_dict``s).
        data: a :class:`~lecturelib.data.Dataset` (its test split is used) or a tuple ``(x, y)``.
        alphas: the interpolation coefficients (from 0 to 1, end points included) or their number,
            evenly spaced.

    Returns:
        Three arrays of shape ``(len(alphas),)``: the coefficients, the error (1 - accuracy, a
        fraction in [0, 1]) and the mean cross-entropy loss at each.
    """
    x, y = _split(data)
    alphas = _alphas(alphas)
    errors, losses = np.empty(len(alphas)), np.empty(len(alphas))
    for i, alpha in enumerate(alphas):
        model.load_state_dict(interpolate(state_a, state_b, alpha))
        losses[i], acc = evaluate(model, x, y)
        errors[i] = 1.0 - acc
    return alphas, errors, losses


def barrier(values: Sequence[float]) -> float:
    """Return ``max(values) - (values[0] + values[-1]) / 2``: the height of a path above its end points' mean.

    Examples:
        >>> barrier([0.1, 0.3, 0.1])
        0.2
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"values must be a 1-D sequence of at least 2 numbers, got shape {values.shape}")
    return float(round(values.max() - (values[0] + values[-1]) / 2, 12))


def error_barrier(
    model: nn.Module,
    state_a: State,
    state_b: State,
    data: Dataset | tuple[torch.Tensor, torch.Tensor],
    alphas: Sequence[float] | int = 11,
) -> tuple[float, np.ndarray]:
    """Return ``(barrier, errors along the path)``: the error barrier between two trained networks.

    The barrier is the largest error on the linear path minus the mean error of the two end points
    (a fraction; ≥ 0 up to evaluation noise, 0 = linearly mode connected). Arguments as
    :func:`path_metrics`.
    """
    _, errors, _ = path_metrics(model, state_a, state_b, data, alphas)
    return barrier(errors), errors


def loss_barrier(
    model: nn.Module,
    state_a: State,
    state_b: State,
    data: Dataset | tuple[torch.Tensor, torch.Tensor],
    alphas: Sequence[float] | int = 11,
) -> tuple[float, np.ndarray]:
    """Return ``(barrier, losses along the path)``, as :func:`error_barrier` but for the cross-entropy loss (nats)."""
    _, _, losses = path_metrics(model, state_a, state_b, data, alphas)
    return barrier(losses), losses


@dataclass
class Instability:
    """The result of one instability analysis (:func:`instability_analysis`).

    ``errors`` / ``losses`` are measured on the test split at ``alphas``; ``error_barrier`` (a fraction)
    and ``loss_barrier`` (nats) are their :func:`barrier`; ``end_errors`` the errors of the two copies.
    """

    k: int
    alphas: list[float]
    errors: list[float]
    losses: list[float]
    error_barrier: float
    loss_barrier: float
    end_errors: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The result as plain JSON-ready values."""
        return {key: getattr(self, key) for key in ("k", "alphas", "errors", "losses", "error_barrier", "loss_barrier", "end_errors")}


def instability_analysis(
    model: nn.Module,
    data: Dataset,
    start: Snapshot,
    *,
    iterations: int,
    data_seeds: tuple[int, int] = (1, 2),
    mask: Mask | None = None,
    alphas: Sequence[float] | int = 11,
    train_kwargs: Mapping | None = None,
) -> Instability:
    """Train two copies from ``start`` = ``W_k`` with different data orders and measure the barrier between them.

    Args:
        model: a network of the snapshot's architecture; it is not changed (copies are trained).
        data: the dataset; the path is evaluated on its test split.
        start: the :class:`~lecturelib.iterative.Snapshot` ``W_k`` (its weights and its iteration
            ``k``, e.g. :attr:`lecturelib.lottery.IMPRun.rewind`); the two copies train for
            ``iterations - k`` further steps, so both end at iteration ``iterations``.
        iterations: the total training length ``T``.
        data_seeds: the two data-order seeds: the two draws of the SGD noise *u*.
        mask: train the sub-network ``mask ⊙ W_k`` (an IMP ticket) instead of the dense network.
        alphas: interpolation coefficients or their number (see :func:`path_metrics`).
        train_kwargs: further arguments of :func:`~lecturelib.training.train` (``lr``, ``lr_schedule``,
            ``batch_size``…). The copies continue the ``iterations``-step run from ``k``
            (``start_iteration=k``): its learning-rate schedule runs on from iteration ``k`` to the end,
            so a cosine or step schedule anneals both end points as it would the full run.

    Raises:
        ValueError: ``k`` >= ``iterations``, equal data seeds, or ``train_kwargs`` setting what this sets.
    """
    return instability_analyses(model, data, [start], iterations=iterations, data_seeds=[data_seeds], masks=[mask],
                                alphas=alphas, train_kwargs=train_kwargs)[0]


def instability_analyses(
    model: nn.Module,
    data: Dataset,
    starts: Sequence[Snapshot],
    *,
    iterations: int,
    data_seeds: Sequence[tuple[int, int]],
    masks: Sequence[Mask | None] | None = None,
    alphas: Sequence[float] | int = 11,
    train_kwargs: Mapping | None = None,
) -> list[Instability]:
    """:func:`instability_analysis` of several snapshots of one ``k`` (e.g. one per seed) at once; return one result per snapshot.

    The two copies of every snapshot — ``2 × len(starts)`` networks — train together
    (:func:`~lecturelib.iterative.train_together`), each as :func:`~lecturelib.training.train` takes it.
    ``data_seeds`` and ``masks`` hold one entry per snapshot (a pair of seeds; a mask or ``None``).

    Raises:
        ValueError: the snapshots' ``k`` differ or reach ``iterations``, a pair of equal data seeds,
            lists of the wrong length, or ``train_kwargs`` setting what this sets.
    """
    starts, data_seeds = list(starts), [tuple(pair) for pair in data_seeds]
    masks = [None] * len(starts) if masks is None else list(masks)
    check_one_each("snapshot", len(starts), data_seeds=data_seeds, masks=masks)
    k = starts[0].k
    if any(start.k != k for start in starts):
        raise ValueError(f"the snapshots must share one k (their copies train together), got {[start.k for start in starts]}")
    iterations = check_positive_int("iterations", iterations)
    if k >= iterations:
        raise ValueError(f"the snapshot's k must be smaller than iterations, got k={k!r}, iterations={iterations!r}")
    for pair in data_seeds:
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ValueError(f"data_seeds must be two different seeds, got {pair!r}")
    train_kwargs = checked_train_kwargs(train_kwargs, ("mask", "data_seed", "iterations", "epochs", "start_iteration"), "instability_analysis")
    copies = [copy.deepcopy(model) for _ in range(2 * len(starts))]
    for net, start in zip(copies, [start for start in starts for _ in range(2)]):   # two copies of each W_k
        net.load_state_dict(start.state)
    train_together(copies, data, masks=[mask for mask in masks for _ in range(2)], data_seeds=[s for pair in data_seeds for s in pair],
                   iterations=iterations - k, start_iteration=k, **train_kwargs)   # side by side; each as train would take it
    results, probe = [], copy.deepcopy(model).cpu()   # the network each path's points are loaded into
    for a, b in zip(copies[::2], copies[1::2]):
        ends = [{n: v.detach().cpu().clone() for n, v in copy_.state_dict().items()} for copy_ in (a, b)]
        path, errors, losses = path_metrics(probe, ends[0], ends[1], data, alphas)
        results.append(Instability(k=k, alphas=path.tolist(), errors=errors.tolist(), losses=losses.tolist(),
                                   error_barrier=barrier(errors), loss_barrier=barrier(losses),
                                   end_errors=[float(errors[0]), float(errors[-1])]))
    return results
