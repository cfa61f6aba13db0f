"""Figures of the course, with one palette so a colour means the same thing in every chapter.

Functions take data (histories, arrays, pruned weights) and return the matplotlib ``Axes`` they drew on;
they never train or prune anything, which keeps notebook outputs stable. Every chapter draws with them;
the section comments below name the chapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

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


def plot_mean_band(
    ax: plt.Axes,
    x: Sequence[float],
    runs: np.ndarray,
    *,
    label: str,
    color: str,
    marker: str = "o",
    scale: float = 1.0,
) -> plt.Axes:
    """Draw the mean over runs (rows of ``runs``, shape ``(seeds, len(x))``, multiplied by ``scale``: 100 for percent) with a min–max band."""
    runs = np.atleast_2d(np.asarray(runs, dtype=float)) * scale
    ax.plot(x, runs.mean(0), marker=marker, ms=4, color=color, label=f"{label} (mean of {len(runs)})" if len(runs) > 1 else label)
    if len(runs) > 1:
        ax.fill_between(x, runs.min(0), runs.max(0), color=color, alpha=0.2, lw=0)
    return ax


def _as_image(values):
    """``values`` as a square image when their count is a square (an MNIST-like input), else as one row."""
    values = np.asarray(values, dtype=float)
    side = int(round(np.sqrt(values.size)))
    return values.reshape((side, side) if side * side == values.size else (1, values.size))


def plot_weighted_sum_terms(w, x) -> np.ndarray:
    """Draw the input ``x``, the weights ``w`` and the terms ``w_i x_i`` as images (three panels); return the axes."""
    _, axes = plt.subplots(1, 3, figsize=(FIGSIZE[0], 2.8))
    w, x = np.asarray(w, dtype=float), np.asarray(x, dtype=float)
    panels = [("input $x_i$", x, "gray_r"), ("weights $w_i$", w, "RdBu_r"), ("terms $w_i x_i$", w * x, "RdBu_r")]
    for ax, (title, values, cmap) in zip(axes, panels):
        limit = np.abs(values).max() or 1.0
        vmin = -limit if cmap == "RdBu_r" else values.min()
        image = ax.imshow(_as_image(values), cmap=cmap, vmin=vmin, vmax=limit)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
        plt.colorbar(image, ax=ax, shrink=0.8)
    return axes


def plot_pruned_weighted_sum(w, x, pruned: Mapping[str, object], *, fig=None) -> plt.Figure:
    """Left: the terms ``w_i x_i`` left in ``pruned["smallest"]`` (pruned ones crossed out). Right: the weighted
    sum S of ``w`` and of each pruned copy ``pruned[order]`` (``"smallest"``, ``"random"``, ``"largest"``: from
    :func:`lecturelib.pruning.prune_weights` at one sparsity)."""
    fig = fig if fig is not None else plt.figure(figsize=FIGSIZE)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    w_t, x_t = _tensor(w), _tensor(x)
    kept = _tensor(pruned["smallest"])
    limit = np.abs((w_t * x_t).numpy()).max() or 1.0
    left.imshow(_as_image((kept * x_t).numpy()), cmap="RdBu_r", vmin=-limit, vmax=limit)
    rows, cols = np.nonzero(_as_image((kept == 0).numpy()))
    left.scatter(cols, rows, marker="x", s=14, color=COLORS["random"], linewidths=0.8)
    left.set_title(f"terms kept ({float((kept == 0).float().mean()):.0%} of weights pruned)")
    left.set_xticks([]), left.set_yticks([]), left.grid(False)
    s = float(x_t @ w_t)
    orders = [("smallest |w|", "smallest", COLORS["retrained"]), ("random", "random", COLORS["random"]), ("largest |w|", "largest", COLORS["pruned"])]
    values = [float(x_t @ _tensor(pruned[order])) for _, order, _ in orders]
    right.barh(["unpruned"] + [label for label, _, _ in orders], [s] + values, color=[COLORS["dense"]] + [c for *_, c in orders])
    right.axvline(s, color=COLORS["dense"], lw=1, ls="--")
    right.set_xlabel("weighted sum S (logit)")
    right.set_title(f"S = {s:.2f}; pruning the smallest gives {values[0]:.2f}")
    return fig


def plot_sum_change(sparsities, changes, *, ax=None, title: str | None = None) -> plt.Axes:
    """Draw ``changes[order]`` (from :func:`lecturelib.importance.sum_change`) against the sparsity (%)."""
    ax = ax if ax is not None else plt.gca()
    colors = {"smallest": COLORS["retrained"], "random": COLORS["random"], "largest": COLORS["pruned"]}
    for order, values in changes.items():
        ax.plot(100 * np.asarray(sparsities), np.asarray(values), marker="o", ms=3, color=colors.get(order), label=f"{order} |w| first" if order != "random" else "random order")
    return _label_axes(ax, xlabel="weights set to zero (%)", ylabel="mean |ΔS| / std(S)", title=title, legend=True)


def _tensor(values):
    """``values`` as a float32 CPU tensor (accepts tensors, arrays and lists)."""
    import torch

    return values.detach().float().cpu() if hasattr(values, "detach") else torch.as_tensor(np.asarray(values), dtype=torch.float32)


# --- Chapters 9-10: lottery tickets, rewinding and stability (lecturelib.lottery, lecturelib.stability) ---

def plot_sparsity_curves(
    ax: plt.Axes,
    weights_left: Sequence[float],
    curves: Mapping[str, tuple[np.ndarray, str]],
    *,
    ylabel: str,
    percent: bool = False,
    title: str | None = None,
) -> plt.Axes:
    """Draw one mean-and-range curve per label against the fraction of weights left (log axis, reversed).

    Args:
        ax: where to draw.
        weights_left: fraction of weights kept at each level, shape ``(levels,)`` (1.0 = dense).
        curves: ``{label: (values of shape (seeds, levels), colour)}``.
        ylabel: the y-axis label (with its unit).
        percent: multiply fractions by 100 (accuracies).
        title: the title (state the finding).
    """
    x = 100 * np.asarray(weights_left, dtype=float)
    for label, (values, color) in curves.items():
        plot_mean_band(ax, x, values, label=label, color=color, scale=100 if percent else 1)
    ax.set_xscale("log")
    ax.set_xlim(x.max() * 1.15, x.min() / 1.15)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    return _label_axes(ax, xlabel="weights left (%, log scale)", ylabel=ylabel, title=title, legend=True)


def plot_interpolation(
    ax: plt.Axes,
    paths: Mapping[str, Sequence[Mapping]],
    *,
    metric: str = "errors",
    title: str | None = None,
) -> plt.Axes:
    """Draw error (%) or loss along the linear path between two trained copies, mean over seeds per label.

    Args:
        ax: where to draw.
        paths: ``{label: [instability result dicts, one per seed]}``, each with ``"alphas"`` and ``metric``
            (:meth:`lecturelib.stability.Instability.to_dict`).
        metric: ``"errors"`` (drawn in %) or ``"losses"`` (cross-entropy).
        title: the title (state the finding).
    """
    cmap = plt.get_cmap("viridis")
    for i, (label, runs) in enumerate(paths.items()):
        color = cmap(i / max(len(paths) - 1, 1) * 0.85)
        plot_mean_band(ax, runs[0]["alphas"], [run[metric] for run in runs], label=label, color=color, marker=".",
                       scale=100 if metric == "errors" else 1)
    ylabel = "test error (%)" if metric == "errors" else "test loss (cross-entropy)"
    return _label_axes(ax, xlabel="interpolation coefficient α (0 = copy 1, 1 = copy 2)", ylabel=ylabel, title=title, legend=True)


def plot_barrier_vs_k(
    ax: plt.Axes,
    ks: Sequence[int],
    curves: Mapping[str, tuple[np.ndarray, str]],
    *,
    percent: bool = True,
    ylabel: str = "error barrier (percentage points)",
    title: str | None = None,
) -> plt.Axes:
    """Draw the barrier against the rewind iteration k: ``{label: (values of shape (seeds, len(ks)), colour)}``.

    The x axis is symmetric-log so that k = 0 is shown; a dashed line marks 0 (stable).
    """
    for label, (values, color) in curves.items():
        plot_mean_band(ax, ks, values, label=label, color=color, scale=100 if percent else 1)
    ax.axhline(0, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("symlog", linthresh=max(min(k for k in ks if k > 0), 1) if any(k > 0 for k in ks) else 1)
    ax.set_xticks(list(ks), [str(k) for k in ks])
    return _label_axes(ax, xlabel="rewind iteration k", ylabel=ylabel, title=title, legend=True)


# --- Chapters 2-4: gains and costs, weight distributions, dropout (lecturelib.latency, .distributions, .dropout, .regularization) ---

def plot_weight_histograms(
    counts: Mapping[str, Mapping[str, Sequence[float]]],
    edges: Mapping[str, Sequence[float]],
    *,
    colors: Mapping[str, str] | None = None,
    fig: plt.Figure | None = None,
    title: str | None = None,
    density: bool = False,
) -> np.ndarray:
    """Draw weight histograms: one row per layer, one column per state, shared x per row and shared y per row.

    Args:
        counts: ``{state: {layer: counts per bin}}``, e.g. states ``"before"``, ``"pruned"``,
            ``"retrained"``; counts from :func:`lecturelib.distributions.survivor_histogram`.
        edges: ``{layer: bin edges}`` (``len(counts) + 1`` values), the same for every state.
        colors: ``{state: colour}``; default: ``COLORS[state]`` where it exists.
        fig: figure to draw into (default: a new one, page width).
        title: the figure's title.
        density: draw each histogram as the percentage of *its own* weights per bin (each panel
            sums to 100 %) instead of counts. After pruning 90 % of a layer only a tenth of the
            weights are left, and on counts shared with the dense row their bars are too low to
            read; as percentages the shapes compare directly.

    Returns:
        The axes, shape ``(layers, states)``.
    """
    states = list(counts)
    layers = list(edges)
    fig = fig if fig is not None else plt.figure(figsize=(FIGSIZE[0], 1.7 * len(layers) + 0.6))
    axes = np.atleast_2d(fig.subplots(len(layers), len(states), sharex="row", sharey="row", squeeze=False))
    palette = {**{s: COLORS.get(s, f"C{i}") for i, s in enumerate(states)}, **(colors or {})}
    for row, layer in enumerate(layers):
        e = np.asarray(edges[layer], dtype=float)
        for col, state in enumerate(states):
            ax = axes[row, col]
            values = np.asarray(counts[state][layer], dtype=float)
            if density and values.sum() > 0:
                values = 100 * values / values.sum()
            ax.stairs(values, e, fill=True, color=palette[state], alpha=0.85)
            if row == 0:
                ax.set_title(state)
            if col == 0:
                ax.set_ylabel(f"{layer}\n{'% of its weights' if density else 'weights'} per bin")
            if row == len(layers) - 1:
                ax.set_xlabel("weight value")
    if title:
        fig.suptitle(title)
    return axes


def plot_learning_curves(
    ax: plt.Axes,
    curves: Mapping[str, tuple[Sequence[float], np.ndarray]],
    *,
    ylabel: str,
    percent: bool = False,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
    marker: str = "",
) -> plt.Axes:
    """Draw learning curves (mean over seeds with a min–max band), one per label.

    Args:
        ax: where to draw.
        curves: ``{label: (iterations (T,), values (seeds, T))}``.
        ylabel: y-axis label with its unit.
        percent: multiply the values by 100 (accuracies given as fractions).
        colors: ``{label: colour}``; default: ``COLORS[label]`` where it exists.
        title: the title (state the finding).
    """
    for i, (label, (iterations, values)) in enumerate(curves.items()):
        color = (colors or {}).get(label, COLORS.get(label, f"C{i}"))
        plot_mean_band(ax, np.asarray(iterations), values, label=label, color=color, marker=marker, scale=100 if percent else 1)
    return _label_axes(ax, xlabel="training iteration (optimiser steps)", ylabel=ylabel, title=title, legend=True)


def plot_per_seed(
    ax: plt.Axes,
    values: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    percent: bool = False,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
) -> plt.Axes:
    """Draw one dot per seed and a bar at the mean for each label: the spread over seeds at a glance."""
    for i, (label, vals) in enumerate(values.items()):
        vals = np.asarray(vals, dtype=float) * (100 if percent else 1)
        color = (colors or {}).get(label, COLORS.get(label, f"C{i}"))
        ax.bar(i, vals.mean(), color=color, alpha=0.35, width=0.6)
        ax.scatter(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, color=color, s=18, zorder=3)
    ax.set_xticks(range(len(values)), list(values))
    return _label_axes(ax, ylabel=ylabel, title=title)


def plot_latency(
    ax: plt.Axes,
    stats: Mapping[str, object],
    *,
    baseline: str,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
) -> plt.Axes:
    """Draw horizontal bars of median latency relative to ``baseline`` (1 = as fast), with IQR whiskers.

    Args:
        stats: ``{label: LatencyStats}`` from :func:`lecturelib.latency.compare_latency`.
        baseline: the label the others are divided by.
    """
    base = stats[baseline].median
    labels = list(stats)
    medians = np.array([stats[k].median / base for k in labels])
    errors = np.array([[(stats[k].median - stats[k].q1) / base, (stats[k].q3 - stats[k].median) / base] for k in labels]).T
    bar_colors = [(colors or {}).get(k, COLORS["dense"] if k == baseline else f"C{i}") for i, k in enumerate(labels)]
    ax.barh(labels, medians, xerr=errors, color=bar_colors, alpha=0.85)
    ax.axvline(1.0, color=COLORS["dense"], ls="--", lw=1)
    ax.invert_yaxis()
    return _label_axes(ax, xlabel=f"median latency relative to {baseline} (×)", title=title)


def plot_dropout_masks(ax: plt.Axes, masks, *, title: str | None = None) -> plt.Axes:
    """Draw sampled masks ``(steps, units)`` as an image: a dark cell is a unit switched off at that step."""
    image = np.asarray(masks, dtype=float)
    ax.imshow(image, cmap="Greys_r", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.grid(False)
    return _label_axes(ax, xlabel="hidden unit", ylabel="training step", title=title)


def plot_ensemble_accuracy(
    ax: plt.Axes,
    ensemble_acc: Sequence[float],
    member_acc: Sequence[float],
    inference_acc: float,
    *,
    title: str | None = None,
) -> plt.Axes:
    """Draw the accuracy of the average of k sampled dropout sub-networks against k, the single
    sub-networks' accuracies, and the one inference-time network (all units on, no sampling)."""
    ens = 100 * np.asarray(ensemble_acc, dtype=float)
    k = np.arange(1, len(ens) + 1)
    ax.plot(k, ens, color=COLORS["dropout"], label="average of k sub-networks (MC dropout)")
    ax.scatter(k, 100 * np.asarray(member_acc, dtype=float), s=8, color=COLORS["random"], label="one sub-network alone")
    ax.axhline(100 * inference_acc, color=COLORS["dense"], ls="--", lw=1, label="inference network (all units on)")
    ax.set_xscale("log")
    return _label_axes(ax, xlabel="sub-networks averaged, k (log scale)", ylabel="test accuracy (%)", title=title, legend=True)


