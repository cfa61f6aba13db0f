"""The sparsity slider redraws the histogram of surviving weights for the sparsity it is given."""

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from lecturelib import distributions, pruning, widgets  # noqa: E402


def test_slider_callback_redraws_surviving_weights():
    w = torch.randn(40, 50, generator=torch.Generator().manual_seed(0))
    demo = widgets.pruning_histogram_demo(w, sparsity=0.5, bins=20)
    fig = demo.update(0.8)
    ax = fig.axes[0]
    assert ax.get_title().startswith("80% pruned: 1600 weights")
    survivors_drawn = ax.patches[-1].get_data().values.sum()  # the filled histogram: the survivors
    assert survivors_drawn == 400
    threshold = float(distributions.survivors(pruning.prune_weights(w, 0.8)).abs().min())
    assert f"{threshold:.3f}" in ax.get_title()
    demo.children[0].value = 0.3  # moving the slider calls the same callback
    assert demo.figure is not fig and demo.figure.axes[0].get_title().startswith("30% pruned: 600 weights")
