"""Tests of lecturelib.structured: filter scores, channel masks and the real removal of channels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lecturelib import models, pruning, structured, training


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def _masked(model, mask):
    return pruning.apply_mask(training.clone_model(model), mask)


def _random_biases(model, seed=0):
    """Give every bias non-zero values, so a bias that is not removed with its channel would show."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    return model


# --- channel_scores -------------------------------------------------------------------------------

def test_channel_scores_are_filter_norms():
    model = models.cnn((1, 8, 8), channels=(4, 6), seed=0)
    l1 = structured.channel_scores(model, norm=1)
    l2 = structured.channel_scores(model, norm=2)
    assert list(l1) == ["conv1.weight", "conv2.weight"]
    w = model.conv2.weight.detach()
    assert l1["conv2.weight"].shape == (6,)
    torch.testing.assert_close(l1["conv2.weight"], w.abs().sum(dim=(1, 2, 3)))
    torch.testing.assert_close(l2["conv2.weight"], w.pow(2).sum(dim=(1, 2, 3)).sqrt())


def test_l1_and_l2_scores_can_rank_filters_differently():
    model = models.cnn((1, 8, 8), channels=(2, 2), seed=0)
    with torch.no_grad():
        model.conv1.weight.zero_()
        model.conv1.weight[0, 0, 0, 0] = 3.0      # one large weight: L1 = 3, L2 = 3
        model.conv1.weight[1, 0].fill_(0.4)       # nine small weights: L1 = 3.6, L2 = 1.2
    l1 = structured.channel_scores(model, 1)["conv1.weight"]
    l2 = structured.channel_scores(model, 2)["conv1.weight"]
    assert l1.argmin() == 0 and l2.argmin() == 1
    assert structured.channel_mask(model, 0.5, norm=1, names=["conv1.weight"])["conv1.bias"].tolist() == [False, True]
    assert structured.channel_mask(model, 0.5, norm=2, names=["conv1.weight"])["conv1.bias"].tolist() == [True, False]


def test_channel_scores_rejects_bad_norm_and_models_without_convolutions():
    with pytest.raises(ValueError, match="norm"):
        structured.channel_scores(models.cnn((1, 8, 8), seed=0), norm=3)
    with pytest.raises(ValueError, match="no"):
        structured.channel_scores(models.mlp((1, 8, 8), seed=0))


# --- channel_mask ---------------------------------------------------------------------------------

