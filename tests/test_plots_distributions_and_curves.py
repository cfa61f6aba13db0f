"""Plots for weight histograms, learning curves, per-seed values, latency, dropout masks and MC dropout."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lecturelib import latency, plots  # noqa: E402


def test_weight_histograms_grid_shares_axes_per_layer():
    edges = {"fc1.weight": np.linspace(-1, 1, 5), "fc2.weight": np.linspace(-2, 2, 5)}
    counts = {s: {k: np.arange(4) + i for k in edges} for i, s in enumerate(["before", "pruned", "retrained"])}
    axes = plots.plot_weight_histograms(counts, edges, title="t")
    assert axes.shape == (2, 3)
    assert [a.get_title() for a in axes[0]] == ["before", "pruned", "retrained"]
    assert axes[0, 0].get_shared_x_axes().joined(axes[0, 0], axes[0, 2])
    assert axes[1, 0].get_shared_y_axes().joined(axes[1, 0], axes[1, 1])
    assert axes[0, 2].patches[0].get_data().values.tolist() == [2, 3, 4, 5]
    plt.close("all")


def test_weight_histograms_as_densities_make_a_pruned_layer_readable():
    edges = {"fc1.weight": np.linspace(-1, 1, 5)}
    counts = {"before": {"fc1.weight": np.array([10, 90, 90, 10])}, "pruned": {"fc1.weight": np.array([10, 0, 0, 10])}}
    axes = plots.plot_weight_histograms(counts, edges, density=True)
    assert axes[0, 0].patches[0].get_data().values.tolist() == [5.0, 45.0, 45.0, 5.0]
    assert axes[0, 1].patches[0].get_data().values.tolist() == [50.0, 0.0, 0.0, 50.0]   # each panel sums to 100 %
    assert "%" in axes[0, 0].get_ylabel()
    plt.close("all")


def test_learning_curves_and_per_seed():
    fig, (a, b) = plt.subplots(1, 2)
    plots.plot_learning_curves(a, {"dense": ([1, 2, 3], np.array([[0.5, 0.6, 0.7], [0.7, 0.8, 0.9]]))}, ylabel="acc (%)", percent=True)
    assert np.allclose(a.lines[0].get_ydata(), [60, 70, 80])
    plots.plot_per_seed(b, {"dense": [0.9, 0.8], "pruned": [0.95, 0.85]}, ylabel="acc (%)", percent=True)
    assert [p.get_height() for p in b.patches] == [85.0, 90.0]
    plt.close(fig)


def test_latency_bars_are_relative_to_the_baseline():
    stats = {"dense": latency.latency_stats([2.0, 2.0]), "sparse": latency.latency_stats([1.0, 1.0])}
    ax = plots.plot_latency(plt.figure().gca(), stats, baseline="dense")
    assert [p.get_width() for p in ax.patches] == [1.0, 0.5]
    plt.close("all")


def test_dropout_masks_and_ensemble_plots():
    fig, (a, b) = plt.subplots(1, 2)
    plots.plot_dropout_masks(a, torch.tensor([[1, 0], [0, 1]]).bool())
    assert a.images[0].get_array().shape == (2, 2)
    plots.plot_ensemble_accuracy(b, [0.8, 0.9], [0.8, 0.7], 0.88)
    assert np.allclose(b.lines[0].get_ydata(), [80, 90])
    plt.close(fig)
