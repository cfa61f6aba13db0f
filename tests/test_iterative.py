"""Tests of lecturelib.iterative (the pruning loop, schedules, ratio curves); its chapters' self-checks are in test_checks.py."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lecturelib import data, iterative, models, pruning


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits", seed=0)


def small_model(d, seed=0):
    return models.mlp(d.input_shape, d.num_classes, hidden=(32, 16), seed=seed)


# --- schedules ---

@pytest.mark.parametrize("final, rounds", [(0.5, 1), (0.875, 3), (0.98, 5), (0.9, 7), (0.0, 2)])
def test_sparsity_schedule_ends_exactly_and_prunes_a_constant_fraction_of_the_rest(final, rounds):
    schedule = iterative.sparsity_schedule(final, rounds)
    assert len(schedule) == rounds
    assert schedule[-1] == final
    kept = np.array([1.0] + [1 - s for s in schedule])
    rates = 1 - kept[1:] / kept[:-1]
    assert np.allclose(rates, rates[0])
    assert all(b >= a for a, b in zip(schedule[:-1], schedule[1:]))


def test_iterative_sparsities_compound_the_rate():
    assert iterative.iterative_sparsities(0.2, 3) == pytest.approx([0.2, 0.36, 0.488])
    with pytest.raises(ValueError, match="rounds must be > 0"):
        iterative.iterative_sparsities(0.2, 0)


def test_sparsity_schedule_reuses_iterative_sparsities():
    rate = 1 - 0.2 ** (1 / 4)
    assert iterative.sparsity_schedule(0.8, 4)[:-1] == pytest.approx(iterative.iterative_sparsities(rate, 4)[:-1])


@pytest.mark.parametrize("bad", [1.0, -0.1, 2])
def test_sparsity_schedule_rejects_bad_final(bad):
    with pytest.raises(ValueError, match="final_sparsity"):
        iterative.sparsity_schedule(bad, 3)


def test_sparsity_schedule_rejects_bad_rounds():
    with pytest.raises(ValueError, match="rounds"):
        iterative.sparsity_schedule(0.5, 0)
    with pytest.raises(TypeError, match="rounds"):
        iterative.sparsity_schedule(0.5, 2.0)


def test_split_budget_adds_up():
    assert iterative.split_budget(10, 3) == [4, 3, 3]
    assert sum(iterative.split_budget(301, 7)) == 301
    assert iterative.split_budget(0, 2) == [0, 0]


# --- the loop ---

@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_loop_reaches_the_exact_requested_sparsity_at_every_level(digits, scope):
    model = small_model(digits)
    schedule = iterative.sparsity_schedule(0.9, 3)
    records = iterative.prune_finetune_loop(model, digits, schedule, finetune_iterations=5, scope=scope)
    assert [r.level for r in records] == [0, 1, 2, 3]
    assert records[0].sparsity == 0.0 and records[0].total_iterations == 0
    sizes = {name: p.numel() for name, p in model.named_parameters() if name in pruning.prunable_names(model)}
    for record, target in zip(records[1:], schedule):
        if scope == "layerwise":
            for name, keep in record.mask.items():
                assert int((~keep).sum()) == round(target * sizes[name]), (name, target)
        else:
            assert int(sum((~k).sum() for k in record.mask.values())) == round(target * sum(sizes.values()))
    # nested masks: pruned weights stay pruned
    for earlier, later in zip(records[1:-1], records[2:]):
        for name in later.mask:
            assert not (later.mask[name] & ~earlier.mask[name]).any()
    assert records[-1].total_iterations == 15
    params = dict(model.named_parameters())
    for name, keep in records[-1].mask.items():
        assert torch.all(params[name][~keep] == 0)


@pytest.mark.parametrize("train_kwargs", [
    dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3),
    dict(optimizer="adam", lr=3e-3, weight_decay=1e-3),
    dict(optimizer="sgd", lr=0.05, momentum=0.9, l1=1e-4),
])
def test_masks_stay_applied_through_fine_tuning_with_momentum_and_weight_decay(digits, train_kwargs):
    model = small_model(digits)
    # give the optimiser something to remember: train densely first, with momentum
    from lecturelib import training

    training.train(model, digits, iterations=30, **train_kwargs)
    records = iterative.prune_finetune_loop(model, digits, [0.5, 0.8], finetune_iterations=40, train_kwargs=train_kwargs)
    params = dict(model.named_parameters())
    for name, keep in records[-1].mask.items():
        assert torch.count_nonzero(params[name][~keep]) == 0, f"{name}: pruned weights revived"
        assert torch.count_nonzero(params[name][keep]) > 0.9 * int(keep.sum())


def test_loop_with_zero_iterations_only_prunes_and_pruned_metrics_equal_final(digits):
    model = small_model(digits)
    before = copy.deepcopy(model.state_dict())
    records = iterative.prune_finetune_loop(model, digits, [0.3, 0.6], finetune_iterations=0)
    for r in records[1:]:
        assert r.pruned_acc == r.test_acc and r.iterations == 0
    params = dict(model.named_parameters())
    keep = records[-1].mask["fc1.weight"]
    assert torch.equal(params["fc1.weight"][keep], before["fc1.weight"][keep])


def test_loop_is_deterministic(digits):
    a = iterative.prune_finetune_loop(small_model(digits), digits, [0.5, 0.7], finetune_iterations=10)
    b = iterative.prune_finetune_loop(small_model(digits), digits, [0.5, 0.7], finetune_iterations=10)
    assert [r.test_acc for r in a] == [r.test_acc for r in b]


def test_loop_starts_from_a_given_mask(digits):
    model = small_model(digits)
    start = pruning.layerwise_magnitude_mask(model, 0.5)
    records = iterative.prune_finetune_loop(model, digits, [0.6], finetune_iterations=0, mask=start)
    assert records[0].sparsity == pytest.approx(pruning.sparsity(start))
    for name in start:
        assert not (records[1].mask[name] & ~start[name]).any()


def test_loop_validation(digits):
    model = small_model(digits)
    with pytest.raises(ValueError, match="non-decreasing"):
        iterative.prune_finetune_loop(model, digits, [0.5, 0.3], finetune_iterations=1)
    with pytest.raises(ValueError, match="scope"):
        iterative.prune_finetune_loop(model, digits, [0.5], finetune_iterations=1, scope="per-neuron")
    with pytest.raises(ValueError, match="2 entries"):
        iterative.prune_finetune_loop(model, digits, [0.5], finetune_iterations=[1, 2])
    with pytest.raises(ValueError, match="finetune_iterations"):
        iterative.prune_finetune_loop(model, digits, [0.5], finetune_iterations=-1)
    with pytest.raises(ValueError, match="mask"):
        iterative.prune_finetune_loop(model, digits, [0.5], finetune_iterations=1, train_kwargs={"mask": {}})
    with pytest.raises(ValueError, match="sparsities"):
        iterative.prune_finetune_loop(model, digits, [1.0], finetune_iterations=1)


def test_prune_to_sparsity_one_shot_and_iterative_share_the_budget(digits):
    model = small_model(digits)
    one = iterative.prune_to_sparsity(copy.deepcopy(model), digits, 0.9, rounds=1, finetune_iterations=12)
    many = iterative.prune_to_sparsity(copy.deepcopy(model), digits, 0.9, rounds=3, finetune_iterations=12)
    assert one.total_iterations == many.total_iterations == 12
    assert one.sparsity == pytest.approx(many.sparsity) and one.level == 1 and many.level == 3


# --- ratio curves ---

def test_ratio_curve_shapes_and_leaves_the_model_alone(digits):
    model = small_model(digits)
    before = copy.deepcopy(model.state_dict())
    curve = iterative.ratio_curve(model, digits, [0.5, 0.9, 0.99], retrain_iterations=5)
    for values in (curve.pruned_acc, curve.pruned_loss, curve.oneshot_acc, curve.oneshot_loss, curve.iterative_acc, curve.iterative_loss):
        assert values.shape == (3,)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert 0 <= curve.dense_acc <= 1
    assert curve.budget.tolist() == [5, 10, 15]   # both retrained curves spend (i + 1) * 5 steps at ratio i


def test_ratio_curve_one_shot_point_is_prune_once_then_retrain_for_the_same_budget(digits):
    model = small_model(digits)
    curve = iterative.ratio_curve(model, digits, [0.5, 0.9], retrain_iterations=4, data_seed=3)
    by_hand = iterative.prune_finetune_loop(copy.deepcopy(model), digits, [0.9], finetune_iterations=8, data_seed=3)[-1]
    assert curve.oneshot_acc[1] == by_hand.test_acc and curve.oneshot_loss[1] == by_hand.test_loss
    plain = iterative.prune_finetune_loop(copy.deepcopy(model), digits, [0.9], finetune_iterations=0)[-1]
    assert curve.pruned_acc[1] == plain.test_acc


def test_largest_ratio_within():
    assert iterative.largest_ratio_within([0.5, 0.8, 0.9], [0.97, 0.96, 0.99], 0.97, 0.01) == 0.9
    assert iterative.largest_ratio_within([0.5, 0.8, 0.9], [0.97, 0.90, 0.99], 0.97, 0.01) == 0.5
    assert iterative.largest_ratio_within([0.5], [0.5], 0.97, 0.01) == 0.0
    with pytest.raises(ValueError, match="same length"):
        iterative.largest_ratio_within([0.5], [0.5, 0.6], 0.97, 0.01)