# --- Chapters 3, 5-8: surviving weights, the pruning loop and sparsity curves (lecturelib.iterative) ---

def plot_ratio_curves(
    axes: Sequence[plt.Axes],
    sparsities: Sequence[float],
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, str, str]],
    *,
    dense_acc: float | None = None,
    title: str | None = None,
) -> Sequence[plt.Axes]:
    """Draw accuracy (``axes[0]``) and loss (``axes[1]``) against the fraction of weights pruned, one mean-and-range curve per label.

    Args:
        axes: two Axes (accuracy, loss).
        sparsities: fractions of weights pruned, shape ``(n,)``; drawn in percent.
        curves: ``{label: (accuracies (seeds, n) as fractions, losses (seeds, n), colour, linestyle)}``.
        dense_acc: the unpruned accuracy (fraction), drawn as a dotted reference line.
        title: the figure's title (state the finding).
    """
    x = 100 * np.asarray(sparsities, dtype=float)
    for label, (accs, losses, color, style) in curves.items():
        for ax, values in ((axes[0], 100 * np.atleast_2d(np.asarray(accs, dtype=float))), (axes[1], np.atleast_2d(np.asarray(losses, dtype=float)))):
            ax.plot(x, values.mean(0), marker="o", ms=3.5, color=color, ls=style, label=label)
            if len(values) > 1:
                ax.fill_between(x, values.min(0), values.max(0), color=color, alpha=0.15, lw=0)
    if dense_acc is not None:
        axes[0].axhline(100 * dense_acc, color=COLORS["dense"], ls=":", lw=1, label="dense")
    axes[0].set(xlabel="weights pruned (%)", ylabel="test accuracy (%)")
    axes[1].set(xlabel="weights pruned (%)", ylabel="test loss (cross-entropy)", yscale="log")
    axes[0].legend(loc="lower left")
    if title:
        axes[0].figure.suptitle(title, fontsize=11)
    return axes


