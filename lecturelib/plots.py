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
