"""lecturelib.training.train_many: N networks trained together end where N calls of train take them.

Not bit for bit: a batched product (torch.baddbmm over the stacked weights, a grouped convolution)
adds up its terms in another order than the single product, so each step differs by float32
rounding (~1e-7 relative) and the differences grow a little over the steps. The tolerances below
(1e-5 on weights and losses after 40 steps) are ~100× what we measure and ~1000× below any
difference a bug in the batching (a wrong minibatch, mask or learning rate) makes.
"""

import copy
from collections import OrderedDict

import pytest
import torch
from torch import nn

from lecturelib import data, models, pruning, training

ATOL = 1e-5


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits", val_fraction=0.2)


def _mlp(digits, seed):
    return models.mlp(digits.input_shape, 10, hidden=(32, 16), seed=seed)


def _cnn(digits, seed):
    return models.cnn(digits.input_shape, 10, channels=(4, 8), hidden=16, seed=seed)


def _cnn1d(digits, seed):   # the digits' 8 × 8 pixels read as 8 rows of 8 channels: a sequence of length 8
    net = models.cnn1d((8, 8), 10, channels=6, seed=seed)
    return nn.Sequential(OrderedDict([("rows", nn.Flatten(1, 2)), *net.named_children()]))


SETTINGS = {
    "mlp-adam": (_mlp, {"optimizer": "adam", "lr": 3e-3, "weight_decay": 1e-3, "lr_milestones": (25,)}),
    "cnn-sgd": (_cnn, {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "l1": 1e-4, "lr_schedule": "cosine",
                       "start_iteration": 10, "run_iterations": 60}),
    "cnn1d-sgd": (_cnn1d, {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "lr_schedule": "cosine"}),
}


@pytest.mark.parametrize("setting", SETTINGS)
def test_train_many_equals_train_on_each_network(digits, setting):
    make, settings = SETTINGS[setting]
    nets = [make(digits, seed) for seed in (0, 1, 2)]
    masks = [None, pruning.global_magnitude_mask(nets[1], 0.7), pruning.layerwise_magnitude_mask(nets[2], {"fc1.weight": 0.5})]
    seeds = (5, 6, 5)
    common = {"iterations": 40, "batch_size": 32, "eval_every": 15, "snapshot_at": (0, 20, 40), "device": "cpu", **settings}
    alone = [copy.deepcopy(net) for net in nets]
    expected = [training.train(net, digits, mask=mask, data_seed=seed, **common) for net, mask, seed in zip(alone, masks, seeds)]
    got = training.train_many(nets, digits, masks=masks, data_seeds=seeds, **common)

    assert len(got) == 3
    for net, ref, history, ref_history, mask in zip(nets, alone, got, expected, masks):
        assert history.iteration == ref_history.iteration == [15, 30, 40]
        for key in ("train_loss", "val_loss", "test_loss"):
            assert getattr(history, key) == pytest.approx(getattr(ref_history, key), abs=ATOL), key
        for key, n in (("val_acc", len(digits.y_val)), ("test_acc", len(digits.y_test))):   # a near tie may flip one example
            assert all(abs(a - b) <= 1 / n + 1e-12 for a, b in zip(getattr(history, key), getattr(ref_history, key))), key
        for (name, param), ref_param in zip(net.named_parameters(), ref.parameters()):
            assert torch.allclose(param, ref_param, atol=ATOL, rtol=0), name
        assert sorted(history.snapshots) == [0, 20, 40]
        for k, state in history.snapshots.items():
            assert all(torch.allclose(state[name], ref_history.snapshots[k][name], atol=ATOL, rtol=0) for name in state), k
        assert all(torch.equal(history.snapshots[40][name], value) for name, value in net.state_dict().items())
        for name, keep in (mask or {}).items():
            weight = dict(net.named_parameters())[name]
            assert torch.all(weight[~keep] == 0), f"{name}: a pruned weight came back"
            assert torch.all(history.snapshots[20][name][~keep] == 0)
    assert not torch.equal(nets[0].fc1.weight, got[0].snapshots[0]["fc1.weight"])        # it trained


