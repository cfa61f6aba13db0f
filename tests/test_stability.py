"""Tests of lecturelib.stability: interpolation, barriers and the instability analysis."""

import numpy as np
import pytest
import torch
from torch import nn

from lecturelib import data, iterative, models, stability


def test_interpolate_end_points_and_midpoint():
    a = {"w": torch.zeros(2, 2), "steps": torch.tensor(3)}
    b = {"w": torch.ones(2, 2) * 4, "steps": torch.tensor(9)}
    assert torch.equal(stability.interpolate(a, b, 0.0)["w"], a["w"])
    assert torch.equal(stability.interpolate(a, b, 1.0)["w"], b["w"])
    mid = stability.interpolate(a, b, 0.25)
    assert torch.allclose(mid["w"], torch.ones(2, 2))
    assert int(mid["steps"]) == 3, "integer buffers are copied from state_a"


def test_interpolate_rejects_mismatched_states():
    with pytest.raises(KeyError):
        stability.interpolate({"w": torch.zeros(1)}, {"v": torch.zeros(1)}, 0.5)
    with pytest.raises(ValueError, match="shape"):
        stability.interpolate({"w": torch.zeros(1)}, {"w": torch.zeros(2)}, 0.5)


def test_barrier_is_height_above_mean_of_end_points():
    assert stability.barrier([0.1, 0.3, 0.1]) == pytest.approx(0.2)
    assert stability.barrier([0.1, 0.1, 0.3]) == pytest.approx(0.1)
    assert stability.barrier([0.2, 0.15, 0.2]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        stability.barrier([0.1])


def _xor_like():
    # A 1-D problem where two sign-flipped solutions have a barrier between them:
    # the class is 1 when x > 0. Net a: w=+1 with bias; net b: the same (identical nets → no barrier)
    x = torch.linspace(-1, 1, 40).reshape(-1, 1)
    y = (x[:, 0] > 0).long()
    return x, y


def test_error_barrier_is_zero_between_identical_networks_and_positive_across_a_symmetry():
    x, y = _xor_like()
    model = nn.Sequential(nn.Linear(1, 2, bias=False), nn.ReLU(), nn.Linear(2, 2, bias=False))
    # Solution a: hidden unit 0 = relu(x) → class 1, unit 1 = relu(-x) → class 0.
    a = {"0.weight": torch.tensor([[1.0], [-1.0]]), "2.weight": torch.tensor([[0.0, 1.0], [1.0, 0.0]])}
    # Solution b: the same network with its hidden units swapped (a permutation symmetry).
    b = {"0.weight": torch.tensor([[-1.0], [1.0]]), "2.weight": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    same, errors_same = stability.error_barrier(model, a, a, (x, y), alphas=5)
    assert same == 0.0 and np.allclose(errors_same, errors_same[0])
    height, errors = stability.error_barrier(model, a, b, (x, y), alphas=5)
    assert errors[0] == 0 and errors[-1] == 0
    assert height == pytest.approx(errors.max()) and height >= 0.4, "the midpoint of two permuted solutions is a bad network"
    loss_height, losses = stability.loss_barrier(model, a, b, (x, y), alphas=[0.0, 0.5, 1.0])
    assert len(losses) == 3 and loss_height > 0


def test_path_metrics_validates_alphas():
    x, y = _xor_like()
    model = nn.Sequential(nn.Linear(1, 2))
    state = model.state_dict()
    with pytest.raises(ValueError, match="alphas"):
        stability.path_metrics(model, state, state, (x, y), alphas=[0.2, 1.0])
    with pytest.raises(ValueError, match="alphas"):
        stability.path_metrics(model, state, state, (x, y), alphas=1)
    with pytest.raises(TypeError, match="data"):
        stability.path_metrics(model, state, state, x, alphas=3)


def start(model, k):
    """The model's current weights as the snapshot W_k."""
    return iterative.Snapshot(k, {n: v.clone() for n, v in model.state_dict().items()})


@pytest.fixture(scope="module")
def tiny():
    return data.load_dataset("digits", n_train=200)


def test_instability_analysis_trains_two_copies_and_is_seeded(tiny):
    model = models.mlp(tiny.input_shape, hidden=(16,), seed=0)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    kw = dict(batch_size=16, device="cpu")
    r1 = stability.instability_analysis(model, tiny, start(model, 0), iterations=20, alphas=5, train_kwargs=kw)
    r2 = stability.instability_analysis(model, tiny, start(model, 0), iterations=20, alphas=5, train_kwargs=kw)
    assert r1.to_dict() == r2.to_dict()
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items()), "the model must not change"
    assert len(r1.errors) == 5 and r1.alphas[0] == 0.0 and r1.alphas[-1] == 1.0
    assert r1.end_errors == [r1.errors[0], r1.errors[-1]]
    assert r1.error_barrier == pytest.approx(max(r1.errors) - (r1.errors[0] + r1.errors[-1]) / 2)
    assert r1.errors[0] != r1.errors[-1] or r1.losses[0] != r1.losses[-1], "the two copies should differ (different data orders)"


def test_instability_analysis_keeps_a_mask(tiny):
    model = models.mlp(tiny.input_shape, hidden=(16,), seed=0)
    mask = {"fc1.weight": torch.rand(16, 64, generator=torch.Generator().manual_seed(0)) > 0.5}
    r = stability.instability_analysis(model, tiny, start(model, 3), iterations=10, mask=mask, alphas=3, train_kwargs={"device": "cpu"})
    assert r.k == 3 and len(r.losses) == 3


def test_instability_analysis_validates(tiny):
    model = models.mlp(tiny.input_shape, hidden=(16,), seed=0)
    with pytest.raises(ValueError, match="the snapshot's k must be smaller than iterations, got k=10"):
        stability.instability_analysis(model, tiny, start(model, 10), iterations=10)
    with pytest.raises(ValueError, match="data_seeds"):
        stability.instability_analysis(model, tiny, start(model, 0), iterations=10, data_seeds=(1, 1))
    with pytest.raises(ValueError, match="data_seed"):
        stability.instability_analysis(model, tiny, start(model, 0), iterations=10, train_kwargs={"data_seed": 3})
    with pytest.raises(ValueError, match="start_iteration"):
        stability.instability_analysis(model, tiny, start(model, 5), iterations=10, train_kwargs={"start_iteration": 5})


def test_instability_analyses_of_several_snapshots_equal_one_analysis_each(tiny):
    """Several seeds' snapshots analysed together (their copies trained side by side) give each one's own analysis."""
    nets = [models.mlp(tiny.input_shape, hidden=(16,), seed=seed) for seed in (0, 1)]
    mask = {"fc1.weight": torch.rand(16, 64, generator=torch.Generator().manual_seed(0)) > 0.5}
    kw = dict(batch_size=16, device="cpu")
    together = stability.instability_analyses(nets[0], tiny, [start(net, 2) for net in nets], iterations=12, alphas=5,
                                              data_seeds=[(1, 2), (3, 4)], masks=[None, mask], train_kwargs=kw)
    alone = [stability.instability_analysis(nets[0], tiny, start(net, 2), iterations=12, alphas=5, data_seeds=seeds, mask=m,
                                            train_kwargs=kw) for net, seeds, m in zip(nets, [(1, 2), (3, 4)], [None, mask])]
    assert len(together) == 2
    for got, want in zip(together, alone):
        assert got.k == want.k == 2
        assert got.losses == pytest.approx(want.losses, abs=1e-5)
        assert all(abs(a - b) <= 1 / len(tiny.y_test) + 1e-12 for a, b in zip(got.errors, want.errors))
    assert together[0].losses != pytest.approx(together[1].losses, abs=1e-5), "two seeds, two results"


def test_instability_analyses_validate_their_lists(tiny):
    model = models.mlp(tiny.input_shape, hidden=(16,), seed=0)
    with pytest.raises(ValueError, match="share one k"):
        stability.instability_analyses(model, tiny, [start(model, 0), start(model, 3)], iterations=10, data_seeds=[(1, 2), (3, 4)])
    with pytest.raises(ValueError, match="data_seeds must hold one entry per snapshot"):
        stability.instability_analyses(model, tiny, [start(model, 0), start(model, 0)], iterations=10, data_seeds=[(1, 2)])
    with pytest.raises(ValueError, match="masks must hold one entry per snapshot"):
        stability.instability_analyses(model, tiny, [start(model, 0)], iterations=10, data_seeds=[(1, 2)], masks=[None, None])
    with pytest.raises(ValueError, match="two different seeds"):
        stability.instability_analyses(model, tiny, [start(model, 0), start(model, 0)], iterations=10, data_seeds=[(1, 2), (5, 5)])


def test_instability_analysis_continues_the_runs_schedule_from_k(tiny, monkeypatch):
    seen = []
    real = iterative.train_many   # the two copies are trained together
    monkeypatch.setattr(iterative, "train_many", lambda *a, **kw: seen.append((kw["iterations"], kw["start_iteration"])) or real(*a, **kw))
    model = models.mlp(tiny.input_shape, hidden=(16,), seed=0)
    stability.instability_analysis(model, tiny, start(model, 4), iterations=10, alphas=3,
                                   train_kwargs={"optimizer": "sgd", "lr": 0.1, "lr_schedule": "cosine", "device": "cpu"})
    assert seen == [(6, 4)], "each copy trains iterations 4..10 of the run, on the run's schedule"
    # a milestone at or before k has already lowered the rate: the copies start with it applied
    seen.clear()
    stability.instability_analysis(model, tiny, start(model, 4), iterations=10, alphas=3, train_kwargs={"lr_milestones": (2, 8), "device": "cpu"})
    assert seen == [(6, 4)]


def test_stable_barrier_is_frankle_et_al_2_percent():
    assert stability.STABLE_BARRIER == 0.02
