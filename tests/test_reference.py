"""lecturelib.reference: the exercises' solutions agree with lecturelib's own implementations of the same algorithms.

The checks of chapters 6-10 compare a student's function with these references, so a reference that
drifted from the library (another rounding, another data order) would mark right answers wrong.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from lecturelib import checks, iterative, pruning, reference, stability, structured, training
from lecturelib.models import cnn


def test_pruned_accuracies_is_the_ratio_curve_without_retraining(one_thread):
    model, data = checks._trained_tiny(0, 60)
    before = copy.deepcopy(model.state_dict())
    sparsities = [0.3, 0.8, 0.95]
    curve = iterative.ratio_curve(model, data, sparsities, retrain_iterations=1, scope="global")
    assert np.allclose(reference.pruned_accuracies(model, data, sparsities), curve.pruned_acc, atol=1e-9)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "the trained model is not changed"


def test_iterative_prune_is_global_pruning_then_masked_fine_tuning_each_round(one_thread):
    """The reference runs the library's loop; here the exercise's algorithm is written out on its own."""
    model, data = checks._trained_tiny(1, 60)
    written_out = training.clone_model(model)
    masks = reference.iterative_prune(model, data, 0.875, 3, 10)
    mask = None
    for r, target in enumerate(iterative.sparsity_schedule(0.875, 3), start=1):
        mask = pruning.global_magnitude_mask(written_out, target, current_mask=mask)
        pruning.apply_mask(written_out, mask)
        training.train(written_out, data, iterations=10, mask=mask, data_seed=r)
        assert all(torch.equal(mask[k], masks[r - 1][k]) for k in mask), f"round {r}"
    assert [round(pruning.sparsity(m), 3) for m in masks] == [0.5, 0.75, 0.875]
    for p, q in zip(model.parameters(), written_out.parameters()):
        assert torch.equal(p, q)


def test_find_ticket_is_imp_with_reset(one_thread):
    """The reference runs lottery.iterative_magnitude_pruning; here IMP with reset is written out on its own."""
    model, data = checks._tiny_mlp(2), checks._tiny_data(2)
    written_out = training.clone_model(model)
    masks = reference.find_ticket(model, data, 2, 0.5, 20)
    initial = copy.deepcopy(written_out.state_dict())                          # W_0
    training.train(written_out, data, iterations=20)
    mask = None
    for r in (1, 2):
        mask = pruning.layerwise_magnitude_mask(written_out, 1 - 0.5 ** r, current_mask=mask)
        written_out.load_state_dict(initial)                                   # reset
        training.train(written_out, data, iterations=20, mask=mask)
        assert all(torch.equal(mask[k], masks[r - 1][k]) for k in mask), f"round {r}"
    for p, q in zip(model.parameters(), written_out.parameters()):
        assert torch.equal(p, q)


def test_remove_channels_is_prune_channels_for_two_convolutions():
    net = cnn((1, 8, 8), 10, channels=(6, 4), seed=0)
    keep = torch.tensor([0, 2, 5])
    small = structured.prune_channels(net, {"conv1": keep})
    conv1, conv2 = reference.remove_channels(net.conv1, net.conv2, keep)
    for mine, theirs in ((conv1, small.conv1), (conv2, small.conv2)):
        assert mine.weight.shape == theirs.weight.shape and torch.equal(mine.weight, theirs.weight)
        assert torch.equal(mine.bias, theirs.bias)
    assert net.conv1.weight.shape[0] == 6, "the given layers are not changed"


def test_random_reinit_keeps_the_mask_and_draws_afresh():
    mask = {name: torch.rand(p.shape, generator=torch.Generator().manual_seed(0)) > 0.5
            for name, p in checks._tiny_mlp(0).named_parameters() if name.endswith("weight")}
    net = reference.random_reinit(checks._tiny_mlp, mask, 5)
    fresh = checks._tiny_mlp(5).state_dict()
    for name, value in net.state_dict().items():
        expected = fresh[name] * mask[name] if name in mask else fresh[name]
        assert torch.equal(value, expected)


def test_the_checks_pass_lecturelibs_own_error_barrier(capsys):
    checks.check_error_barrier(stability.error_barrier)
    assert capsys.readouterr().out.startswith("✓ error_barrier")