@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.75])
def test_channel_mask_removes_the_lowest_norm_filters_with_their_biases(sparsity):
    model = models.cnn((1, 8, 8), channels=(16, 32), seed=1)
    mask = structured.channel_mask(model, sparsity)
    pruning.check_mask(model, mask)
    assert set(mask) == {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"}
    scores = structured.channel_scores(model)
    for conv in ("conv1", "conv2"):
        keep = mask[f"{conv}.bias"]
        n = keep.numel()
        assert int((~keep).sum()) == round(sparsity * n)
        # whole filters: every weight of filter c follows keep[c]
        assert torch.equal(mask[f"{conv}.weight"], keep[:, None, None, None].expand_as(mask[f"{conv}.weight"]))
        score = scores[f"{conv}.weight"]
        if 0 < sparsity:
            assert score[~keep].max() <= score[keep].min()


def test_channel_mask_per_layer_sparsities_and_names():
    model = models.cnn((1, 8, 8), channels=(8, 8, 16, 16), seed=0)
    mask = structured.channel_mask(model, {"conv2.weight": 0.5, "conv4.weight": 0.25})
    assert set(mask) == {"conv2.weight", "conv2.bias", "conv4.weight", "conv4.bias"}
    assert int((~mask["conv2.bias"]).sum()) == 4 and int((~mask["conv4.bias"]).sum()) == 4
    mask = structured.channel_mask(model, 0.5, names=["conv3.weight"])
    assert set(mask) == {"conv3.weight", "conv3.bias"}


@pytest.mark.parametrize(
    "sparsity, error, message",
    [
        (1.0, ValueError, r"sparsity must be in \[0, 1\), got 1.0"),
        (-0.1, ValueError, r"sparsity must be in \[0, 1\), got -0.1"),
        ("0.5", TypeError, r"sparsity must be a float"),
        ({"conv1.weight": 1.5}, ValueError, r"sparsity\['conv1.weight'\] must be in \[0, 1\)"),
        ({"fc1.weight": 0.5}, KeyError, r"fc1.weight"),
    ],
)
def test_channel_mask_rejects_bad_sparsities(sparsity, error, message):
    model = models.cnn((1, 8, 8), channels=(16, 32), seed=0)
    with pytest.raises(error, match=message):
        structured.channel_mask(model, sparsity)


def test_channel_mask_never_empties_a_layer_and_breaks_ties_in_channel_order():
    model = models.cnn((1, 8, 8), channels=(16, 32), seed=0)
    keep = structured.channel_mask(model, 0.99)["conv1.bias"]           # round(0.99 * 16) = 16 channels
    assert keep.tolist() == (structured.channel_scores(model)["conv1.weight"] == structured.channel_scores(model)["conv1.weight"].max()).tolist()
    with torch.no_grad():
        model.conv1.weight.fill_(1.0)                                    # 16 equal filters
    assert structured.channel_mask(model, 0.25)["conv1.bias"].tolist() == [False] * 4 + [True] * 12


def test_channel_mask_rejects_names_that_are_not_convolutions():
    with pytest.raises(KeyError, match="not the weight of a convolution"):
        structured.channel_mask(models.cnn((1, 8, 8), seed=0), 0.5, names=["fc1.weight"])


# --- prune_channels: the smaller network computes what the masked one computes ----------------------

@pytest.mark.parametrize("channels", [(16, 32), (8, 16, 16, 32)], ids=["conv2", "conv4"])
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)], ids=["8x8", "28x28", "32x32"])
@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.75])
def test_pruned_model_equals_masked_model(channels, input_shape, sparsity):
    model = _random_biases(models.cnn(input_shape, channels=channels, seed=0)).eval()
    mask = structured.channel_mask(model, sparsity)
    small = structured.prune_channels(model, mask)
    x = torch.randn(5, *input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _masked(model, mask)(x)
        assert not torch.allclose(expected, model(x), atol=1e-3), "the mask should change the outputs"
        torch.testing.assert_close(small(x), expected, atol=1e-5, rtol=1e-5)
    widths = structured.conv_widths(small)
    assert widths == tuple(c - round(sparsity * c) for c in channels)


def test_pruned_model_differs_from_masked_model_when_a_bias_is_left_alive():
    """The check in kept_channels is needed: with a live bias the removed channel was not silent."""
    model = _random_biases(models.cnn((1, 8, 8), channels=(4, 8), seed=0)).eval()
    mask = structured.channel_mask(model, 0.5)
    weight_only = {name: keep for name, keep in mask.items() if name.endswith("weight")}
    small = structured.prune_channels(model, structured.kept_channels(model, mask))
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(small(x), _masked(model, weight_only)(x), atol=1e-3)
    with pytest.raises(ValueError, match="keeps their bias"):
        structured.prune_channels(model, weight_only)


def test_prune_channels_with_explicit_indices():
    model = _random_biases(models.cnn((1, 8, 8), channels=(6, 8), seed=3)).eval()
    keep = {"conv1": torch.tensor([4, 0, 2]), "conv2": [1, 7]}
    small = structured.prune_channels(model, keep)
    assert small.conv1.out_channels == 3 and small.conv2.in_channels == 3 and small.conv2.out_channels == 2
    assert small.fc1.in_features == 2 * 4 * 4
    torch.testing.assert_close(small.conv1.weight, model.conv1.weight[[0, 2, 4]])
    # fc1 columns of conv2's channel 1 (features 16..31) and channel 7 (112..127), in order
    torch.testing.assert_close(small.fc1.weight, model.fc1.weight[:, list(range(16, 32)) + list(range(112, 128))])
    mask = pruning.ones_mask(model, ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"])
    for conv, idx in (("conv1", [0, 2, 4]), ("conv2", [1, 7])):
        drop = torch.ones(mask[f"{conv}.bias"].shape, dtype=torch.bool)
        drop[idx] = False
        mask[f"{conv}.weight"][drop] = False
        mask[f"{conv}.bias"][drop] = False
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(small(x), _masked(model, mask)(x), atol=1e-5, rtol=1e-5)


def test_prune_channels_leaves_the_model_alone_and_keeps_names_and_mode():
    model = models.cnn((1, 8, 8), channels=(8, 16), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = structured.prune_channels(model, structured.channel_mask(model, 0.5))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [name for name, _ in small.named_children()] == [name for name, _ in model.named_children()]
    assert small.training and not structured.prune_channels(model.eval(), {"conv1": [0]}).training
    small.conv1.weight.data.zero_()  # independent storage
    assert model.conv1.weight.abs().sum() > 0


def test_parameters_and_flops_shrink_as_expected():
    c1, c2, hidden = 16, 32, 64
    model = models.cnn((1, 8, 8), channels=(c1, c2), hidden=hidden, seed=0)
    small = structured.prune_channels(model, structured.channel_mask(model, 0.75))
    k1, k2 = 4, 8

    def params(a, b):
        return (a * 9 + a) + (b * a * 9 + b) + (b * 16 * hidden + hidden) + (hidden * 10 + 10)

    def flops(a, b):  # 8x8 maps for both convolutions, 4x4 after the pool
        return a * 9 * 64 + b * a * 9 * 64 + b * 16 * hidden + hidden * 10

    assert models.count_parameters(model) == params(c1, c2)
    assert models.count_parameters(small) == params(k1, k2)
    assert models.count_flops(model, (1, 8, 8)) == flops(c1, c2)
    assert models.count_flops(small, (1, 8, 8)) == flops(k1, k2)
    # the convolution between two pruned layers loses (1 - 0.75)² of its work
    assert small.conv2.weight.numel() == model.conv2.weight.numel() // 16


def test_pruned_model_trains_and_matches_a_fresh_model_of_its_widths():
    model = models.cnn((1, 8, 8), channels=(8, 16), seed=0)
    small = structured.prune_channels(model, structured.channel_mask(model, 0.5))
    fresh = models.cnn((1, 8, 8), channels=structured.conv_widths(small), seed=1)
    assert [p.shape for p in small.parameters()] == [p.shape for p in fresh.parameters()]
    loss = small(torch.randn(2, 1, 8, 8)).sum()
    loss.backward()
    assert all(p.grad is not None for p in small.parameters())


# --- prune_channels: errors -----------------------------------------------------------------------

def test_prune_channels_rejects_unstructured_masks():
    model = models.cnn((1, 8, 8), channels=(8, 16), seed=0)
    mask = pruning.global_magnitude_mask(model, 0.5)
    with pytest.raises(ValueError, match="not channel-structured"):
        structured.prune_channels(model, mask)


@pytest.mark.parametrize(
    "keep, error, message",
    [
        ({"conv1": []}, ValueError, r"keep\['conv1'\] is empty"),
        ({"conv1": [0, 8]}, ValueError, r"outside 0…7"),
        ({"conv1": [1, 1, 2]}, ValueError, r"duplicate"),
        ({"conv1": torch.tensor([0.0, 1.0])}, ValueError, r"integer channel indices"),
        ({"conv9": [0]}, KeyError, r"conv9"),
        ({"fc1": [0]}, KeyError, r"neither a convolution"),
        ([0, 1], TypeError, r"keep must be a dict"),
    ],
)
def test_prune_channels_rejects_bad_indices(keep, error, message):
    model = models.cnn((1, 8, 8), channels=(8, 16), seed=0)
    with pytest.raises(error, match=message):
        structured.prune_channels(model, keep)


def test_prune_channels_rejects_unsupported_models():
    with pytest.raises(TypeError, match="nn.Sequential"):
        structured.prune_channels(nn.ModuleList([nn.Conv2d(1, 2, 3)]), {})
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 36, 2))
    with pytest.raises(TypeError, match="BatchNorm2d"):
        structured.prune_channels(model, {"0": [0, 1]})
    mask = structured.channel_mask(models.cnn((1, 8, 8), channels=(4, 4), seed=0), 0.5)
    mask["conv1.weight"][:] = False
    mask["conv1.bias"][:] = False
    with pytest.raises(ValueError, match="removes every channel"):
        structured.kept_channels(models.cnn((1, 8, 8), channels=(4, 4), seed=0), mask)


# --- the exercise's answer agrees with prune_channels (its wrong answers: test_checks.py) ------------

def _right(keep, height, width):
    return (keep[:, None] * height * width + torch.arange(height * width)).flatten()


def test_check_flatten_feature_indices_passes_a_correct_answer_that_agrees_with_prune_channels(capsys):
    from lecturelib import checks

    def flatten_feature_indices(keep, height, width):
        return _right(keep, height, width)

    checks.check_flatten_feature_indices(flatten_feature_indices)
    assert "all 4 cases pass" in capsys.readouterr().out
    model = models.cnn((1, 8, 8), channels=(4, 6), seed=0)
    keep = torch.tensor([1, 4, 5])
    small = structured.prune_channels(model, {"conv2": keep})
    torch.testing.assert_close(small.fc1.weight, model.fc1.weight[:, flatten_feature_indices(keep, 4, 4)])
