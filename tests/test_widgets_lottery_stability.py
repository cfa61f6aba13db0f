"""widgets.ticket_level_demo (Chapter 9) and widgets.interpolation_demo (Chapter 10): sliders over precomputed results."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from lecturelib import plots, stability, widgets

LEFT = np.array([1.0, 0.64, 0.41])
ITS = np.array([100, 200, 300, 400])


def _lottery_curves():
    rng = np.random.default_rng(0)
    val = {kind: rng.uniform(30, 60, size=(3, 3, 4)) for kind in ("ticket", "random")}
    test = {"ticket": np.array([[60.0, 61, 62], [59, 60, 63], [61, 62, 61]]),
            "random": np.array([[60.0, 55, 50], [59, 56, 51], [61, 54, 49]])}
    test["random"][:, 0] = test["ticket"][:, 0]   # level 0 is the dense network, the same for both
    return {"winning ticket": (val["ticket"], test["ticket"], plots.COLORS["ticket"]),
            "random re-init": (val["random"], test["random"], plots.COLORS["random"])}


def test_ticket_level_demo_one_frame_per_level_stating_the_lead():
    curves = _lottery_curves()
    demo = widgets.ticket_level_demo(LEFT, ITS, curves)
    assert demo.slider.value == 2   # starts at the sparsest level
    twin = widgets.twin(demo)
    assert twin.values == (0, 1, 2) and twin.labels == ("100.0 % left", "64.0 % left", "41.0 % left")
    assert twin.titles[2] == ("41.0 % of the weights left: winning ticket 62.0 % [61.0–63.0], "
                              "random re-init 50.0 % [49.0–51.0], lead +12.0 points (seed spread 2.0)")
    assert twin.titles[0].endswith("lead +0.0 points (seed spread 2.0)")
    fig = demo.update(1)
    curve_ax, seed_ax = fig.axes
    # the learning curves drawn are this level's means over the seeds
    np.testing.assert_allclose(curve_ax.lines[0].get_ydata(), curves["winning ticket"][0][:, 1].mean(0))
    np.testing.assert_allclose(curve_ax.lines[1].get_ydata(), curves["random re-init"][0][:, 1].mean(0))
    # one dot per seed, the dense network's mean as a line, and the same y range in every frame
    assert [len(c.get_offsets()) for c in seed_ax.collections] == [3, 3]
    assert seed_ax.lines[0].get_ydata()[0] == pytest.approx(60.0)
    limits = {demo.update(i).axes[1].get_ylim() for i in range(3)}
    assert len(limits) == 1


def test_ticket_level_demo_refuses_mismatched_shapes():
    curves = _lottery_curves()
    val, test, color = curves["random re-init"]
    with pytest.raises(ValueError, match="curves\\['random re-init'\\].*\\(seeds, 3, 4\\).*\\(3, 2, 4\\)"):
        widgets.ticket_level_demo(LEFT, ITS, {**curves, "random re-init": (val[:, :2], test, color)})


def _paths():
    alphas = np.linspace(0, 1, 5).tolist()
    return {"0": [{"alphas": alphas, "errors": [0.10, 0.13, 0.16, 0.12, 0.10]},
                  {"alphas": alphas, "errors": [0.12, 0.14, 0.13, 0.12, 0.11]}],
            "100": [{"alphas": alphas, "errors": [0.10, 0.105, 0.10, 0.10, 0.10]},
                    {"alphas": alphas, "errors": [0.11, 0.11, 0.115, 0.11, 0.11]}]}


def test_interpolation_demo_one_frame_per_k_with_the_barriers_and_criterion():
    paths = _paths()
    demo = widgets.interpolation_demo(paths, threshold=0.02, seeds=(3, 4))
    twin = widgets.twin(demo)
    assert twin.values == (0, 100) and twin.labels == ("k = 0", "k = 100")
    barriers = [[100 * stability.barrier(run["errors"]) for run in paths[k]] for k in ("0", "100")]
    assert barriers[0] == pytest.approx([6.0, 2.5]) and barriers[1] == pytest.approx([0.5, 0.5])
    assert twin.titles == ("k = 0: error barrier 6.0, 2.5 points — 0 of 2 seeds stable (below 2 %)",
                           "k = 100: error barrier 0.5, 0.5 points — 2 of 2 seeds stable (below 2 %)")
    fig = demo.update(0)
    error_ax, rise_ax = fig.axes
    np.testing.assert_allclose(error_ax.lines[0].get_ydata(), 100 * np.array(paths["0"][0]["errors"]))
    assert [t.get_text() for t in error_ax.get_legend().get_texts()] == ["seed 3", "seed 4"]
    # the rise above the ends' mean peaks at the barrier; the criterion is drawn at 2 points
    assert rise_ax.lines[0].get_ydata().max() == pytest.approx(barriers[0][0])
    assert any(np.allclose(line.get_ydata(), 2.0) for line in rise_ax.lines)
    assert demo.update(100).axes[1].get_ylim() == rise_ax.get_ylim()


def test_interpolation_demo_refuses_unequal_seed_counts():
    paths = _paths()
    paths["100"] = paths["100"][:1]
    with pytest.raises(ValueError, match="same number"):
        widgets.interpolation_demo(paths, threshold=0.02)
    with pytest.raises(ValueError, match="paths must hold"):
        widgets.interpolation_demo({}, threshold=0.02)
