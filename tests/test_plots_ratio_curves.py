"""Tests of plots.plot_ratio_curves: accuracy and loss against the fraction pruned, mean line and min-max band per label."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from lecturelib import plots


def test_plot_ratio_curves_draws_means_bands_and_reference():
    ratios = [0.5, 0.9]
    accs = np.array([[0.9, 0.5], [0.8, 0.3]])
    losses = np.array([[0.2, 2.0], [0.4, 4.0]])
    fig, axes = plt.subplots(1, 2)
    plots.plot_ratio_curves(axes, ratios, {"L2 w/o retraining": (accs, losses, plots.COLORS["pruned"], ":")},
                            dense_acc=0.95, title="a finding")
    mean_line = axes[0].lines[0]
    assert list(mean_line.get_xdata()) == [50.0, 90.0]
    assert np.allclose(mean_line.get_ydata(), [85.0, 40.0])
    assert np.allclose(axes[1].lines[0].get_ydata(), [0.3, 3.0])
    assert len(axes[0].collections) == 1 and len(axes[1].collections) == 1  # the min-max bands
    assert any(np.allclose(line.get_ydata(), 95.0) for line in axes[0].lines[1:])  # dense reference
    assert axes[0].get_xlabel() == "weights pruned (%)" and "accuracy" in axes[0].get_ylabel()
    assert axes[1].get_yscale() == "log" and fig._suptitle.get_text() == "a finding"
    plt.close(fig)


def test_plot_ratio_curves_single_run_has_no_band():
    fig, axes = plt.subplots(1, 2)
    plots.plot_ratio_curves(axes, [0.5], {"x": ([0.9], [0.1], "C0", "-")})
    assert len(axes[0].collections) == 0
    plt.close(fig)
