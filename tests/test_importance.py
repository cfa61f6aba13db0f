"""lecturelib.importance: the weighted sum and pruning its terms."""

import pytest
import torch

from lecturelib import importance


def test_weighted_sum_and_contributions_agree():
    w, x = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([[2.0, 1.0, 4.0], [0.0, 1.0, 0.0]])
    assert torch.equal(importance.weighted_sum(w, x), torch.tensor([2.0, -2.0]))
    assert torch.equal(importance.contributions(w, x).sum(1), importance.weighted_sum(w, x))
    assert importance.weighted_sum(w, x[0]).shape == ()


def test_prune_weights_orders():
    w = torch.tensor([0.1, -3.0, 0.5, 2.0])
    assert torch.equal(importance.prune_weights(w, 0.5, "smallest"), torch.tensor([0.0, -3.0, 0.0, 2.0]))
    assert torch.equal(importance.prune_weights(w, 0.5, "largest"), torch.tensor([0.1, 0.0, 0.5, 0.0]))
    random_pruned = importance.prune_weights(w, 0.5, "random", seed=3)
    assert int((random_pruned == 0).sum()) == 2 and torch.equal(random_pruned, importance.prune_weights(w, 0.5, "random", seed=3))
    assert torch.equal(w, torch.tensor([0.1, -3.0, 0.5, 2.0]))  # the input is not modified
    assert torch.equal(importance.prune_weights(w, 1.0), torch.zeros(4))


def test_sum_change_smallest_first_moves_s_least():
    generator = torch.Generator().manual_seed(0)
    w, x = torch.randn(64, generator=generator), torch.randn(200, 64, generator=generator)
    ratios = [0.0, 0.25, 0.5]
    small, large = importance.sum_change(w, x, ratios, "smallest"), importance.sum_change(w, x, ratios, "largest")
    assert small[0] == 0 and large[0] == 0
    assert torch.all(small[1:] < large[1:])


@pytest.mark.parametrize("call, match", [
    (lambda: importance.prune_weights(torch.ones(3), 1.5), r"ratio must be in \[0, 1\], got 1.5"),
    (lambda: importance.prune_weights(torch.ones(3), 0.5, "median"), "unknown order 'median'; allowed: 'smallest', 'largest', 'random'"),
    (lambda: importance.weighted_sum(torch.ones(3), torch.ones(4)), r"x must have shape \(3,\) or \(B, 3\)"),
    (lambda: importance.weighted_sum(torch.ones(3, 1), torch.ones(3)), "w must be one neuron's weights"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_prune_weights_ranks_every_entry_of_a_matrix():
    w = torch.arange(1.0, 17.0).reshape(4, 4)
    pruned = importance.prune_weights(w, 0.5)
    assert pruned.shape == (4, 4) and int((pruned == 0).sum()) == 8, "8 of 16, not all 16"
    assert torch.equal(pruned.reshape(-1)[8:], w.reshape(-1)[8:]), "the 8 smallest |w| are the ones zeroed"
    assert int((importance.prune_weights(w, 0.25, "largest") == 0).sum()) == 4
