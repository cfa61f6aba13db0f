"""Interactive ipywidgets demos; each returns its widget and exposes an update callback that tests can call.

Every demo is a widget with an ``update(value)`` attribute: the callback the slider calls, which
redraws the demo's figure and returns it (also kept as the widget's ``figure`` attribute), so a test
can change the value and check what was drawn.
"""

from __future__ import annotations

import ipywidgets
import matplotlib.pyplot as plt
import torch

from . import importance, plots


def _slider_demo(draw, slider: ipywidgets.widgets.ValueWidget) -> ipywidgets.VBox:
    """Return ``VBox([slider, output])`` whose ``update(value)`` redraws ``draw(value)`` into the output."""
    output = ipywidgets.Output()

    def update(value):
        with output:
            output.clear_output(wait=True)
            fig = draw(value)
            plt.show()
        box.figure = fig
        return fig

    box = ipywidgets.VBox([slider, output])
    slider.observe(lambda change: update(change["new"]), names="value")
    box.update = update
    update(slider.value)
    return box


def weighted_sum_demo(w: torch.Tensor, x: torch.Tensor, *, ratio: float = 0.5) -> ipywidgets.VBox:
    """A slider over the pruning ratio that redraws :func:`lecturelib.plots.plot_pruned_weighted_sum`.

    Args:
        w: weights of one neuron, shape ``(n,)``.
        x: one input, shape ``(n,)``.
        ratio: initial fraction of the smallest-|w| weights set to zero.
    """
    slider = ipywidgets.FloatSlider(value=ratio, min=0.0, max=0.95, step=0.05, description="pruned", readout_format=".0%")

    def draw(value):
        fig = plt.figure(figsize=plots.FIGSIZE)
        plots.plot_pruned_weighted_sum(w, x, value, fig=fig)
        return fig

    return _slider_demo(draw, slider)


def pruning_histogram_demo(weights: torch.Tensor, *, ratio: float = 0.5, bins: int = 60) -> ipywidgets.VBox:
    """A slider over the pruning ratio that redraws the histogram of the weights that survive magnitude pruning.

    The bins stay fixed (those of the unpruned weights), so the hole around zero visibly widens as
    the ratio grows. The figure's title states how many weights are pruned and the threshold ``|w|``.

    Args:
        weights: a trained layer's weights (any shape; flattened).
        ratio: initial fraction of the smallest-|w| weights pruned.
        bins: number of equal-width bins.
    """
    from . import distributions

    flat = weights.detach().reshape(-1).float().cpu()
    edges = distributions.shared_edges([flat], bins)
    slider = ipywidgets.FloatSlider(value=ratio, min=0.0, max=0.95, step=0.05, description="pruned", readout_format=".0%")

    def draw(value):
        fig, ax = plt.subplots(figsize=(plots.FIGSIZE[0], 3.0))
        plots.plot_surviving_histogram(ax, flat, float(value), edges)
        return fig

    return _slider_demo(draw, slider)


def dropout_mask_demo(*, p: float = 0.5, units: int = 40, steps: int = 12, seed: int = 0) -> ipywidgets.VBox:
    """A slider over the dropout rate ``p`` that redraws the masks ``nn.Dropout(p)`` samples on consecutive steps.

    Each row is one training step, each column one hidden unit (dark = dropped); the title gives the
    fraction of units dropped and how often a unit's state repeats from one step to the next.

    Args:
        p: initial dropout probability.
        units: hidden units shown.
        steps: training steps shown.
        seed: seed of the sampled masks.
    """
    from . import dropout

    slider = ipywidgets.FloatSlider(value=p, min=0.0, max=0.9, step=0.1, description="dropout p", readout_format=".1f")

    def draw(value):
        masks = dropout.sampled_dropout_masks(units, float(value), steps, seed=seed)
        fig, ax = plt.subplots(figsize=(plots.FIGSIZE[0], 2.8))
        dropped = 1 - masks.float().mean().item()
        same = dropout.mask_agreement(masks)
        plots.plot_dropout_masks(ax, masks, title=f"p = {value:.1f}: {dropped:.0%} of units off, {same:.0%} keep their state between steps")
        return fig

    return _slider_demo(draw, slider)


def ratio_curve_demo(
    ratios,
    curves,
    *,
    dense_acc: float | None = None,
    ratio: float | None = None,
) -> ipywidgets.VBox:
    """A slider over the precomputed pruning ratios that marks the ratio on the accuracy curves and states each curve's accuracy there.

    Nothing is trained: the slider only reads the results passed in. The figure's title gives the
    mean accuracy of every curve at the chosen ratio, and a vertical line marks it.

    Args:
        ratios: fractions of weights pruned, shape ``(n,)``, increasing.
        curves: ``{label: (accuracies of shape (seeds, n) as fractions, colour, linestyle)}``.
        dense_acc: the unpruned accuracy (fraction), drawn as a reference line.
        ratio: initial ratio (default: the middle one); snapped to the nearest precomputed ratio.
    """
    import numpy as np

    ratios = [float(r) for r in ratios]
    options = [(f"{100 * r:g} %", r) for r in ratios]
    start = ratios[len(ratios) // 2] if ratio is None else min(ratios, key=lambda r: abs(r - ratio))
    slider = ipywidgets.SelectionSlider(options=options, value=start, description="pruned")

    def draw(value):
        value = min(ratios, key=lambda r: abs(r - float(value)))
        i = ratios.index(value)
        fig, ax = plt.subplots(figsize=(plots.FIGSIZE[0], 3.2))
        parts = []
        for label, (accs, color, style) in curves.items():
            accs = 100 * np.atleast_2d(np.asarray(accs, dtype=float))
            ax.plot(100 * np.asarray(ratios), accs.mean(0), marker="o", ms=3.5, color=color, ls=style, label=label)
            ax.plot([100 * value], [accs.mean(0)[i]], marker="o", ms=9, mfc="none", mec=color, mew=2)
            parts.append(f"{label} {accs.mean(0)[i]:.1f} %")
        if dense_acc is not None:
            ax.axhline(100 * dense_acc, color=plots.COLORS["dense"], ls=":", lw=1, label="dense")
        ax.axvline(100 * value, color=plots.COLORS["highlight"], lw=3, alpha=0.8)
        ax.set_xlabel("weights pruned (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{100 * value:g} % pruned: " + ", ".join(parts), fontsize=9)
        ax.legend(loc="lower left", fontsize=8)
        return fig

    return _slider_demo(draw, slider)
