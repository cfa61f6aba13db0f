"""Interactive ipywidgets demos, and their kernel-free twins for the rendered book (the sliders of
chapters 1, 3, 4, 6, 9 and 10).

Every demo is a widget with an ``update(value)`` attribute: the callback the slider calls, which
redraws the demo's figure and returns it (also kept as the widget's ``figure`` attribute), so a test
can change the value and check what was drawn.

A widget needs a running kernel; the rendered book has none. :func:`twin` turns a demo into plain
HTML: the same ``draw`` function is run once for every value of the slider, each figure is embedded
as a PNG, and a native ``<input type="range">`` with a few lines of inline JavaScript swaps them —
no kernel, no network, keyboard-operable (arrow keys, Home/End), and it scales to the page width.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
from dataclasses import dataclass

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from . import plots, pruning


def _slider_demo(draw, slider: ipywidgets.widgets.ValueWidget) -> ipywidgets.VBox:
    """Return ``VBox([slider, image])`` whose ``update(value)`` redraws ``draw(value)`` into the image.

    The figure is shown as a PNG in an ``ipywidgets.Image``, not captured by an ``Output`` widget:
    a headless runner (nbclient, nbval) can wait forever on an ``Output`` widget's captured messages
    (jupyter/nbclient#312; seen here on a loaded machine), while an image is one state update.
    """
    image = ipywidgets.Image(format="png", layout=ipywidgets.Layout(max_width="100%"))

    def update(value):
        fig = draw(value)
        image.value = _png(fig, None)
        plt.close(fig)
        box.figure = fig
        return fig

    box = ipywidgets.VBox([slider, image])
    slider.observe(lambda change: update(change["new"]), names="value")
    box.update = update
    box.draw, box.slider = draw, slider   # what twin() needs to precompute the frames
    update(slider.value)
    return box


def weighted_sum_demo(w: torch.Tensor, x: torch.Tensor, *, sparsity: float = 0.5) -> ipywidgets.VBox:
    """A slider over the sparsity that redraws :func:`lecturelib.plots.plot_pruned_weighted_sum` (Chapter 1).

    Args:
        w: weights of one neuron, shape ``(n,)``.
        x: one input, shape ``(n,)``.
        sparsity: initial fraction of the smallest-|w| weights set to zero.
    """
    slider = ipywidgets.FloatSlider(value=sparsity, min=0.0, max=0.95, step=0.05, description="pruned", readout_format=".0%")

    def draw(value):
        fig = plt.figure(figsize=plots.FIGSIZE)
        plots.plot_pruned_weighted_sum(w, x, {order: pruning.prune_weights(w, value, order) for order in pruning.ORDERS}, fig=fig)
        return fig

    return _slider_demo(draw, slider)


def pruning_histogram_demo(weights: torch.Tensor, *, sparsity: float = 0.5, bins: int = 60) -> ipywidgets.VBox:
    """A slider over the sparsity that redraws the histogram of the weights that survive magnitude pruning (Chapter 3).

    The bins stay fixed (those of the unpruned weights), so the hole around zero visibly widens as
    the sparsity grows. The figure's title states how many weights are pruned and the threshold ``|w|``.

    Args:
        weights: a trained layer's weights (any shape; flattened).
        sparsity: initial fraction of the smallest-|w| weights pruned.
        bins: number of equal-width bins.
    """
    from . import distributions

    flat = weights.detach().reshape(-1).float().cpu()
    edges = distributions.shared_edges([flat], bins)
    slider = ipywidgets.FloatSlider(value=sparsity, min=0.0, max=0.95, step=0.05, description="pruned", readout_format=".0%")

    def draw(value):
        fig, ax = plt.subplots(figsize=(plots.FIGSIZE[0], 3.0))
        plots.plot_surviving_histogram(ax, flat, pruning.prune_weights(flat, float(value)), edges)
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
    sparsities,
    curves,
    *,
    dense_acc: float | None = None,
    sparsity: float | None = None,
) -> ipywidgets.VBox:
    """A slider over the precomputed sparsities that marks one on the accuracy curves and states each curve's accuracy there (Chapter 6).

    Nothing is trained: the slider only reads the results passed in. The figure's title gives the
    mean accuracy of every curve at the chosen sparsity, and a vertical line marks it.

    Args:
        sparsities: fractions of weights pruned, shape ``(n,)``, increasing.
        curves: ``{label: (accuracies of shape (seeds, n) as fractions, colour, linestyle)}``.
        dense_acc: the unpruned accuracy (fraction), drawn as a reference line.
        sparsity: initial sparsity (default: the middle one); snapped to the nearest precomputed one.
    """
    sparsities = [float(s) for s in sparsities]
    options = [(f"{100 * s:g} %", s) for s in sparsities]
    start = sparsities[len(sparsities) // 2] if sparsity is None else min(sparsities, key=lambda s: abs(s - sparsity))
    slider = ipywidgets.SelectionSlider(options=options, value=start, description="pruned")

    def draw(value):
        value = min(sparsities, key=lambda s: abs(s - float(value)))
        i = sparsities.index(value)
        fig, ax = plt.subplots(figsize=(plots.FIGSIZE[0], 3.2))
        parts = []
        for label, (accs, color, style) in curves.items():
            accs = 100 * np.atleast_2d(np.asarray(accs, dtype=float))
            ax.plot(100 * np.asarray(sparsities), accs.mean(0), marker="o", ms=3.5, color=color, ls=style, label=label)
            ax.plot([100 * value], [accs.mean(0)[i]], marker="o", ms=9, mfc="none", mec=color, mew=2)
            parts.append(f"{label} {accs.mean(0)[i]:.1f} %")
        if dense_acc is not None:
            ax.axhline(100 * dense_acc, color=plots.COLORS["dense"], ls=":", lw=1, label="dense")
        ax.axvline(100 * value, color=plots.COLORS["highlight"], lw=3, alpha=0.8)
        ax.set(xlabel="weights pruned (%)", ylabel="test accuracy (%)")
        ax.set_title(f"{100 * value:g} % pruned: " + ", ".join(parts), fontsize=9)
        ax.legend(loc="lower left", fontsize=8)
        return fig

    return _slider_demo(draw, slider)


def choice_demo(options, draw, *, description: str, value=None) -> ipywidgets.VBox:
    """A slider over precomputed results: ``draw(value)`` returns the figure for one of ``options``.

    For results that take long to compute (a pruning level of a lottery-ticket run, a rewind point
    of a stability analysis): the experiment runs once, the slider only chooses what to show.

    Args:
        options: ``[(label, value), ...]`` in slider order.
        draw: ``value -> matplotlib Figure``.
        description: the slider's name, e.g. ``"weights left"``.
        value: initial value (default: the first option's).
    """
    options = [(str(label), v) for label, v in options]
    if not options:
        raise ValueError("choice_demo needs at least one option, got none")
    slider = ipywidgets.SelectionSlider(options=options, value=options[0][1] if value is None else value,
                                        description=description)
    return _slider_demo(draw, slider)


@dataclass(frozen=True)
class Twin:
    """A kernel-free slider: precomputed frames in self-contained HTML (shown by Jupyter and the book).

    ``values[i]`` is the slider's i-th value, ``labels[i]`` how the slider shows it and
    ``titles[i]`` the title of the figure drawn for it (also the frame's alt text).
    """

    html: str
    values: tuple
    labels: tuple[str, ...]
    titles: tuple[str, ...]

    def _repr_html_(self) -> str:
        return self.html


_TWIN_IDS = itertools.count()

# One small script per twin: the range input picks the frame; the JSON holds the frames.
_TWIN_SCRIPT = """(function () {
  var root = document.getElementById(%(id)s);
  var data = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  var input = root.querySelector("input"), img = root.querySelector("img"), out = root.querySelector("output");
  function show() {
    var i = Number(input.value);
    img.src = data.frames[i]; img.alt = data.titles[i];
    out.textContent = data.labels[i]; input.setAttribute("aria-valuetext", data.labels[i]);
  }
  input.addEventListener("input", show);
  show();
})();"""


def _slider_values(slider: ipywidgets.widgets.ValueWidget) -> tuple[list, list[str]]:
    """The values a slider can take, and the text it shows for each."""
    if isinstance(slider, ipywidgets.SelectionSlider):
        labels, values = zip(*[(str(label), value) for label, value in slider.options])
        return list(values), list(labels)
    count = int(round((slider.max - slider.min) / slider.step)) + 1
    values = [round(slider.min + i * slider.step, 10) for i in range(count)]
    return values, [format(v, slider.readout_format) for v in values]


def _png(fig: plt.Figure, dpi: int | None) -> bytes:
    """The figure as PNG bytes (``dpi=None``: the style's ``savefig.dpi``), cropped to its content, no timestamp."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi if dpi is not None else "figure", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _title(fig: plt.Figure) -> str:
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return " | ".join(t for t in [suptitle, *titles] if t)


def twin(demo: ipywidgets.VBox, *, dpi: int = 72) -> Twin:
    """Return the kernel-free twin of a demo of this module: its figure for every slider value, with a slider in plain HTML.

    Args:
        demo: a widget returned by one of this module's ``*_demo`` functions (it carries its
            ``draw`` function and ``slider``).
        dpi: resolution of the embedded PNG frames (72 keeps a 20-frame twin well under 1 MB).

    Returns:
        A :class:`Twin`; display it (or leave it as a cell's last value) to show it.
    """
    values, labels = _slider_values(demo.slider)
    start = int(np.argmin([abs(float(v) - float(demo.slider.value)) for v in values]))
    frames, titles = [], []
    for value in values:
        fig = demo.draw(value)
        titles.append(_title(fig))
        frames.append("data:image/png;base64," + base64.b64encode(_png(fig, dpi)).decode("ascii"))
        plt.close(fig)
    element_id = f"lecturelib-twin-{next(_TWIN_IDS)}"
    payload = json.dumps({"frames": frames, "labels": labels, "titles": titles})
    name = html.escape(demo.slider.description or "value")
    markup = (
        f'<div class="lecturelib-twin" id="{element_id}" style="max-width:100%">'
        f'<label style="display:flex;align-items:center;gap:0.6em;flex-wrap:wrap">{name} '
        f'<input type="range" min="0" max="{len(values) - 1}" step="1" value="{start}" '
        f'aria-label="{name}" style="flex:1 1 12em;min-width:8em"> '
        f'<output style="min-width:4em;font-variant-numeric:tabular-nums">{html.escape(labels[start])}</output></label>'
        f'<img src="{frames[start]}" alt="{html.escape(titles[start])}" style="max-width:100%;height:auto;display:block">'
        f'<script type="application/json">{payload}</script>'
        f'<script>{_TWIN_SCRIPT % {"id": json.dumps(element_id)}}</script></div>'
    )
    return Twin(markup, tuple(values), tuple(labels), tuple(titles))


# --- Sliders over precomputed experiment results (Chapters 9 and 10): nothing is trained, the frames read the results ---

def _fixed_limits(values, pad: float) -> tuple[float, float]:
    """``(min - pad, max + pad)`` over every value: one y range for every frame, so a change between frames shows."""
    values = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in values])
    return float(values.min() - pad), float(values.max() + pad)


def ticket_level_demo(weights_left, iterations, curves, *, level: int | None = None) -> ipywidgets.VBox:
    """A slider over IMP's pruning levels: at each, the learning curves and per-seed accuracies of every kind of network (Chapter 9).

    The left panel draws the validation accuracy during training (mean over seeds, min–max band),
    the right one the test accuracy at early stopping of every seed (dots) and their mean (bar), with
    the dense network's mean as a dotted line when level 0 is dense. Both y ranges are the same in
    every frame. The title states each kind's mean [min–max] and, for two kinds, the first one's lead.

    Args:
        weights_left: fraction of the weights left at each level, shape ``(levels,)``.
        iterations: the iterations at which the learning curves were evaluated, shape ``(evaluations,)``.
        curves: ``{label: (validation accuracy in % of shape (seeds, levels, evaluations),
            test accuracy at early stopping in % of shape (seeds, levels), colour)}``, e.g. the
            winning ticket and the same mask randomly re-initialised.
        level: index of the initial level (default: the sparsest).
    """
    left = np.asarray(weights_left, dtype=float)
    iterations = np.asarray(iterations, dtype=float)
    curves = {label: (np.asarray(val, dtype=float), np.asarray(test, dtype=float), color)
              for label, (val, test, color) in curves.items()}
    for label, (val, test, _) in curves.items():
        if val.ndim != 3 or val.shape[1:] != (len(left), len(iterations)) or test.shape != val.shape[:2]:
            raise ValueError(f"curves[{label!r}] must hold arrays of shapes (seeds, {len(left)}, {len(iterations)}) and "
                             f"(seeds, {len(left)}), got {val.shape} and {test.shape}")
    val_lim = _fixed_limits([val for val, _, _ in curves.values()], 2.0)
    test_lim = _fixed_limits([test for _, test, _ in curves.values()], 3.0)
    dense = next(iter(curves.values()))[1][:, 0].mean() if left[0] == 1.0 else None

    def draw(i):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=plots.FIGSIZE, gridspec_kw={"width_ratios": (2, 1)})
        colors = {label: color for label, (_, _, color) in curves.items()}
        plots.plot_learning_curves(ax1, {label: (iterations, val[:, i]) for label, (val, _, _) in curves.items()},
                                   ylabel="validation accuracy (%)", colors=colors)
        ax1.set_ylim(*val_lim)
        ax1.legend(title="mean; band: min–max over seeds", fontsize=7, title_fontsize=7, loc="lower right")
        plots.plot_per_seed(ax2, {label: test[:, i] for label, (_, test, _) in curves.items()},
                            ylabel="test accuracy at early stopping (%)", colors=colors)
        if dense is not None:
            ax2.axhline(dense, color=plots.COLORS["dense"], lw=1, ls=":", label="dense (mean)")
            ax2.legend(fontsize=7, loc="lower right")
        ax2.set_ylim(*test_lim)
        tests = [test[:, i] for _, test, _ in curves.values()]
        parts = [f"{label} {t.mean():.1f} % [{t.min():.1f}–{t.max():.1f}]" for label, t in zip(curves, tests)]
        if len(tests) == 2:
            spread = max(np.ptp(t) for t in tests)
            parts.append(f"lead {tests[0].mean() - tests[1].mean():+.1f} points (seed spread {spread:.1f})")
        fig.suptitle(f"{100 * left[i]:.1f} % of the weights left: " + ", ".join(parts), fontsize=9)
        return fig

    options = [(f"{100 * w:.1f} % left", i) for i, w in enumerate(left)]
    return choice_demo(options, draw, description="weights", value=len(left) - 1 if level is None else level)


def interpolation_demo(paths, *, threshold: float, seeds=None, k: int | None = None) -> ipywidgets.VBox:
    """A slider over the rewind point k: the test error along the linear path between the two copies trained from ``W_k``, one line per seed (Chapter 10).

    The left panel draws the error along the path, the right one how far it rises above the mean of
    its two end points — its maximum is the error barrier (:func:`lecturelib.stability.barrier`,
    marked) — with the stability criterion as a dotted line. Both y ranges are the same in every frame.

    Args:
        paths: ``{k: [instability result dicts, one per seed]}`` with ``"alphas"`` and ``"errors"``
            (fractions) as :meth:`lecturelib.stability.Instability.to_dict` writes them.
        threshold: the criterion on the error barrier (a fraction, e.g. ``stability.STABLE_BARRIER``).
        seeds: the seeds' names for the legend (default ``0, 1, …``).
        k: the initial rewind point (default: the first).
    """
    from . import stability

    runs = {int(key): list(value) for key, value in paths.items()}
    ks = sorted(runs)
    n = len(runs[ks[0]]) if ks else 0
    seeds = list(range(n)) if seeds is None else list(seeds)
    if not n or any(len(runs[key]) != n for key in ks) or len(seeds) != n:
        raise ValueError(f"paths must hold the same number (≥ 1) of seeds for every k (and seeds one name each), got "
                         f"{ {key: len(value) for key, value in runs.items()} } and seeds={seeds}")
    errors = {key: [100 * np.asarray(run["errors"], dtype=float) for run in runs[key]] for key in ks}
    rise = {key: [e - (e[0] + e[-1]) / 2 for e in errors[key]] for key in ks}
    error_lim = _fixed_limits(list(errors.values()), 1.0)
    rise_lim = _fixed_limits([*rise.values(), [100 * threshold]], 0.5)

    def draw(key):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=plots.FIGSIZE)
        barriers = [100 * stability.barrier(run["errors"]) for run in runs[key]]
        for s, run in enumerate(runs[key]):
            alphas = np.asarray(run["alphas"], dtype=float)
            ax1.plot(alphas, errors[key][s], marker=".", color=f"C{s}", label=f"seed {seeds[s]}")
            ax2.plot(alphas, rise[key][s], marker=".", color=f"C{s}")
            top = int(np.argmax(rise[key][s]))
            ax2.plot([alphas[top]], [rise[key][s][top]], marker="o", ms=9, mfc="none", mec=f"C{s}", mew=2)
        ax2.plot([], [], marker="o", ms=9, mfc="none", mec="0.3", mew=2, ls="", label="maximum: the error barrier")
        ax2.axhline(100 * threshold, color=plots.COLORS["pruned"], lw=1.5, ls=":", label=f"{100 * threshold:g} % criterion")
        ax2.axhline(0, color="0.5", lw=0.8, ls="--")
        ax1.set(xlabel="α (0 = copy 1, 1 = copy 2)", ylabel="test error (%)", ylim=error_lim)
        ax2.set(xlabel="α", ylabel="error above the ends' mean (points)", ylim=rise_lim)
        ax1.legend(fontsize=8)
        ax2.legend(fontsize=8)
        stable = sum(b < 100 * threshold for b in barriers)
        fig.suptitle(f"k = {key}: error barrier {', '.join(f'{b:.1f}' for b in barriers)} points — "
                     f"{stable} of {n} seeds stable (below {100 * threshold:g} %)", fontsize=9)
        return fig

    return choice_demo([(f"k = {key}", key) for key in ks], draw, description="rewind to", value=ks[0] if k is None else k)
