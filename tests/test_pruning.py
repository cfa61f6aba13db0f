"""lecturelib.pruning: the meaning of sparsity, layer-wise and global masks, torch.nn.utils.prune agreement."""

import copy

import pytest
import torch
from torch.nn.utils import prune

from lecturelib import models, pruning


@pytest.fixture
def net():
    return models.mlp((1, 8, 8), 10, hidden=(30, 20), seed=0)


def test_sparsity_rounding_rule_is_round_of_s_times_n(net):
    # fc3 has 20 * 10 = 200 weights: 0.333 * 200 = 66.6 -> 67 pruned; fc1 has 64 * 30 = 1920 -> 639.36 -> 639.
    mask = pruning.layerwise_magnitude_mask(net, 0.333)
    assert int((~mask["fc3.weight"]).sum()) == 67
    assert int((~mask["fc1.weight"]).sum()) == 639
    assert set(mask) == {"fc1.weight", "fc2.weight", "fc3.weight"}  # weights, not biases, by default


def test_layerwise_mask_prunes_smallest_magnitudes_in_each_layer(net):
    mask = pruning.layerwise_magnitude_mask(net, 0.5)
    for name, param in net.named_parameters():
        if name in mask:
            w = param.detach().abs()
            assert w[~mask[name]].max() <= w[mask[name]].min()
            assert pruning.sparsity({name: mask[name]}) == pytest.approx(0.5, abs=1 / w.numel())


def test_per_layer_rates_and_chosen_layers(net):
    mask = pruning.layerwise_magnitude_mask(net, {"fc1.weight": 0.2, "fc3.weight": 0.1})
    assert pruning.sparsity({"m": mask["fc1.weight"]}) == pytest.approx(0.2, abs=1e-3)
    assert pruning.sparsity({"m": mask["fc2.weight"]}) == 0.0
    assert int((~mask["fc3.weight"]).sum()) == 20
    biases = pruning.layerwise_magnitude_mask(net, 0.5, names=["fc1.bias"])
    assert set(biases) == {"fc1.bias"} and int((~biases["fc1.bias"]).sum()) == 15


def test_iterative_pruning_keeps_pruned_weights_pruned(net):
    first = pruning.global_magnitude_mask(net, 0.5)
    with torch.no_grad():  # make a pruned weight the largest: it must stay pruned
        idx = (~first["fc2.weight"]).nonzero()[0]
        net.fc2.weight[tuple(idx)] = 100.0
    second = pruning.global_magnitude_mask(net, 0.75, current_mask=first)
    assert not second["fc2.weight"][tuple(idx)]
    assert all(torch.all(second[n] <= first[n]) for n in first)
    assert pruning.sparsity(second) == pytest.approx(0.75, abs=1e-4)
    with pytest.raises(ValueError, match="pruned weights cannot be revived"):
        pruning.global_magnitude_mask(net, 0.4, current_mask=first)


def test_global_mask_equals_torch_global_unstructured(net):
    ours = pruning.global_magnitude_mask(net, 0.7)
    theirs_net = copy.deepcopy(net)
    params = [(theirs_net.fc1, "weight"), (theirs_net.fc2, "weight"), (theirs_net.fc3, "weight")]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.7)
    theirs = pruning.from_torch_prune(theirs_net)
    assert set(theirs) == set(ours)
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    # ... and layer-wise equals prune.l1_unstructured on each layer.
    layer_net = copy.deepcopy(net)
    prune.l1_unstructured(layer_net.fc2, "weight", amount=0.3)
    assert torch.equal(pruning.layerwise_magnitude_mask(net, 0.3)["fc2.weight"], layer_net.fc2.weight_mask.bool())


def test_round_trip_through_torch_prune_and_make_permanent(net):
    mask = pruning.layerwise_magnitude_mask(net, 0.6)
    x = torch.randn(4, 1, 8, 8)
    expected = pruning.apply_mask(copy.deepcopy(net), mask)(x)
    wrapped = pruning.to_torch_prune(copy.deepcopy(net), mask)
    assert hasattr(wrapped.fc1, "weight_orig") and torch.allclose(wrapped(x), expected)
    back = pruning.from_torch_prune(wrapped, make_permanent=True)
    assert all(torch.equal(back[n], mask[n]) for n in mask)
    assert not hasattr(wrapped.fc1, "weight_orig") and "fc1.weight" in dict(wrapped.named_parameters())
    assert torch.allclose(wrapped(x), expected)


