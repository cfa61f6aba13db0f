"""lecturelib.importance: the weighted sum and how far pruning its terms moves it."""

import pytest
import torch

from lecturelib import importance


def test_weighted_sum_and_contributions_agree():
    w, x = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([[2.0, 1.0, 4.0], [0.0, 1.0, 0.0]])
    assert torch.equal(importance.weighted_sum(w, x), torch.tensor([2.0, -2.0]))
    assert torch.equal(importance.contributions(w, x).sum(1), importance.weighted_sum(w, x))
    assert importance.weighted_sum(w, x[0]).shape == ()


def test_sum_change_smallest_first_moves_s_least():
    generator = torch.Generator().manual_seed(0)
    w, x = torch.randn(64, generator=generator), torch.randn(200, 64, generator=generator)
    sparsities = [0.0, 0.25, 0.5]
    small, large = importance.sum_change(w, x, sparsities, "smallest"), importance.sum_change(w, x, sparsities, "largest")
    assert small[0] == 0 and large[0] == 0
    assert torch.all(small[1:] < large[1:])


@pytest.mark.parametrize("call, match", [
    (lambda: importance.weighted_sum(torch.ones(3), torch.ones(4)), r"x must have shape \(3,\) or \(B, 3\)"),
    (lambda: importance.weighted_sum(torch.ones(3, 1), torch.ones(3)), "w must be one neuron's weights"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
