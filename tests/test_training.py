"""lecturelib.training: repeatability, masks that hold under every optimiser, snapshots, history."""

import math

import pytest
import torch

from lecturelib import data, models, pruning, training


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits", val_fraction=0.2)


def _run(digits, **kwargs):
    net = models.mlp(digits.input_shape, 10, hidden=(32,), seed=0)
    history = training.train(net, digits, iterations=60, batch_size=32, eval_every=20, device="cpu", **kwargs)
    return net, history


def test_training_is_exactly_repeatable_and_learns(digits):
    net_a, hist_a = _run(digits, data_seed=1)
    net_b, hist_b = _run(digits, data_seed=1)
    _, hist_c = _run(digits, data_seed=2)
    assert all(torch.equal(a, b) for a, b in zip(net_a.state_dict().values(), net_b.state_dict().values()))
    assert hist_a.to_dict() == hist_b.to_dict()
    assert hist_a.test_loss != hist_c.test_loss  # another data order is another path (SGD noise)
    assert hist_a.test_acc[-1] > 0.8 and hist_a.iteration == [20, 40, 60]


@pytest.mark.parametrize("opt", [
    {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3},
    {"optimizer": "adam", "lr": 1e-2, "weight_decay": 1e-3},
    {"optimizer": "sgd", "lr": 0.1, "l1": 1e-3},
])
def test_pruned_weights_stay_exactly_zero_under_momentum_and_decay(digits, opt):
    net = models.mlp(digits.input_shape, 10, hidden=(32,), seed=0)
    training.train(net, digits, iterations=30, device="cpu", **opt)  # optimiser-free warm start
    mask = pruning.global_magnitude_mask(net, 0.8)
    training.train(net, digits, iterations=50, device="cpu", mask=mask, **opt)
    for name, param in net.named_parameters():
        if name in mask:
            assert torch.all(param[~mask[name]] == 0), f"{name}: a pruned weight came back"
            assert torch.all(param[mask[name]] != 0)


def test_snapshots_hold_weights_at_chosen_iterations(digits):
    net = models.mlp(digits.input_shape, 10, hidden=(32,), seed=0)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    history = training.train(net, digits, iterations=40, snapshot_at=[0, 10, 40], device="cpu")
    assert sorted(history.snapshots) == [0, 10, 40]
    assert all(torch.equal(history.snapshots[0][k], init[k]) for k in init)
    assert all(torch.equal(history.snapshots[40][k], v) for k, v in net.state_dict().items())
    assert not torch.equal(history.snapshots[10]["fc1.weight"], init["fc1.weight"])
    assert history.snapshots[10]["fc1.weight"] is not net.state_dict()["fc1.weight"]  # a copy, not a view


def test_history_best_iteration_uses_validation(digits):
    _, history = _run(digits)
    assert len(history.val_acc) == 3 and history.best_iteration in history.iteration
    assert history.best_index == max(range(3), key=lambda i: (history.val_acc[i], -i))


def test_evaluate_returns_loss_and_accuracy(digits):
    net = models.mlp(digits.input_shape, 10, seed=0)
    loss, acc = training.evaluate(net, digits.x_test, digits.y_test)
    assert 0 <= acc <= 1 and loss > 1.5  # untrained: near chance, loss near ln 10


@pytest.mark.parametrize("kwargs, match", [
    ({"iterations": 10, "epochs": 1}, "exactly one of iterations or epochs"),
    ({}, "exactly one of iterations or epochs"),
    ({"iterations": 10, "optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; allowed: 'sgd', 'adam'"),
    ({"iterations": -1}, "iterations must be > 0"),
    ({"iterations": 10, "lr_milestones": (0,)}, "lr_milestones must be > 0"),
    ({"iterations": 10, "lr_gamma": 1.5}, r"lr_gamma must be in \(0, 1\]"),
])
def test_bad_training_arguments(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        training.train(models.mlp((1, 8, 8), seed=0), digits, **kwargs)


def test_wrong_mask_is_refused_before_training(digits):
    net = models.mlp((1, 8, 8), seed=0)
    with pytest.raises(ValueError, match=r"mask\['fc1.weight'\] has shape \(3,\)"):
        training.train(net, digits, iterations=1, mask={"fc1.weight": torch.ones(3, dtype=torch.bool)})


def test_default_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert training.default_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert training.default_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training.default_device().type == "cuda"


def test_progress_bar_can_be_switched_on(digits, capsys):
    _run(digits, progress=True)
    assert "training" in capsys.readouterr().err


def test_lr_milestones_scale_the_learning_rate_from_that_iteration_on(digits):
    # With lr_gamma ~ 0 the weights freeze at the milestone: the end equals the snapshot taken there.
    frozen, history = _run(digits, optimizer="sgd", lr=0.2, lr_milestones=(30,), lr_gamma=1e-9, snapshot_at=[30])
    for name, value in frozen.state_dict().items():
        assert torch.allclose(value, history.snapshots[30][name], atol=1e-6), name
    moving, history = _run(digits, optimizer="sgd", lr=0.2, snapshot_at=[30])
    assert not torch.allclose(moving.state_dict()["fc1.weight"], history.snapshots[30]["fc1.weight"], atol=1e-6)
    late, _ = _run(digits, optimizer="sgd", lr=0.2, lr_milestones=(60,), lr_gamma=1e-9)   # after the last step: no effect
    assert all(torch.equal(a, b) for a, b in zip(late.state_dict().values(), moving.state_dict().values()))


def test_cosine_schedule_anneals_to_zero_and_continues_a_run_from_start_iteration(digits):
    lrs = _rates(training.TrainSettings(lr=0.2, lr_schedule="cosine"), 11, run_total=10)
    assert lrs[0] == 0.2 and lrs[5] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(lrs, lrs[1:])), "cosine decays monotonically, no warm-up"
    assert lrs == pytest.approx([0.1 * (1 + math.cos(math.pi * t / 10)) for t in range(11)], abs=1e-15)
    # a step schedule that starts at iteration 4 of the run has passed milestone 3 and passes 6 at its step 2
    step = _rates(training.TrainSettings(lr=0.2, lr_milestones=(3, 6), start_iteration=4), 4, run_total=10)
    assert step == pytest.approx([0.02, 0.02, 0.002, 0.002])
    # one plain-SGD step at iteration 9 of a 10-step cosine run is one step at lr * (1 + cos(0.9 pi)) / 2
    end, _ = _run_steps(digits, 1, lr=0.2, lr_schedule="cosine", start_iteration=9)
    same, _ = _run_steps(digits, 1, lr=lrs[9])
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(end.state_dict().values(), same.state_dict().values()))
    # the first k steps of a T-step run take W_k on the run's schedule, not on a k-step cosine of their own
    first, _ = _run_steps(digits, 2, lr=0.2, lr_schedule="cosine", run_iterations=10)
    alone, _ = _run_steps(digits, 2, lr=0.2, lr_schedule="cosine")
    _, full = _run_steps(digits, 10, lr=0.2, lr_schedule="cosine", snapshot_at=[2])
    assert all(torch.equal(a, full.snapshots[2][n]) for n, a in first.state_dict().items())
    assert not torch.equal(alone.state_dict()["fc1.weight"], full.snapshots[2]["fc1.weight"])
    with pytest.raises(ValueError, match="lr_milestones apply only to lr_schedule='step'"):
        _run_steps(digits, 1, lr_schedule="cosine", lr_milestones=(1,))
    with pytest.raises(ValueError, match="run_iterations must be at least"):
        _run_steps(digits, 5, start_iteration=3, run_iterations=6)
    with pytest.raises(ValueError, match="lr_schedule"):
        _run_steps(digits, 1, lr_schedule="linear")


