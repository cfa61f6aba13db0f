"""Tests of widgets.ratio_curve_demo: the slider callback marks the chosen ratio and states the accuracies there."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets
import numpy as np

from lecturelib import plots, widgets


def demo():
    ratios = [0.5, 0.8, 0.9]
    curves = {
        "retrained": (np.array([[0.97, 0.96, 0.95], [0.97, 0.96, 0.93]]), plots.COLORS["retrained"], "-"),
        "not retrained": (np.array([[0.96, 0.80, 0.40], [0.96, 0.70, 0.20]]), plots.COLORS["pruned"], "--"),
    }
    return widgets.ratio_curve_demo(ratios, curves, dense_acc=0.975)


def test_update_marks_the_ratio_and_states_mean_accuracies():
    box = demo()
    assert isinstance(box, ipywidgets.VBox)
    fig = box.update(0.9)
    ax = fig.axes[0]
    assert "90 % pruned" in ax.get_title()
    assert "retrained 94.0 %" in ax.get_title() and "not retrained 30.0 %" in ax.get_title()
    vlines = [line for line in ax.lines if list(line.get_xdata()) == [90.0, 90.0]]
    assert vlines, "no vertical marker at 90 %"
    fig = box.update(0.5)
    assert "50 % pruned" in fig.axes[0].get_title() and "not retrained 96.0 %" in fig.axes[0].get_title()
    assert box.figure is fig


def test_slider_snaps_and_drives_the_callback():
    box = demo()
    slider = box.children[0]
    slider.value = 0.8
    assert "80 % pruned" in box.figure.axes[0].get_title()
    fig = box.update(0.81)  # off-grid values snap to the nearest precomputed ratio
    assert "80 % pruned" in fig.axes[0].get_title()