def plot_surviving_histogram(ax: plt.Axes, weights, pruned, edges) -> plt.Axes:
    """Draw the histogram of ``weights`` (outline) and of the weights that survive in ``pruned`` (filled; e.g.
    :func:`lecturelib.pruning.prune_weights`), on the fixed bin ``edges``; the title gives the count and threshold."""
    from . import distributions

    flat, pruned, edges = _tensor(weights).reshape(-1), _tensor(pruned).reshape(-1), _tensor(edges)
    alive = distributions.survivors(pruned)
    removed = len(flat) - len(alive)
    threshold = float(alive.abs().min()) if len(alive) else float("inf")
    ax.stairs(distributions.survivor_histogram(flat, edges).numpy(), edges.numpy(), color=COLORS["random"], label="before pruning")
    ax.stairs(distributions.survivor_histogram(pruned, edges).numpy(), edges.numpy(), fill=True, alpha=0.8,
              color=COLORS["pruned"], label="surviving weights")
    return _label_axes(ax, xlabel="weight value", ylabel="weights per bin", legend=True,
                       title=f"{removed / len(flat):.0%} pruned: {removed} weights with |w| < {threshold:.3f} removed")


def _label_axes(ax: plt.Axes, *, xlabel: str | None = None, ylabel: str | None = None,
                title: str | None = None, legend: bool = False) -> plt.Axes:
    """Set the axis labels, the title (when given) and the legend of ``ax``; return ``ax``."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend()
    return ax


# --------------------------------------------------------------------------------------------
# The experiments' figures (chapters 9-10; `python -m lecturelib run` saves them as PNG).
# --------------------------------------------------------------------------------------------

def experiment_figures(record: Mapping) -> dict[str, plt.Figure]:
    """Return ``{name: matplotlib Figure}`` drawing a :func:`lecturelib.experiments.run` record (the CLI saves them as PNG)."""
    from .experiments import barrier_matrix, level_metric

    experiment, results = record["experiment"], record["results"]
    figs = {}
    if experiment in ("lottery", "digits_lottery"):
        fig, (left, right) = plt.subplots(1, 2, figsize=FIGSIZE)
        plot_sparsity_curves(left, results["weights_left"], {
            "winning ticket (reset to W_0)": (level_metric(results["runs"]["ticket"], "best_test_acc"), COLORS["ticket"]),
            "random re-init": (level_metric(results["runs"]["random"], "best_test_acc"), COLORS["random"]),
        }, ylabel="test accuracy at early stopping (%)", percent=True)
        plot_sparsity_curves(right, results["weights_left"], {
            "winning ticket": (level_metric(results["runs"]["ticket"], "best_iteration"), COLORS["ticket"]),
            "random re-init": (level_metric(results["runs"]["random"], "best_iteration"), COLORS["random"]),
        }, ylabel="early-stopping iteration")
        figs["tickets"] = fig
    elif experiment in ("rewinding", "noisy_rewinding"):
        fig, ax = plt.subplots(figsize=FIGSIZE)
        # with a validation split: the early-stopping accuracy; without (rewinding's ci): the annealed end's
        key, ylabel = (("best_test_acc", "test accuracy at early stopping (%)") if record["config"].get("val_fraction")
                       else ("final_test_acc", "final test accuracy (%)"))
        curves = {("reset to W_0" if k == "0" else f"rewind to W_{k}"): (level_metric(runs, key), COLORS["ticket" if k == "0" else "rewind"])
                  for k, runs in results["runs"].items()}
        plot_sparsity_curves(ax, results["weights_left"], curves, ylabel=ylabel, percent=True)
        figs[experiment] = fig
    else:
        loss = experiment == "noisy_stability"   # its error barrier is within test-set noise; its loss barrier is not
        fig, (left, right) = plt.subplots(1, 2, figsize=FIGSIZE)
        plot_interpolation(left, {f"k = {k}": runs for k, runs in results["by_k"].items()}, metric="losses" if loss else "errors")
        ks, values = barrier_matrix(results["by_k"], "loss_barrier" if loss else "error_barrier")
        plot_barrier_vs_k(right, ks, {"dense": (values, COLORS["dense"])},
                                **({"percent": False, "ylabel": "loss barrier (nats)"} if loss else {}))
        figs[experiment] = fig
    for name, fig in figs.items():
        fig.suptitle(f"{experiment} ({record['config_hash']})", fontsize=9)
    return figs
