"""Tests of the command line ``python -m lecturelib`` (run, list, cache, figures, missing data)."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lecturelib.__main__ import _parse_value, main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "hidden=8", "--set", "iterations=6", "--set", "seeds=0"]


def write_tiny_mnist(root: Path, n_train: int = 200, n_test: int = 50) -> None:
    """Write MNIST-shaped idx files (torchvision's raw format) with random images under root/MNIST/raw."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = rng.integers(0, 50, size=(n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):  # a learnable bright block per class
            images[i, 2 * label:2 * label + 6, 4:24] = 250
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def test_parse_value():
    assert _parse_value("3") == 3 and _parse_value("0.1") == 0.1
    assert _parse_value("0,1") == (0, 1) and _parse_value("none") is None and _parse_value("true") is True
    assert _parse_value("mnist") == "mnist"


@pytest.mark.parametrize("experiment, extra", [
    ("lottery", ["--set", "rounds=1", "--set", "eval_every=3", "--set", "long_iterations=9", "--set", "long_levels=1"]),
    ("digits_lottery", ["--set", "rounds=1", "--set", "eval_every=3", "--set", "long_iterations=0"]),
    ("rewinding", ["--set", "rounds=1", "--set", "eval_every=3", "--set", "ks=0,2", "--set", "alphas=3"]),
    ("stability", ["--set", "ks=0,2", "--set", "alphas=3"]),
    ("noisy_stability", ["--set", "ks=0,2", "--set", "lr_milestones=4", "--set", "alphas=3"]),
    ("noisy_rewinding", ["--set", "rounds=1", "--set", "eval_every=3", "--set", "ks=0,2", "--set", "lr_milestones=4",
                         "--set", "alphas=3"]),
])
def test_run_writes_json_and_figures_then_reads_the_cache(experiment, extra, tmp_path, capsys):
    args = ["run", experiment, "--cache-dir", str(tmp_path), *TINY, *extra]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "written to" in first
    (json_path,) = tmp_path.glob(f"{experiment}-*.json")
    assert json.loads(json_path.read_text())["experiment"] == experiment
    assert list(tmp_path.glob(f"{experiment}-*.png")), "figures are saved as PNG next to the JSON"
    assert main(args + ["--no-figures"]) == 0
    assert "read from" in capsys.readouterr().out


@pytest.mark.parametrize("profile", ["ci", "lecture"])
def test_every_digits_profile_runs_from_the_command_line(profile, tmp_path, capsys):
    assert main(["run", "stability", "--profile", profile, "--cache-dir", str(tmp_path), "--no-figures",
                 *TINY, "--set", "ks=0,1", "--set", "alphas=3"]) == 0
    assert f"[{profile}]" in capsys.readouterr().out


def test_paper_profile_on_tiny_mnist_files(tmp_path, capsys):
    write_tiny_mnist(tmp_path / "data")
    args = ["run", "lottery", "--profile", "paper", "--cache-dir", str(tmp_path / "cache"), "--set", f"root={tmp_path / 'data'}",
            "--set", "iterations=4", "--set", "eval_every=2", "--set", "rounds=1", "--set", "seeds=0", "--set", "device=cpu"]
    assert main(args) == 0
    (path,) = (tmp_path / "cache").glob("lottery-*.json")
    record = json.loads(path.read_text())
    assert record["config"]["dataset"] == "mnist" and record["config"]["lr"] == 1.2e-3 and record["config"]["batch_size"] == 60
    assert record["config"]["rate"] == 0.2 and record["config"]["output_rate"] == 0.1
    assert len(record["results"]["weights_left"]) == 2
    for experiment, extra in (("rewinding", ["--set", "ks=0,1", "--set", "alphas=3"]), ("stability", ["--set", "ks=0,1", "--set", "alphas=3"]),
                              ("noisy_stability", ["--set", "ks=0,1", "--set", "lr_milestones=2", "--set", "alphas=3"]),
                              ("noisy_rewinding", ["--set", "ks=0,1", "--set", "lr_milestones=2", "--set", "alphas=3"])):
        assert main(["run", experiment, "--profile", "paper", "--cache-dir", str(tmp_path / "cache"), "--no-figures",
                     "--set", f"root={tmp_path / 'data'}", "--set", "iterations=4", "--set", "seeds=0", "--set", "device=cpu",
                     *(["--set", "rounds=1", "--set", "eval_every=2"] if experiment.endswith("rewinding") else []), *extra]) == 0


def test_missing_mnist_gives_a_clear_message_and_a_non_zero_exit(tmp_path, capsys):
    status = main(["run", "lottery", "--profile", "paper", "--cache-dir", str(tmp_path), "--set", f"root={tmp_path / 'nothing'}",
                   "--set", "iterations=4"])
    err = capsys.readouterr().err
    assert status != 0
    assert "mnist" in err and "Traceback" not in err and "digits" in err


def test_bad_settings_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["run", "lottery", "--cache-dir", str(tmp_path), "--set", "lrate=0.1"]) == 2
    assert "lrate" in capsys.readouterr().err
    assert main(["run", "lottery", "--cache-dir", str(tmp_path), "--set", "noequals"]) == 2


def test_module_entry_point_runs_in_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "LECTURELIB_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "lecturelib", "run", "stability", *TINY, "--set", "ks=0", "--set", "alphas=3", "--no-figures"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert list(tmp_path.glob("stability-*.json"))


def test_list_names_experiments_and_profiles(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("lottery", "rewinding", "stability", "noisy_stability", "noisy_rewinding", "ci", "lecture", "paper"))


def test_paper_profile_without_a_gpu_warns_how_long_this_cpu_will_take(tmp_path, capsys, monkeypatch):
    import torch

    from lecturelib import training

    monkeypatch.setattr(training, "default_device", lambda: torch.device("cpu"))   # as on a machine without a GPU
    write_tiny_mnist(tmp_path / "data")
    assert main(["run", "lottery", "--profile", "paper", "--cache-dir", str(tmp_path / "cache"), "--no-figures",
                 "--set", f"root={tmp_path / 'data'}", "--set", "iterations=4", "--set", "eval_every=2", "--set", "rounds=1",
                 "--set", "seeds=0"]) == 0
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert "no GPU found" in warning and "one thread" in warning and "16 optimiser steps" in warning and "ms each" in warning
    capsys.readouterr()
    assert main(["run", "lottery", "--profile", "paper", "--cache-dir", str(tmp_path / "cache"), "--no-figures",
                 "--set", f"root={tmp_path / 'data'}", "--set", "iterations=4", "--set", "eval_every=2", "--set", "rounds=1",
                 "--set", "seeds=0", "--set", "device=cpu"]) == 0
    assert "warning" not in capsys.readouterr().err, "a CPU asked for is not a missing GPU"


def test_the_paper_profiles_cpu_estimate_scales_with_the_work():
    from lecturelib import experiments

    config = experiments.make_config("lottery", "paper")
    assert experiments.planned_steps("lottery", config) == 3 * 2 * 21 * 50_000
    assert experiments._duration(7200) == "2.0 h" and experiments._duration(600) == "10 min" and experiments._duration(30) == "30 s"