def test_sparsity_report_counts_zeros(net):
    mask = pruning.layerwise_magnitude_mask(net, 0.5)
    rows = pruning.sparsity_report(net, mask)
    assert [r["name"] for r in rows] == ["fc1.weight", "fc2.weight", "fc3.weight", "total"]
    assert rows[-1]["weights"] == 1920 + 600 + 200 and rows[-1]["zeros"] == 960 + 300 + 100
    pruning.apply_mask(net, mask)
    assert pruning.sparsity_report(net)[-1]["zeros"] >= 1360  # from the weights themselves
    assert "total" in pruning.format_sparsity_report(rows)


@pytest.mark.parametrize("call, error, match", [
    (lambda n: pruning.global_magnitude_mask(n, 1.5), ValueError, r"sparsity must be in \[0, 1\), got 1.5"),
    (lambda n: pruning.global_magnitude_mask(n, -0.1), ValueError, r"sparsity must be in \[0, 1\), got -0.1"),
    (lambda n: pruning.layerwise_magnitude_mask(n, "half"), TypeError, "sparsity must be a float"),
    (lambda n: pruning.layerwise_magnitude_mask(n, 0.5, norm=3), ValueError, "unknown norm 3; allowed: 1, 2"),
    (lambda n: pruning.apply_mask(n, {"fc1.weight": torch.ones(2, 2, dtype=torch.bool)}), ValueError,
     r"mask\['fc1.weight'\] has shape \(2, 2\), but parameter 'fc1.weight' has shape \(30, 64\)"),
    (lambda n: pruning.apply_mask(n, {"fc9.weight": torch.ones(1)}), KeyError, "no parameter 'fc9.weight'"),
    (lambda n: pruning.apply_mask(n, {"fc3.weight": torch.full((10, 20), 0.5)}), ValueError, "only 0/1"),
    (lambda n: pruning.layerwise_magnitude_mask(n, {"fc7.weight": 0.5}), KeyError, "not pruned here"),
])
def test_bad_input_gets_a_clear_error(net, call, error, match):
    with pytest.raises(error, match=match):
        call(net)


def test_l2_scores_rank_like_l1():
    w = torch.randn(50)
    assert torch.equal(pruning.magnitude_scores(w, 1).argsort(), pruning.magnitude_scores(w, 2).argsort())


def test_conv1d_weights_are_prunable():
    net = models.build_model("cnn1d", (1, 40), 10, seed=0)
    names = pruning.prunable_names(net)
    assert names == ["conv1.weight", "conv2.weight", "conv3.weight", "fc1.weight"], "Conv1d weights must not be left unpruned silently"
    mask = pruning.layerwise_magnitude_mask(net, 0.5)
    assert set(mask) == set(names) and all(abs(1 - float(keep.float().mean()) - 0.5) < 0.01 for keep in mask.values())
    assert set(pruning.global_magnitude_mask(net, 0.5)) == set(names)


def test_a_layer_is_never_emptied_by_rounding():
    layer = torch.nn.Linear(8, 5)                      # 40 weights: round(0.99 * 40) = 40
    keep = pruning.layerwise_magnitude_mask(layer, 0.99)["weight"]
    assert int(keep.sum()) == 1 and keep.view(-1)[layer.weight.detach().abs().argmax()], "the largest weight survives"
    assert int(pruning.layerwise_magnitude_mask(layer, 0.98)["weight"].sum()) == 1    # round(39.2) = 39 as before
    assert int(pruning.layerwise_magnitude_mask(layer, 0.5)["weight"].sum()) == 20


def test_the_global_mask_never_empties_a_layer_and_keeps_its_count(net):
    with torch.no_grad():
        net.fc3.weight.mul_(1e-6)                      # the output layer holds the smallest weights of all
    n = sum(p.numel() for name, p in net.named_parameters() if name.endswith("weight"))
    mask = pruning.global_magnitude_mask(net, 0.9)
    assert int(mask["fc3.weight"].sum()) == 1 and sum(int((~m).sum()) for m in mask.values()) == round(0.9 * n)
    almost_all = pruning.global_magnitude_mask(net, 0.9999)
    assert [int(m.sum()) for m in almost_all.values()] == [1, 1, 1], "at most N - L pruned: one weight left per layer"


