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