def test_models_are_trained_in_place_and_keep_their_own_storage(digits):
    nets = [_mlp(digits, seed) for seed in (0, 1)]
    params = [list(net.parameters()) for net in nets]
    pointers = [[p.data_ptr() for p in ps] for ps in params]
    training.train_many(nets, digits, iterations=3, device="cpu")
    assert [list(net.parameters()) for net in nets] == params                      # the same Parameter objects …
    assert [[p.data_ptr() for p in ps] for ps in params] == pointers               # … in the same storage
    before = nets[1].fc1.weight.clone()
    with torch.no_grad():
        nets[0].fc1.weight.zero_()
    assert torch.equal(nets[1].fc1.weight, before)                                  # no view left between the models


def test_equal_networks_and_seeds_stay_equal_and_steps_are_counted(digits):
    nets = [_mlp(digits, 0), _mlp(digits, 0)]
    steps = []
    with training.listening_to_steps(steps.append):
        histories = training.train_many(nets, digits, data_seeds=(3, 3), iterations=5, eval_every=5, device="cpu")
    assert sum(steps) == 2 * 5
    assert histories[0].to_dict() == histories[1].to_dict()
    assert torch.equal(nets[0].fc1.weight, nets[1].fc1.weight)


def test_bad_inputs_are_refused_by_name(digits):
    a, b = _mlp(digits, 0), _mlp(digits, 1)
    with pytest.raises(ValueError, match="at least one"):
        training.train_many([], digits, iterations=1)
    with pytest.raises(ValueError, match=r"one architecture.*models\[1\]"):
        training.train_many([a, models.mlp(digits.input_shape, 10, hidden=(16, 16))], digits, iterations=1)
    with pytest.raises(ValueError, match=r"one architecture.*models\[1\]"):
        training.train_many([a, _cnn(digits, 0)], digits, iterations=1)
    with pytest.raises(ValueError, match=r"masks must hold one entry per model \(2\), got 1"):
        training.train_many([a, b], digits, masks=[None], iterations=1)
    with pytest.raises(ValueError, match=r"data_seeds must hold one entry per model \(2\), got 3"):
        training.train_many([a, b], digits, data_seeds=(0, 1, 2), iterations=1)
    with pytest.raises(ValueError, match="share weights"):
        training.train_many([a, a], digits, iterations=1)
    with pytest.raises(KeyError, match="fc9.weight"):
        training.train_many([a, b], digits, masks=[None, {"fc9.weight": torch.ones(3, dtype=torch.bool)}], iterations=1)
    with pytest.raises(ValueError, match="epochs"):
        training.train_many([a, b], digits)
    with pytest.raises(TypeError, match="nn.Sequential"):
        training.train_many([nn.Linear(64, 10)], digits, iterations=1)
    with pytest.raises(TypeError, match="'drop'"):
        training.train_many([nn.Sequential(OrderedDict(flat=nn.Flatten(), drop=nn.Dropout(), fc=nn.Linear(64, 10)))], digits, iterations=1)
    assert torch.equal(a.fc1.weight, _mlp(digits, 0).fc1.weight)            # a refused call trains nothing


# --- the experiment runner trains its many networks with train_many -------------------------------

def _close_histories(a: dict, b: dict, n_test: int) -> None:
    assert a["iteration"] == b["iteration"]
    for key in ("train_loss", "val_loss", "test_loss"):
        assert a[key] == pytest.approx(b[key], abs=ATOL), key
    for key in ("val_acc", "test_acc"):
        assert all(abs(x - y) <= 1 / n_test + 1e-12 for x, y in zip(a[key], b[key])), key


def test_random_reinit_controls_keep_their_seeds_meaning(digits):
    from lecturelib import experiments, lottery

    config = experiments.make_config("lottery", hidden=(16,), iterations=30, eval_every=10, rounds=2, seeds=(0, 1),
                                     long_iterations=40, long_levels=1)
    record = experiments._run_lottery(config)
    data_, _, kwargs = experiments._start(config)
    make = lambda seed: models.mlp(data_.input_shape, data_.num_classes, config.hidden, seed=seed)  # noqa: E731
    for s, seed in enumerate(config.seeds):   # IMP of each seed alone (one network: train) gives the masks
        [run] = lottery.iterative_magnitude_pruning([make(seed)], data_, rounds=config.rounds, rate=config.rate,
                                                    output_rate=config.output_rate, data_seeds=[seed], train_kwargs=kwargs)
        levels = run.levels
        for level in levels:   # the seeds' IMPs trained together end where each alone does
            _close_histories(record["runs"]["ticket"][s][level.level]["history"], level.history.to_dict(), len(data_.y_test))
        for level in levels:   # control = mask of seed s's level, init from s + offset, data order s — as train does it
            alone = training.train(make(seed + config.reinit_seed_offset), data_, mask=level.mask, data_seed=seed, **kwargs)
            together = record["runs"]["random"][s][level.level]
            assert together["level"] == level.level and together["weights_left"] == pytest.approx(level.weights_left)
            _close_histories(together["history"], alone.to_dict(), len(data_.y_test))
        for kind, init in (("ticket", seed), ("random", seed + config.reinit_seed_offset)):   # the convergence control
            alone = training.train(make(init), data_, mask=levels[-1].mask, data_seed=seed, **{**kwargs, "iterations": 40})
            _close_histories(record["long"][kind][s][0]["history"], alone.to_dict(), len(data_.y_test))