def test_a_layer_a_given_mask_emptied_stays_empty(net):
    current = pruning.ones_mask(net)
    current["fc3.weight"] = torch.zeros_like(current["fc3.weight"])
    mask = pruning.layerwise_magnitude_mask(net, {"fc1.weight": 0.5}, current_mask=current)
    assert int(mask["fc3.weight"].sum()) == 0, "never revived"


# --- the one selection: keep_largest, prune_weights, row_norms ------------------------------------

def test_keep_largest_breaks_ties_by_position_and_checks_the_count():
    scores = torch.tensor([[0.5, 0.1], [0.5, 0.5]])
    assert pruning.keep_largest(scores, 2).tolist() == [[False, False], [True, True]], "ties: the lower index is pruned first"
    assert pruning.keep_largest(scores, 0).sum() == 0 and pruning.keep_largest(scores, 4).all()
    assert pruning.keep_largest(torch.zeros(1000), 10).nonzero().flatten().tolist() == list(range(990, 1000))
    with pytest.raises(ValueError, match=r"n_keep must be in \[0, 4\].*got 5"):
        pruning.keep_largest(scores, 5)


def test_prune_weights_orders_and_the_input_untouched():
    w = torch.tensor([0.1, -3.0, 0.5, 2.0])
    assert torch.equal(pruning.prune_weights(w, 0.5, "smallest"), torch.tensor([0.0, -3.0, 0.0, 2.0]))
    assert torch.equal(pruning.prune_weights(w, 0.5, "largest"), torch.tensor([0.1, 0.0, 0.5, 0.0]))
    random_pruned = pruning.prune_weights(w, 0.5, "random", seed=3)
    assert int((random_pruned == 0).sum()) == 2 and torch.equal(random_pruned, pruning.prune_weights(w, 0.5, "random", seed=3))
    assert torch.equal(w, torch.tensor([0.1, -3.0, 0.5, 2.0]))  # the input is not modified
    assert torch.equal(pruning.prune_weights(w, 0.99), torch.tensor([0.0, -3.0, 0.0, 0.0])), "never emptied: the largest stays"


def test_prune_weights_ranks_every_entry_of_a_matrix_and_counts_exactly_with_ties():
    w = torch.arange(1.0, 17.0).reshape(4, 4)
    pruned = pruning.prune_weights(w, 0.5)
    assert pruned.shape == (4, 4) and int((pruned == 0).sum()) == 8, "8 of 16, not all 16"
    assert torch.equal(pruned.reshape(-1)[8:], w.reshape(-1)[8:]), "the 8 smallest |w| are the ones zeroed"
    assert int((pruning.prune_weights(w, 0.25, "largest") == 0).sum()) == 4
    tied = pruning.prune_weights(torch.tensor([0.5, -0.5, 0.5, 2.0, -0.1]), 0.4)  # 2 of 5: -0.1 and the first tied 0.5
    assert tied.tolist() == [0.0, -0.5, 0.5, 2.0, 0.0]
    big = torch.randn(300, 200, generator=torch.Generator().manual_seed(3))
    assert int((pruning.prune_weights(big, 0.9) == 0).sum()) == 54000


@pytest.mark.parametrize("call, error, match", [
    (lambda: pruning.prune_weights(torch.ones(3), 1.0), ValueError, r"sparsity must be in \[0, 1\), got 1.0"),
    (lambda: pruning.prune_weights(torch.ones(3), 0.5, "median"), ValueError, "unknown order 'median'; allowed: 'smallest', 'largest', 'random'"),
    (lambda: pruning.prune_weights([1.0, 2.0], 0.5), TypeError, "w must be a tensor, got list"),
    (lambda: pruning.row_norms(torch.ones(2, 2), 3), ValueError, "unknown norm 3"),
])
def test_prune_weights_and_row_norms_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_row_norms_are_l1_or_l2_over_all_but_the_first_dimension():
    w = torch.tensor([[[3.0, -4.0]], [[1.0, 0.0]]])  # (2, 1, 2)
    assert pruning.row_norms(w, 1).tolist() == [7.0, 1.0] and pruning.row_norms(w, 2).tolist() == [5.0, 1.0]
