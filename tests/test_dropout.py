"""Dropout helpers: the dropout MLP, sampled masks, the 1/(1-p) scaling, and Monte-Carlo dropout."""

import pytest
import torch
from torch import nn

from lecturelib import dropout, models, pruning


def test_mlp_dropout_matches_mlp_names_and_init():
    net = dropout.mlp_dropout((1, 8, 8), 10, p=0.3, seed=4)
    plain = models.mlp((1, 8, 8), 10, seed=4)
    assert list(net.state_dict()) == list(plain.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), plain.state_dict().values()))
    assert [m.p for m in dropout.dropout_layers(net)] == [0.3, 0.3]
    pruning.check_mask(net, pruning.layerwise_magnitude_mask(plain, 0.5))  # masks carry over
    with pytest.raises(ValueError, match="p must be in"):
        dropout.mlp_dropout((1, 8, 8), p=1.0)


def test_sampled_masks_resample_every_step():
    masks = dropout.sampled_dropout_masks(2000, 0.5, 6, seed=0)
    assert masks.shape == (6, 2000) and masks.dtype == torch.bool
    assert abs(masks.float().mean().item() - 0.5) < 0.02
    assert not torch.equal(masks[0], masks[1])
    assert torch.equal(masks, dropout.sampled_dropout_masks(2000, 0.5, 6, seed=0))  # seeded


def test_mask_agreement_of_dropout_and_of_a_fixed_mask():
    masks = dropout.sampled_dropout_masks(20000, 0.5, 4, seed=1)
    assert dropout.mask_agreement(masks) == pytest.approx(0.5, abs=0.02)  # p² + (1-p)²
    fixed = masks[:1].repeat(4, 1)
    assert dropout.mask_agreement(fixed) == 1.0
    with pytest.raises(ValueError, match="steps >= 2"):
        dropout.mask_agreement(masks[:1])


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_scaling_is_one_over_one_minus_p(p):
    s = dropout.dropout_scaling(p, units=50_000)
    assert s["survivor_value"] == pytest.approx(1 / (1 - p), rel=1e-6)
    assert s["dropped_fraction"] == pytest.approx(p, abs=0.01)
    assert s["train_mean"] == pytest.approx(1.0, abs=0.05)
    assert s["eval_min"] == s["eval_max"] == 1.0


def test_mc_dropout_samples_differ_and_restore_modes():
    net = dropout.mlp_dropout((1, 8, 8), 10, p=0.5, seed=0)
    net.eval()
    x = torch.randn(7, 1, 8, 8)
    probs = dropout.mc_dropout_probabilities(net, x, 5, seed=0)
    assert probs.shape == (5, 7, 10)
    assert torch.allclose(probs.sum(2), torch.ones(5, 7), atol=1e-5)
    assert not torch.allclose(probs[0], probs[1])
    assert not net.training and not any(m.training for m in net.modules())
    assert dropout.is_deterministic(net, x)
    net.train()
    assert not dropout.is_deterministic(net, x)
    with pytest.raises(ValueError, match="no nn.Dropout"):
        dropout.mc_dropout_probabilities(models.mlp((1, 8, 8), 10, seed=0), x, 3)


def test_ensemble_and_member_accuracy():
    y = torch.tensor([0, 1])
    probs = torch.tensor([
        [[0.9, 0.1], [0.6, 0.4]],   # member 1: right, wrong
        [[0.4, 0.6], [0.1, 0.9]],   # member 2: wrong, right
    ])
    assert dropout.member_accuracies(probs, y).tolist() == [0.5, 0.5]
    assert dropout.ensemble_accuracy(probs, y).tolist() == [0.5, 1.0]  # the average of both is right twice
    with pytest.raises(ValueError, match="shape"):
        dropout.ensemble_accuracy(probs, torch.tensor([0, 1, 1]))


class _SeenDevice(Exception):
    """Raised by a forward pre-hook to report the device a model's input arrived on."""


def _input_device_of(model, call):
    """Return the device of the input ``call()`` hands to ``model``'s first layer (the call is stopped there)."""
    seen = []

    def hook(module, inputs):
        seen.append(inputs[0].device)
        raise _SeenDevice

    handle = next(m for m in model.modules() if isinstance(m, nn.Linear)).register_forward_pre_hook(hook)
    try:
        with pytest.raises(_SeenDevice):
            call()
    finally:
        handle.remove()
    return seen[0]


def test_inputs_are_moved_to_the_model_device():
    """A model on another device than the data (a GPU in Colab) gets its inputs there.

    The 'meta' device stands in for a GPU: no data, but a forward on CPU inputs would fail.
    """
    net = dropout.mlp_dropout((1, 8, 8), 10, seed=0).to("meta")
    x = torch.randn(4, 1, 8, 8)
    assert _input_device_of(net, lambda: dropout.mc_dropout_probabilities(net, x, 2)).type == "meta"
    assert _input_device_of(net, lambda: dropout.is_deterministic(net, x)).type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mc_dropout_on_cuda_with_cpu_inputs():
    net = dropout.mlp_dropout((1, 8, 8), 10, seed=0).to("cuda")
    x = torch.randn(4, 1, 8, 8)
    probs = dropout.mc_dropout_probabilities(net, x, 3, seed=0)
    assert probs.device.type == "cpu" and probs.shape == (3, 4, 10)
    assert torch.equal(probs, dropout.mc_dropout_probabilities(net, x, 3, seed=0))   # seeded on the GPU too
    assert dropout.is_deterministic(net.eval(), x)
