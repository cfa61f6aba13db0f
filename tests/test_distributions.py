"""Weight-distribution statistics: survivors, shared bins, histograms and the hole around zero."""

import pytest
import torch

from lecturelib import distributions, models


def test_layer_weights_from_model_and_state():
    net = models.mlp((1, 8, 8), 10, seed=0)
    from_model = distributions.layer_weights(net)
    assert list(from_model) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert from_model["fc1.weight"].shape == (64 * 300,)
    assert list(distributions.layer_weights(net.state_dict())) == list(from_model)
    with pytest.raises(KeyError, match="nope"):
        distributions.layer_weights(net.state_dict(), ["nope"])


def test_shared_edges_symmetric_and_covering():
    edges = distributions.shared_edges([torch.tensor([-0.5, 0.2]), torch.tensor([1.0])], bins=4)
    assert edges.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="quantile"):
        distributions.shared_edges([torch.ones(3)], quantile=0)


def test_survivor_histogram_ignores_zeros_and_closes_last_bin():
    w = torch.tensor([-0.9, -0.2, 0.0, 0.0, 0.1, 0.3, 0.3, 1.0, 5.0])
    edges = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    assert distributions.survivor_histogram(w, edges).tolist() == [1, 1, 3, 1]


def test_summary_and_threshold_show_the_hole():
    before = torch.tensor([0.05, -0.1, 0.4, -0.6, 0.02, 0.9])
    after = torch.where(before.abs() >= 0.4, before, torch.zeros(()))
    t = distributions.pruning_threshold(before, after)
    assert t == pytest.approx(0.4)
    s_before, s_after = distributions.summarize(before, t), distributions.summarize(after, t)
    assert (s_before.inside, s_after.inside, s_after.pruned, s_after.total) == (3, 0, 3, 6)
    assert s_after.mean_abs > s_before.mean_abs
    with pytest.raises(ValueError, match="same shape"):
        distributions.pruning_threshold(before, after[:3])