def _rates(settings, steps, *, run_total):
    """The learning rate of each of ``steps`` optimiser steps under ``training.lr_scheduler``."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=settings.lr)
    schedule, rates = training.lr_scheduler(opt, settings, run_total), []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return rates


def _run_steps(digits, iterations, **kwargs):
    net = models.mlp(digits.input_shape, 10, hidden=(32,), seed=0)
    history = training.train(net, digits, iterations=iterations, batch_size=32, optimizer="sgd", device="cpu", **kwargs)
    return net, history


def test_make_optimizer_is_fused_adam_that_matches_the_unfused_update():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(5, 4))
    twin = torch.nn.Parameter(weight.detach().clone())
    fused = training.make_optimizer([weight], "adam", lr=1e-2, weight_decay=1e-3)
    plain = torch.optim.Adam([twin], lr=1e-2, weight_decay=1e-3)
    assert fused.defaults["fused"] is True
    for _ in range(5):
        for param, opt in ((weight, fused), (twin, plain)):
            opt.zero_grad()
            (param ** 3).sum().backward()
            opt.step()
    torch.testing.assert_close(weight, twin, rtol=1e-5, atol=1e-6)
    sgd = training.make_optimizer([twin], "sgd", lr=0.1, momentum=0.9)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9


def test_make_optimizer_falls_back_where_no_fused_kernel_exists(monkeypatch):
    real_adam = torch.optim.Adam

    def adam_without_fused(params, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        return real_adam(params, **kwargs)

    on_meta = training.make_optimizer([torch.nn.Parameter(torch.zeros(3, device="meta"))], "adam")
    assert not on_meta.defaults.get("fused")   # a device without a fused kernel: the ordinary Adam
    monkeypatch.setattr(torch.optim, "Adam", adam_without_fused)
    opt = training.make_optimizer([torch.nn.Parameter(torch.zeros(3))], "adam", lr=1e-3)
    assert not opt.defaults.get("fused")       # an older torch that refuses fused CPU parameters
    with pytest.raises(ValueError, match="optimizer"):
        training.make_optimizer([torch.nn.Parameter(torch.zeros(3))], "rmsprop")


def test_settings_object_and_keywords_train_the_same(digits):
    settings = training.TrainSettings(iterations=20, batch_size=32, lr=1e-2, lr_milestones=[15, 5], device="cpu")
    assert settings.lr_milestones == (5, 15)   # normalised: a sorted tuple, so settings hash and compare
    nets = [models.mlp(digits.input_shape, 10, hidden=(8,), seed=0) for _ in range(2)]
    by_object = training.train(nets[0], digits, settings, data_seed=1)
    by_keywords = training.train(nets[1], digits, iterations=20, batch_size=32, lr=1e-2, lr_milestones=(5, 15),
                                 device="cpu", data_seed=1)
    assert by_object.to_dict() == by_keywords.to_dict()
    assert training.train_settings(settings, lr=0.5).lr == 0.5 and settings.lr == 1e-2   # keywords win; settings unchanged
    with pytest.raises(TypeError, match="unknown training setting 'learning_rate'"):
        training.train(nets[0], digits, settings, learning_rate=0.1)
    with pytest.raises(ValueError, match="lr must be > 0, got 0.0"):
        training.TrainSettings(lr=0)
