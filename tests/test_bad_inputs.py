"""Bad inputs across lecturelib (issue 12): each gives a clear error of the right type whose message
names the argument and the bad value — before any training where a config is involved — and
NumPy scalars and 0-d tensors are accepted wherever a plain number is."""

import dataclasses
import numpy as np
import pytest
import torch

from lecturelib import cache, data, experiments, iterative, lottery, models, pruning, training
from lecturelib.data import DatasetUnavailableError


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits", n_train=200)


@pytest.fixture
def net():
    return models.mlp((1, 8, 8), 10, hidden=(30, 20), seed=0)


def no_training(monkeypatch):
    """Make any training fail loudly: a config error must come before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("trained before the config was checked")
    for module in (training, iterative):
        monkeypatch.setattr(module, "train", refuse)
        monkeypatch.setattr(module, "train_many", refuse)


# (experiment, overrides, error type, strings the message must contain: the setting and the bad value)
CONFIGS = [
    ("stability", {"ks": (0, 20, 20)}, ValueError, ["ks", "(0, 20, 20)", "increasing"]),
    ("stability", {"ks": (0, 100, 20)}, ValueError, ["ks", "(0, 100, 20)", "(0, 20, 100)"]),
    ("stability", {"ks": (0, 500), "iterations": 500}, ValueError, ["ks", "(0, 500)", "iterations = 500"]),     # k >= T
    ("stability", {"ks": ()}, ValueError, ["ks", "()"]),
    ("stability", {"ks": (-1, 20)}, ValueError, ["ks", "-1"]),
    ("rewinding", {"ks": (0, 300), "iterations": 300}, ValueError, ["ks", "300", "iterations = 300"]),
    ("rewinding", {"ks": (50, 0)}, ValueError, ["ks", "(50, 0)"]),
    ("noisy_stability", {"lr_milestones": (900,), "iterations": 900}, ValueError, ["lr_milestones", "900", "iterations = 900"]),
    ("noisy_stability", {"lr_milestones": (600, 300)}, ValueError, ["lr_milestones", "(600, 300)"]),
    ("lottery", {"device": "gpu"}, ValueError, ["device", "'gpu'", "'auto'", "'cuda'"]),
    ("lottery", {"device": "cuda:x"}, ValueError, ["device", "'cuda:x'"]),
    ("lottery", {"seeds": ()}, ValueError, ["seeds", "()"]),
    ("lottery", {"seeds": (0, 0)}, ValueError, ["seeds", "(0, 0)"]),
    ("lottery", {"seeds": 0}, TypeError, ["seeds", "0", "tuple"]),
    ("lottery", {"seeds": (0, 1.5)}, TypeError, ["seeds", "1.5"]),
    ("lottery", {"lr": float("nan")}, ValueError, ["lr", "nan", "finite"]),
    ("lottery", {"lr": float("inf")}, ValueError, ["lr", "inf", "finite"]),
    ("lottery", {"lr": 0.0}, ValueError, ["lr", "0.0", "> 0"]),
    ("lottery", {"lr": "fast"}, TypeError, ["lr", "'fast'", "number"]),
    ("rewinding", {"momentum": float("nan")}, ValueError, ["momentum", "nan"]),
    ("rewinding", {"momentum": 1.5}, ValueError, ["momentum", "1.5", "[0, 1)"]),
    ("lottery", {"val_fraction": float("nan")}, ValueError, ["val_fraction", "nan"]),
    ("lottery", {"rate": 1.0}, ValueError, ["rate", "1.0", "[0, 1)"]),
    ("lottery", {"output_rate": -0.1}, ValueError, ["output_rate", "-0.1"]),
    ("noisy_rewinding", {"label_noise": float("inf")}, ValueError, ["label_noise", "inf"]),
    ("lottery", {"iterations": 0}, ValueError, ["iterations", "0", "> 0"]),
    ("lottery", {"iterations": 10.5}, TypeError, ["iterations", "10.5", "int"]),
    ("lottery", {"batch_size": True}, TypeError, ["batch_size", "True"]),
    ("lottery", {"rounds": -1}, ValueError, ["rounds", "-1"]),
    ("stability", {"alphas": 1}, ValueError, ["alphas", "1", ">= 2"]),
    ("lottery", {"hidden": (300, 0)}, ValueError, ["hidden", "0"]),
    ("lottery", {"dataset": "imagenet"}, ValueError, ["dataset", "'imagenet'", "'digits'"]),
    ("lottery", {"optimizer": "rmsprop"}, ValueError, ["optimizer", "'rmsprop'", "'adam'"]),
    ("stability", {"model": "resnet"}, ValueError, ["model", "'resnet'", "'cnn'"]),
    ("lottery", {"download": "yes"}, TypeError, ["download", "'yes'"]),
    ("lottery", {"root": 3}, TypeError, ["root", "3"]),
    ("lottery", {"lrate": 0.1}, TypeError, ["lrate", "lr"]),
]


@pytest.mark.parametrize("experiment, overrides, error, parts", CONFIGS, ids=lambda v: str(v)[:40])
def test_a_bad_setting_is_refused_before_any_training(experiment, overrides, error, parts, monkeypatch, tmp_path):
    no_training(monkeypatch)
    with pytest.raises(error) as info:
        experiments.run(experiment, directory=tmp_path, **overrides)
    message = str(info.value)
    assert all(part in message for part in parts), message
    assert "\n" not in message, "one line"
    assert not list(tmp_path.iterdir()), "nothing is cached"


def test_a_device_this_machine_lacks_is_refused_before_training(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    no_training(monkeypatch)
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        experiments.run("lottery", directory=tmp_path, device="cuda")


# (call on the fixture net, error type, strings the message must contain)
LIBRARY = [
    (lambda n, d: pruning.layerwise_magnitude_mask(n, 0.5, names=["nope.weight"]), KeyError,
     ["names", "'nope.weight'", "fc1.weight", "fc3.bias"]),
    (lambda n, d: pruning.global_magnitude_mask(n, 0.5, names=[]), ValueError, ["names", "[]", "fc1.weight, fc2.weight"]),
    (lambda n, d: pruning.layerwise_magnitude_mask(n, 0.5, names=[]), ValueError, ["names", "[]"]),
    (lambda n, d: pruning.global_magnitude_mask(n, 0.5, names="fc1.weight"), TypeError, ["names", "'fc1.weight'"]),
    (lambda n, d: pruning.ones_mask(n, names=["fc9.weight"]), KeyError, ["names", "'fc9.weight'", "fc1.weight"]),
    (lambda n, d: pruning.global_magnitude_mask(n, float("nan")), ValueError, ["sparsity", "nan"]),
    (lambda n, d: pruning.layerwise_magnitude_mask(n, np.float32(1.5)), ValueError, ["sparsity", "1.5"]),
    (lambda n, d: pruning.layerwise_magnitude_mask(n, torch.tensor([0.5, 0.5])), TypeError, ["sparsity", "tensor"]),
    (lambda n, d: models.count_parameters(n, {"fc1.weight": torch.ones(2, 2, dtype=torch.bool)}), ValueError,
     ["mask['fc1.weight']", "(2, 2)", "(30, 64)"]),
    (lambda n, d: models.count_parameters(n, {"nope.weight": torch.ones(3, dtype=torch.bool)}), KeyError,
     ["mask", "'nope.weight'", "fc1.weight"]),
    (lambda n, d: models.count_flops(n, (1, 8, 8), {"fc2.weight": torch.ones(5, dtype=torch.bool)}), ValueError,
     ["mask['fc2.weight']", "(5,)"]),
    (lambda n, d: pruning.prune_weights(torch.ones(4), float("nan")), ValueError, ["sparsity", "nan"]),
    (lambda n, d: pruning.prune_weights([1.0, 2.0], 0.5), TypeError, ["w", "list"]),
    (lambda n, d: training.train(n, d, iterations=10, snapshot_at=[1000], device="cpu"), ValueError,
     ["snapshot_at", "[1000]", "[0, 10]"]),
    (lambda n, d: training.train(n, d, iterations=10, snapshot_at=[-1], device="cpu"), ValueError, ["snapshot_at", "-1"]),
    (lambda n, d: training.train(n, d, iterations=10, lr=float("nan"), device="cpu"), ValueError, ["lr", "nan"]),
    (lambda n, d: training.train(n, d, iterations=10, lr=-1.0, device="cpu"), ValueError, ["lr", "-1.0"]),
    (lambda n, d: training.train(n, d, iterations=np.float64(10.0), device="cpu"), TypeError, ["iterations", "10.0"]),
    (lambda n, d: lottery.iterative_magnitude_pruning([n], d, rounds=1, k=99, train_kwargs={"iterations": 12, "device": "cpu"}),
     ValueError, ["k (the rewind iteration)", "99", "12"]),
    (lambda n, d: iterative.sparsity_schedule(np.float32(0.9), np.int64(0)), ValueError, ["rounds", "0"]),
    (lambda n, d: experiments.make_config("lotto"), ValueError, ["experiment", "'lotto'", "'lottery'"]),
    (lambda n, d: experiments.make_config("lottery", "huge"), ValueError, ["profile", "'huge'", "'paper'"]),
]


@pytest.mark.parametrize("call, error, parts", LIBRARY, ids=range(len(LIBRARY)))
def test_library_functions_name_the_argument_and_the_bad_value(call, error, parts, net, digits):
    with pytest.raises(error) as info:
        call(net, digits)
    message = info.value.args[0] if isinstance(info.value, KeyError) else str(info.value)
    assert all(part in message for part in parts), message


def test_a_diverging_training_stops_with_an_error_naming_lr(digits):
    model = models.mlp(digits.input_shape, 10, hidden=(300, 100), seed=0)
    with pytest.raises(FloatingPointError, match=r"loss is (nan|inf).*lr=1000000.0"):
        training.train(model, digits, iterations=50, lr=1e6, optimizer="sgd", device="cpu")


@pytest.mark.parametrize("scalar", [np.float32(0.5), np.float64(0.5), torch.tensor(0.5), np.array(0.5)],
                         ids=["np.float32", "np.float64", "0-d tensor", "0-d array"])
def test_numpy_and_0d_tensor_fractions_are_accepted(scalar, net):
    expected = pruning.layerwise_magnitude_mask(net, 0.5)
    for name, keep in pruning.layerwise_magnitude_mask(net, scalar).items():
        assert torch.equal(keep, expected[name])
    assert pruning.global_magnitude_mask(net, scalar).keys() == expected.keys()
    assert torch.equal(pruning.prune_weights(torch.arange(4.0), scalar), pruning.prune_weights(torch.arange(4.0), 0.5))
    assert iterative.layer_sparsity_schedule(net, scalar, 1, scalar)[0]["fc3.weight"] == 0.5


@pytest.mark.parametrize("count", [np.int64(6), np.int32(6), torch.tensor(6)], ids=["np.int64", "np.int32", "0-d tensor"])
def test_numpy_and_0d_tensor_counts_are_accepted(count, digits):
    model = models.mlp(digits.input_shape, 10, hidden=(8,), seed=0)
    history = training.train(model, digits, iterations=count, eval_every=count, batch_size=count, snapshot_at=[count],
                             device="cpu")
    assert history.iteration == [6] and list(history.snapshots) == [6]
    assert iterative.split_budget(count, 4) == [2, 2, 1, 1]


def test_configs_accept_numpy_values_and_hash_them_like_plain_ones():
    plain = experiments.make_config("stability", ks=(0, 20), seeds=(0, 1), lr=0.05)
    numpy = experiments.make_config("stability", ks=np.array([0, 20]), seeds=[np.int64(0), np.int64(1)], lr=np.float64(0.05))
    assert numpy == plain and cache.config_hash(numpy) == cache.config_hash(plain)
    assert experiments.make_config("stability", lr=np.float32(0.5), alphas=torch.tensor(5)).lr == 0.5


def test_a_missing_dataset_says_no_download_was_tried(tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        data.load_dataset("mnist", root=tmp_path, download=False)
    message = str(info.value)
    assert "'mnist'" in message and "no download was tried" in message and "download=True" in message
    assert str(tmp_path) in message and "'digits'" in message


# The command line: a user's mistake is one line on stderr and exit status 2, never a traceback.
CLI = [
    (["--set", "lr=nan"], ["lr", "nan"]),
    (["--set", "lr=inf"], ["lr", "inf"]),
    (["--set", "ks=0,20,20"], ["ks", "(0, 20, 20)"]),
    (["--set", "ks=0,600", "--set", "iterations=600"], ["ks", "600"]),
    (["--set", "device=gpu"], ["device", "'gpu'", "'cpu'"]),
    (["--set", "seeds=0,0"], ["seeds", "(0, 0)"]),
    (["--set", "lrate=0.1"], ["lrate"]),
    (["--set", "noequals"], ["KEY=VALUE", "'noequals'"]),
    (["--set", "dataset=imagenet"], ["dataset", "'imagenet'"]),
]


@pytest.mark.parametrize("args, parts", CLI, ids=lambda v: " ".join(v) if isinstance(v[0], str) and v[0].startswith("-") else "")
def test_the_command_line_reports_a_bad_setting_in_one_line_with_status_2(args, parts, tmp_path, capsys, monkeypatch):
    from lecturelib.__main__ import main

    no_training(monkeypatch)
    assert main(["run", "stability", "--cache-dir", str(tmp_path), *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert all(part in err for part in parts), err
    assert captured.out == "" and not list(tmp_path.iterdir())


@pytest.mark.parametrize("error", [RuntimeError("CUDA error: out of memory"), OSError(28, "No space left on device"),
                                   FloatingPointError("training diverged: the loss is nan at iteration 3 with lr=1e6 (sgd)")])
def test_the_command_line_turns_runtime_and_os_errors_into_one_line(error, tmp_path, capsys, monkeypatch):
    from lecturelib.__main__ import main

    def fail(config):
        raise error
    monkeypatch.setitem(experiments.EXPERIMENTS, "stability", dataclasses.replace(experiments.EXPERIMENTS["stability"], runner=fail))
    assert main(["run", "stability", "--cache-dir", str(tmp_path), "--set", "seeds=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(error).split(":")[0] in err
    monkeypatch.setenv("LECTURELIB_DEBUG", "1")
    with pytest.raises(type(error)):
        main(["run", "stability", "--cache-dir", str(tmp_path), "--set", "seeds=0"])


def test_an_unwritable_figure_folder_is_one_line_too(tmp_path, capsys):
    from lecturelib.__main__ import main

    (tmp_path / "file").write_text("not a folder")
    status = main(["run", "stability", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "file"),
                   "--set", "dataset=digits", "--set", "model=mlp", "--set", "hidden=8", "--set", "iterations=4",
                   "--set", "ks=0,1", "--set", "seeds=0", "--set", "alphas=3"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith("error: ") and "file" in err and "\n" not in err


def test_the_command_line_says_computed_after_recomputing_a_corrupt_record(tmp_path, capsys):
    from lecturelib.__main__ import main

    args = ["run", "stability", "--cache-dir", str(tmp_path), "--no-figures", "--set", "dataset=digits", "--set", "model=mlp",
            "--set", "hidden=8", "--set", "iterations=4", "--set", "ks=0,1", "--set", "seeds=0", "--set", "alphas=3"]
    assert main(args) == 0
    assert "computed and written to" in capsys.readouterr().out
    (path,) = tmp_path.glob("stability-*.json")
    path.write_text('{"config_hash": "trunc')
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "computed and written to" in captured.out and "read from" not in captured.out
    (warning,) = captured.err.strip().splitlines()
    assert warning.startswith("warning: cache entry") and "recomputing" in warning
    assert main(args) == 0
    assert "read from" in capsys.readouterr().out


def test_the_module_entry_point_exits_2_without_a_traceback(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "lecturelib", "run", "stability", "--set", "lr=nan"], cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(repo), "LECTURELIB_CACHE": str(tmp_path)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr and "lr" in out.stderr and "nan" in out.stderr
