"""Figures of the course, with one palette so a colour means the same thing in every chapter.

Functions take data (histories, arrays) and return the matplotlib ``Axes`` they drew on; they never
train anything, which keeps notebook outputs stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .training import History

# One colour per idea, used by every chapter (colour-blind safe: Okabe & Ito).
COLORS = {
    "dense": "#000000",      # the unpruned network
    "pruned": "#E69F00",     # pruned, not retrained
    "retrained": "#0072B2",  # pruned and fine-tuned / retrained with the mask
    "dropout": "#009E73",    # dropout
    "ticket": "#D55E00",     # lottery ticket (reset or rewound weights)
    "random": "#999999",     # random re-initialisation / random pruning control
    "rewind": "#CC79A7",     # rewinding to iteration k
    "structured": "#56B4E9", # channel / filter pruning
    "highlight": "#F0E442",
}

FIGSIZE = (7.5, 3.6)  # inches: page width of the rendered book, two panels side by side


def use_style() -> None:
    """Set matplotlib defaults that read well at the rendered book's page width."""
    plt.rcParams.update({
        "figure.figsize": FIGSIZE,
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "figure.constrained_layout.use": True,
    })


def plot_history(
    histories: Mapping[str, History],
    metric: str = "test_acc",
    *,
    ax: plt.Axes | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
) -> plt.Axes:
    """Draw ``metric`` (e.g. ``"test_acc"``, ``"train_loss"``) against iteration, one line per labelled history."""
    ax = ax if ax is not None else plt.gca()
    for i, (label, history) in enumerate(histories.items()):
        values = np.asarray(getattr(history, metric), dtype=float)
        if metric.endswith("acc"):
            values = 100 * values
        color = (colors or {}).get(label, f"C{i}")
        ax.plot(history.iteration[: len(values)], values, label=label, color=color)
    ax.set_xlabel("training iteration (optimiser steps)")
    ax.set_ylabel(_metric_label(metric))
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def plot_mean_band(
    ax: plt.Axes,
    x: Sequence[float],
    runs: np.ndarray,
    *,
    label: str,
    color: str,
    marker: str = "o",
) -> plt.Axes:
    """Draw the mean over runs (rows of ``runs``, shape ``(seeds, len(x))``) with a min–max band."""
    runs = np.atleast_2d(np.asarray(runs, dtype=float))
    ax.plot(x, runs.mean(0), marker=marker, ms=4, color=color, label=f"{label} (mean of {len(runs)})" if len(runs) > 1 else label)
    if len(runs) > 1:
        ax.fill_between(x, runs.min(0), runs.max(0), color=color, alpha=0.2, lw=0)
    return ax


def _metric_label(metric: str) -> str:
    split, _, kind = metric.partition("_")
    return f"{split} {'accuracy (%)' if kind == 'acc' else 'loss (cross-entropy)'}"


def _as_image(values, shape=None):
    values = np.asarray(values, dtype=float)
    if shape is None:
        side = int(round(np.sqrt(values.size)))
        shape = (side, side) if side * side == values.size else (1, values.size)
    return values.reshape(shape)


def plot_weighted_sum_terms(w, x, *, axes=None, image_shape=None) -> np.ndarray:
    """Draw the input ``x``, the weights ``w`` and the terms ``w_i x_i`` as images (three panels); return the axes."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(FIGSIZE[0], 2.8))
    w, x = np.asarray(w, dtype=float), np.asarray(x, dtype=float)
    panels = [("input $x_i$", x, "gray_r"), ("weights $w_i$", w, "RdBu_r"), ("terms $w_i x_i$", w * x, "RdBu_r")]
    for ax, (title, values, cmap) in zip(axes, panels):
        limit = np.abs(values).max() or 1.0
        vmin = -limit if cmap == "RdBu_r" else values.min()
        image = ax.imshow(_as_image(values, image_shape), cmap=cmap, vmin=vmin, vmax=limit)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
        plt.colorbar(image, ax=ax, shrink=0.8)
    return axes


def plot_pruned_weighted_sum(w, x, ratio: float, *, fig=None) -> plt.Figure:
    """Left: the terms ``w_i x_i`` left after pruning the ``ratio`` smallest-|w| weights (pruned ones crossed out).
    Right: the weighted sum S after pruning that many weights by smallest |w|, largest |w| and at random."""
    from . import importance

    fig = fig if fig is not None else plt.figure(figsize=FIGSIZE)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    w_t, x_t = _tensor(w), _tensor(x)
    kept = importance.prune_weights(w_t, ratio, "smallest")
    terms = (kept * x_t).numpy()
    limit = np.abs((w_t * x_t).numpy()).max() or 1.0
    left.imshow(_as_image(terms), cmap="RdBu_r", vmin=-limit, vmax=limit)
    rows, cols = np.nonzero(_as_image((kept == 0).numpy()))
    left.scatter(cols, rows, marker="x", s=14, color=COLORS["random"], linewidths=0.8)
    left.set_title(f"terms kept ({ratio:.0%} of weights pruned)")
    left.set_xticks([]), left.set_yticks([]), left.grid(False)
    s = float(importance.weighted_sum(w_t, x_t))
    orders = [("smallest |w|", "smallest", COLORS["retrained"]), ("random", "random", COLORS["random"]), ("largest |w|", "largest", COLORS["pruned"])]
    values = [float(importance.weighted_sum(importance.prune_weights(w_t, ratio, order), x_t)) for _, order, _ in orders]
    right.barh(["unpruned"] + [label for label, _, _ in orders], [s] + values, color=[COLORS["dense"]] + [c for *_, c in orders])
    right.axvline(s, color=COLORS["dense"], lw=1, ls="--")
    right.set_xlabel("weighted sum S (logit)")
    right.set_title(f"S = {s:.2f}; pruning the smallest gives {values[0]:.2f}")
    return fig


def plot_sum_change(ratios, changes, *, ax=None, title: str | None = None) -> plt.Axes:
    """Draw ``changes[order]`` (from :func:`lecturelib.importance.sum_change`) against the pruning ratio (%)."""
    ax = ax if ax is not None else plt.gca()
    colors = {"smallest": COLORS["retrained"], "random": COLORS["random"], "largest": COLORS["pruned"]}
    for order, values in changes.items():
        ax.plot(100 * np.asarray(ratios), np.asarray(values), marker="o", ms=3, color=colors.get(order), label=f"{order} |w| first" if order != "random" else "random order")
    ax.set_xlabel("weights set to zero (%)")
    ax.set_ylabel("mean |ΔS| / std(S)")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def _tensor(values):
    """``values`` as a float32 CPU tensor (accepts tensors, arrays and lists)."""
    import torch

    return values.detach().float().cpu() if hasattr(values, "detach") else torch.as_tensor(np.asarray(values), dtype=torch.float32)
