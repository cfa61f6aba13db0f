"""The weighted-sum slider redraws the pruned terms and the sums for the sparsity it is given."""

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from lecturelib import importance, pruning, widgets  # noqa: E402


def test_slider_callback_redraws_for_the_new_sparsity():
    generator = torch.Generator().manual_seed(0)
    w, x = torch.randn(64, generator=generator), torch.randn(64, generator=generator)
    demo = widgets.weighted_sum_demo(w, x, sparsity=0.5)
    slider = demo.children[0]
    fig = demo.update(0.25)
    left, right = fig.axes[:2]
    assert "25% of weights pruned" in left.get_title()
    s_small = importance.weighted_sum(pruning.prune_weights(w, 0.25), x).item()
    assert f"{s_small:.2f}" in right.get_title()
    assert len(left.collections[0].get_offsets()) == 16  # 16 crossed-out (pruned) terms
    bars = [patch.get_width() for patch in right.patches]
    assert bars[0] == importance.weighted_sum(w, x).item() and len(bars) == 4
    slider.value = 0.75  # moving the slider calls the same callback
    assert demo.figure is not fig and "75% of weights pruned" in demo.figure.axes[0].get_title()