def test_train_random_reinits_checks_its_lists(digits):
    from lecturelib import lottery

    make = lambda seed: _mlp(digits, seed)  # noqa: E731
    mask = pruning.ones_mask(make(0))
    with pytest.raises(ValueError, match="seeds must hold one entry per mask"):
        lottery.train_random_reinits(make, digits, [mask, mask], seeds=[0], data_seeds=[0, 1])
    with pytest.raises(ValueError, match="data_seed"):
        lottery.train_random_reinits(make, digits, [mask], seeds=[0], data_seeds=[0], train_kwargs={"data_seed": 1})


def test_instability_analysis_copies_train_as_train_does(digits):
    from lecturelib import iterative, stability

    model = _mlp(digits, 0)
    mask = pruning.global_magnitude_mask(model, 0.5)
    settings = {"optimizer": "sgd", "lr": 0.05, "batch_size": 16, "device": "cpu"}
    w5 = iterative.Snapshot(5, copy.deepcopy(model.state_dict()))
    result = stability.instability_analysis(model, digits, w5, iterations=25, data_seeds=(3, 4), mask=mask, alphas=3,
                                            train_kwargs=settings)
    ends = []
    for seed in (3, 4):
        copy_ = copy.deepcopy(model)
        training.train(copy_, digits, iterations=20, start_iteration=5, mask=mask, data_seed=seed, **settings)
        ends.append(copy_.state_dict())
    _, errors, losses = stability.path_metrics(copy.deepcopy(model), ends[0], ends[1], digits, 3)
    assert result.losses == pytest.approx(losses.tolist(), abs=ATOL)
    assert all(abs(a - b) <= 1 / len(digits.y_test) + 1e-12 for a, b in zip(result.errors, errors))


def test_train_together_stacks_mlps_and_1d_cnns_and_trains_2d_cnns_one_by_one(digits, monkeypatch):
    from lecturelib import iterative

    calls = []
    monkeypatch.setattr(iterative, "train_many", lambda *a, **kw: calls.append("many") or training.train_many(*a, **kw))
    monkeypatch.setattr(iterative, "train", lambda *a, **kw: calls.append("one") or training.train(*a, **kw))
    for make in (_mlp, _cnn1d, _cnn):
        iterative.train_together([make(digits, 0), make(digits, 1)], digits, masks=[None, None], data_seeds=[0, 1],
                                 iterations=2, device="cpu")
    assert calls == ["many", "many", "one", "one"], "grouped 2-D convolutions are not faster on a CPU: one by one"


@pytest.mark.parametrize("conv", [dict(kernel_size=3, stride=2, padding=2, dilation=2, bias=False), dict(kernel_size=1), dict(kernel_size=4, stride=3)])
def test_stacked_1d_convolutions_of_every_shape_train_as_alone(digits, conv):
    def make(seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(1, 2), nn.Conv1d(8, 5, **conv), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))

    nets = [make(seed) for seed in (0, 1)]
    for net in nets:
        net(digits.x_train[:2])   # materialise the lazy layer
        net[-1] = nn.Linear(net[-1].in_features, 10)
    alone = [copy.deepcopy(net) for net in nets]
    common = {"iterations": 12, "batch_size": 16, "optimizer": "sgd", "lr": 0.05, "device": "cpu"}
    for net, seed in zip(alone, (3, 4)):
        training.train(net, digits, data_seed=seed, **common)
    training.train_many(nets, digits, data_seeds=(3, 4), **common)
    for net, ref in zip(nets, alone):
        for (name, param), ref_param in zip(net.named_parameters(), ref.parameters()):
            assert torch.allclose(param, ref_param, atol=ATOL, rtol=0), name
