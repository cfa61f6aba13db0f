"""The dropout-rate slider redraws the masks nn.Dropout samples for the rate it is given."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from lecturelib import dropout, widgets  # noqa: E402


def test_slider_callback_redraws_masks_for_the_new_rate():
    demo = widgets.dropout_mask_demo(p=0.5, units=30, steps=8, seed=2)
    fig = demo.update(0.2)
    image = fig.axes[0].images[0].get_array()
    expected = dropout.sampled_dropout_masks(30, 0.2, 8, seed=2).numpy()
    assert image.shape == (8, 30) and np.array_equal(np.asarray(image), expected)
    assert fig.axes[0].get_title().startswith("p = 0.2:")
    demo.children[0].value = 0.0
    assert np.asarray(demo.figure.axes[0].images[0].get_array()).all()  # p = 0: every unit on
    assert "0% of units off, 100% keep" in demo.figure.axes[0].get_title()
