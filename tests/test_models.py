"""lecturelib.models: shapes, seeding, parameter and FLOP counts."""

import pytest
import torch
from torch import nn

from lecturelib import models, pruning


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_mlp_is_lenet_300_100_for_any_input(shape):
    net = models.mlp(shape, 10)
    assert net(torch.zeros(5, *shape)).shape == (5, 10)
    n_in = shape[0] * shape[1] * shape[2]
    assert models.count_parameters(net) == n_in * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    assert [name for name, _ in net.named_parameters()][::2] == ["fc1.weight", "fc2.weight", "fc3.weight"]


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("channels", [(16, 32), (8, 8, 16, 16)])
def test_cnn_works_on_8_28_32_pixel_inputs(shape, channels):
    net = models.cnn(shape, 10, channels=channels)
    assert net(torch.zeros(2, *shape)).shape == (2, 10)


def test_seed_repeats_initialisation_without_touching_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = models.mlp((1, 8, 8), seed=7)
    assert torch.equal(torch.rand(1), before)  # the global generator was not consumed
    b = models.mlp((1, 8, 8), seed=7)
    c = models.mlp((1, 8, 8), seed=8)
    assert torch.equal(a.fc1.weight, b.fc1.weight) and not torch.equal(a.fc1.weight, c.fc1.weight)


def test_flops_of_linear_and_conv_layers():
    net = models.mlp((1, 8, 8), 10, hidden=(20,))
    assert models.count_flops(net, (1, 8, 8)) == 64 * 20 + 20 * 10
    conv = models.cnn((1, 8, 8), 10, channels=(4, 6), hidden=5)
    expected = 4 * 1 * 9 * 64 + 6 * 4 * 9 * 64 + (6 * 4 * 4) * 5 + 5 * 10
    assert models.count_flops(conv, (1, 8, 8)) == expected


def test_masked_counts_only_surviving_weights():
    net = models.mlp((1, 8, 8), 10, hidden=(20,), seed=0)
    mask = pruning.layerwise_magnitude_mask(net, 0.5)
    assert models.count_parameters(net, mask) == 640 + 20 + 100 + 10
    assert models.count_flops(net, (1, 8, 8), mask) == 640 + 100


@pytest.mark.parametrize("call, error, match", [
    (lambda: models.build_model("resnet", (1, 8, 8)), ValueError, "unknown model name 'resnet'; allowed: 'mlp', 'cnn'"),
    (lambda: models.cnn((1, 10, 10), channels=(4, 4, 8, 8)), ValueError, "not divisible by 2\\*\\*2"),
    (lambda: models.cnn((1, 8, 8), channels=(4, 8, 16)), ValueError, "even, non-zero number"),
    (lambda: models.mlp((1, 8, 8), 0), ValueError, "num_classes must be > 0"),
])
def test_bad_model_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_build_model_by_name():
    assert isinstance(models.build_model("cnn", (1, 8, 8), seed=0).conv1, nn.Conv2d)


def test_cnn1d_is_the_mnist1d_papers_network():
    net = models.build_model("cnn1d", (1, 40), 10, seed=0)
    assert [n for n, _ in net.named_parameters() if n.endswith("weight")] == ["conv1.weight", "conv2.weight", "conv3.weight", "fc1.weight"]
    assert net.conv1.kernel_size == (5,) and net.conv2.kernel_size == (3,) and net.conv1.stride == (2,) and net.conv1.padding == (1,)
    assert net.fc1.in_features == 125, "40 values -> 19 -> 10 -> 5 positions of 25 channels"
    assert net(torch.zeros(3, 1, 40)).shape == (3, 10)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), models.cnn1d((1, 40), seed=0).parameters())), "seeded"
    assert models.count_flops(net, (1, 40)) == 25 * 5 * 19 + 25 * 25 * 3 * 10 + 25 * 25 * 3 * 5 + 125 * 10, "Conv1d layers are counted"
    with pytest.raises(ValueError, match=r"input_shape must be \(C, L\)"):
        models.cnn1d((1, 8, 8))
    with pytest.raises(ValueError, match="too short"):
        models.cnn1d((1, 2))
