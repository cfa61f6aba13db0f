"""Tests of lecturelib.lottery on a tiny network and a tiny slice of digits."""

import pytest
import torch

from lecturelib import data, iterative, lottery, models, pruning


@pytest.fixture(scope="module")
def tiny():
    d = data.load_dataset("digits", val_fraction=0.2, n_train=200)
    return d


def make(seed, d):
    return models.mlp(d.input_shape, d.num_classes, hidden=(16, 8), seed=seed)


KW = dict(iterations=12, batch_size=16, eval_every=4, device="cpu")


def imp(model, d, **kwargs):
    """IMP of one network: its levels."""
    return lottery.iterative_magnitude_pruning([model], d, **kwargs)[0].levels


def test_layer_sparsity_schedule_gives_the_output_layer_its_own_rate_and_compounds_it(tiny):
    schedule = iterative.layer_sparsity_schedule(make(0, tiny), 0.2, 3, 0.1)
    assert len(schedule) == 3 and set(schedule[0]) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    assert schedule[0] == pytest.approx({"fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1})
    assert schedule[2]["fc2.weight"] == pytest.approx(1 - 0.8 ** 3)
    assert schedule[2]["fc3.weight"] == pytest.approx(1 - 0.9 ** 3)
    assert iterative.layer_sparsity_schedule(make(0, tiny), 0.3, 1) == [pytest.approx({"fc1.weight": 0.3, "fc2.weight": 0.3, "fc3.weight": 0.3})]
    with pytest.raises(ValueError, match="output_rate"):
        iterative.layer_sparsity_schedule(make(0, tiny), 0.2, 1, 1.5)


def test_imp_returns_one_record_per_level_with_nested_masks(tiny):
    levels = imp(make(0, tiny), tiny, rounds=3, rate=0.5, output_rate=0.25, train_kwargs=KW)
    assert [level.level for level in levels] == [0, 1, 2, 3]
    assert [level.total_iterations for level in levels] == [12, 24, 36, 48]
    assert levels[0].weights_left == 1.0
    for before, after in zip(levels, levels[1:]):
        for name in after.mask:
            assert not torch.any(after.mask[name] & ~before.mask[name]), "a pruned weight came back"
    record = levels[3].to_dict()
    assert record["layer_weights_left"]["fc1.weight"] == pytest.approx(0.5 ** 3, abs=0.01)
    assert record["layer_weights_left"]["fc3.weight"] == pytest.approx(0.75 ** 3, abs=0.02)
    assert 0 < record["best_iteration"] <= 12 and record["final_test_acc"] == levels[3].test_acc
    assert set(levels[0].to_dict()) >= {"weights_left", "best_test_acc", "best_iteration", "history"}
    assert "mask" not in levels[0].to_dict()


def test_reset_rewinds_survivors_to_the_initial_weights(tiny, monkeypatch):
    starts = []
    real_train = iterative.train

    def spy(model, data, **kwargs):
        starts.append({n: p.detach().clone() for n, p in model.state_dict().items()})
        return real_train(model, data, **kwargs)

    monkeypatch.setattr(iterative, "train", spy)
    model = make(0, tiny)
    w0 = {n: p.detach().clone() for n, p in model.state_dict().items()}
    levels = imp(model, tiny, rounds=2, rate=0.5, train_kwargs=KW)
    for start in starts:  # every level starts from W_0 (train then applies the mask)
        for name in w0:
            assert torch.equal(start[name], w0[name])
    # the final weights are zero where pruned
    for name, keep in levels[-1].mask.items():
        assert torch.all(dict(model.named_parameters())[name][~keep] == 0)


def test_rewinding_starts_later_levels_from_w_k(tiny, monkeypatch):
    starts = []
    real_train = iterative.train

    def spy(model, data, **kwargs):
        starts.append({n: p.detach().clone() for n, p in model.state_dict().items()})
        return real_train(model, data, **kwargs)

    monkeypatch.setattr(iterative, "train", spy)
    model = make(0, tiny)
    reference = make(0, tiny)
    history = real_train(reference, tiny, snapshot_at=[5], **KW)
    run = lottery.iterative_magnitude_pruning([model], tiny, rounds=2, rate=0.5, k=5, train_kwargs=KW)[0]
    assert run.rewind.k == 5 and all(torch.equal(run.rewind.state[n], v) for n, v in history.snapshots[5].items()), "IMP returns W_5"
    for start in starts[1:]:
        for name, value in history.snapshots[5].items():
            assert torch.equal(start[name], value), f"level did not start from W_5 ({name})"
    assert not torch.equal(starts[1]["fc1.weight"], starts[0]["fc1.weight"])


def test_rewound_levels_train_the_rest_of_the_run_from_k(tiny, monkeypatch):
    calls = []
    real_train = iterative.train
    monkeypatch.setattr(iterative, "train", lambda model, data, **kw: calls.append(kw) or real_train(model, data, **kw))
    imp(make(0, tiny), tiny, rounds=2, rate=0.5, k=5, train_kwargs={**KW, "optimizer": "sgd", "lr": 0.1, "lr_schedule": "cosine"})
    assert calls[0]["iterations"] == 12 and "start_iteration" not in calls[0]          # the dense run: all T
    for level in calls[1:]:                                                              # rewound: k -> T
        assert (level["iterations"], level["start_iteration"], level["lr_schedule"]) == (7, 5, "cosine")
    calls.clear()
    imp(make(0, tiny), tiny, rounds=1, rate=0.5, train_kwargs=KW)
    assert [(c["iterations"], c.get("start_iteration", 0)) for c in calls] == [(12, 0), (12, 0)]   # reset: all T


def test_imp_is_seeded(tiny):
    a = imp(make(1, tiny), tiny, rounds=1, rate=0.5, train_kwargs=KW)
    b = imp(make(1, tiny), tiny, rounds=1, rate=0.5, train_kwargs=KW)
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]


def test_imp_validates_its_arguments(tiny):
    with pytest.raises(ValueError, match="rounds"):
        imp(make(0, tiny), tiny, rounds=0, train_kwargs=KW)
    with pytest.raises(ValueError, match="99"):
        imp(make(0, tiny), tiny, rounds=1, k=99, train_kwargs=KW)
    with pytest.raises(ValueError, match=r"k \(the rewind iteration\) must be below the 12 training iterations, got 12"):
        imp(make(0, tiny), tiny, rounds=1, k=12, train_kwargs=KW)
    with pytest.raises(ValueError, match="mask"):
        imp(make(0, tiny), tiny, rounds=1, train_kwargs={**KW, "mask": {}})
    with pytest.raises(ValueError, match="data_seed"):
        imp(make(0, tiny), tiny, rounds=1, train_kwargs={**KW, "data_seed": 1})


def test_random_reinit_keeps_the_mask_but_not_the_weights(tiny):
    levels = imp(make(0, tiny), tiny, rounds=1, rate=0.5, train_kwargs=KW)
    mask = levels[1].mask
    [control] = lottery.train_random_reinits(lambda s: make(s, tiny), tiny, [mask], seeds=[7], data_seeds=[1], train_kwargs=KW, levels=[1])
    assert control.level == 1 and control.weights_left == pytest.approx(levels[1].weights_left)
    assert all(torch.equal(control.mask[n], mask[n]) for n in mask)
    assert not torch.equal(make(7, tiny).fc1.weight, make(0, tiny).fc1.weight)


# --- the self-check of the exercise "the weights a ticket restarts from" ---

from lecturelib import checks  # noqa: E402


def ticket_weights(init_state, mask):
    return {name: value * mask[name] if name in mask else value.clone() for name, value in init_state.items()}


def test_check_ticket_weights_accepts_a_correct_solution(capsys):
    checks.check_ticket_weights(ticket_weights)
    assert "all 2 cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda init, mask: {n: v * mask[n] for n, v in init.items() if n in mask}, "lacks"),
    (lambda init, mask: {n: v.mul_(mask[n]) if n in mask else v for n, v in init.items()}, "in place"),
    (lambda init, mask: {n: v.clone() for n, v in init.items()}, "pruned entries"),
    (lambda init, mask: {n: 2 * v * mask[n] if n in mask else v for n, v in init.items()}, "differ from their initial values"),
    (lambda init, mask: {n: v * mask[n] if n in mask else torch.zeros_like(v) for n, v in init.items()}, "copied from init_state"),
    (lambda init, mask: [v for v in init.values()], "should return a dict"),
])
def test_check_ticket_weights_says_what_is_wrong(wrong, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_ticket_weights(wrong)


def test_many_imp_rounds_on_a_small_network_never_empty_a_layer(tiny):
    model = models.mlp(tiny.input_shape, tiny.num_classes, hidden=(4,), seed=0)   # fc2 has 40 weights
    levels = imp(model, tiny, rounds=12, rate=0.5, train_kwargs=dict(KW, iterations=4, eval_every=4))
    assert all(keep.any() for level in levels for keep in level.mask.values())
    assert levels[-1].weights_left > 0
    assert levels[-1].to_dict()["layer_weights_left"]["fc2.weight"] == pytest.approx(1 / 40), "one weight is kept: 0.5 ** 12 of 40 rounds to 0"
