"""The experiment cache is never stale and never half-read (issue 12), the runner's progress bar
counts what really runs, and a torchvision dataset is downloaded by default (no network used here)."""

import dataclasses
import json
import os
import shutil
import subprocess
import urllib.error
import warnings
from pathlib import Path

import pytest
import torch

from lecturelib import atomic, cache, data, experiments, plots, training

REPO = Path(__file__).resolve().parents[1]

# Tiny runs on the offline digits, every setting spelled out so a change of the defaults cannot slow them down.
TINY = {
    "lottery": dict(dataset="digits", hidden=(8,), iterations=6, eval_every=3, rounds=1, seeds=(0,), long_iterations=8, long_levels=1),
    "rewinding": dict(dataset="digits", model="mlp", hidden=(8,), iterations=6, eval_every=3, rounds=2, seeds=(0,),
                      ks=(0, 2), alphas=3),
    "stability": dict(dataset="digits", model="mlp", hidden=(8,), iterations=6, ks=(0, 2), seeds=(0, 1), alphas=3),
}


def count_runs(monkeypatch, experiment: str) -> list:
    calls = []
    entry = experiments.EXPERIMENTS[experiment]
    monkeypatch.setitem(experiments.EXPERIMENTS, experiment,
                        dataclasses.replace(entry, runner=lambda config: calls.append(config) or entry.runner(config)))
    return calls


def run_recording_warnings(**kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = experiments.run("stability", **TINY["stability"], **kwargs)
    return record, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def test_the_cache_key_follows_the_source_the_version_and_torch(tmp_path, monkeypatch):
    source = tmp_path / "lecturelib"
    shutil.copytree(REPO / "lecturelib", source, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "_SOURCE", source)
    calls = count_runs(monkeypatch, "stability")
    folder = tmp_path / "cache"
    first, messages = run_recording_warnings(directory=folder)
    assert run_recording_warnings(directory=folder) == (first, []) and len(calls) == 1, "unchanged code: read from the cache"
    assert first["code"] == cache.code_fingerprint()

    (source / "stability.py").write_text((source / "stability.py").read_text() + "\n# an edit\n")   # e.g. a new barrier
    _, messages = run_recording_warnings(directory=folder)
    assert len(calls) == 2 and messages == [], "edited source: recomputed, silently (another file, not a bad one)"
    (source / "plots.py").write_text((source / "plots.py").read_text() + "\n# drawing only\n")
    run_recording_warnings(directory=folder)
    assert len(calls) == 2, "plots.py computes no result: not part of the key"
    (source / "grading.py").write_text((source / "grading.py").read_text() + "\n# the grader only\n")
    run_recording_warnings(directory=folder)
    assert len(calls) == 2, "grading.py computes no result: not part of the key"

    monkeypatch.setattr(cache, "__version__", "99.0")
    run_recording_warnings(directory=folder)
    monkeypatch.setattr(torch, "__version__", "0.0.1")
    run_recording_warnings(directory=folder)
    assert len(calls) == 4, "a new lecturelib or torch version recomputes"
    assert len(list(folder.glob("stability-*.json"))) == 4


def test_a_corrupt_record_is_recomputed_with_one_warning(tmp_path):
    config = experiments.make_config("stability", **TINY["stability"])
    path = cache.result_path("stability", config, tmp_path)
    path.write_text('{"config_hash": "trunc')
    record, messages = run_recording_warnings(directory=tmp_path)
    assert len(messages) == 1 and "recomputing" in messages[0] and str(path) in messages[0]
    assert json.loads(path.read_text()) == record
    assert run_recording_warnings(directory=tmp_path) == (record, [])


@pytest.mark.parametrize("damage", ["empty results", "missing key", "no results", "other config", "other code", "a list"])
def test_a_record_that_does_not_validate_is_recomputed_with_one_warning(damage, tmp_path):
    good, _ = run_recording_warnings(directory=tmp_path)
    (path,) = tmp_path.glob("stability-*.json")
    bad = json.loads(path.read_text())
    if damage == "empty results":
        bad["results"] = {}
    elif damage == "missing key":
        del bad["results"]["by_k"]
    elif damage == "no results":
        del bad["results"]
    elif damage == "other config":
        bad["config_hash"] = "0" * 12
    elif damage == "other code":
        bad["code"]["source_sha256"] = "0" * 16
    else:
        bad = [bad]
    path.write_text(json.dumps(bad))
    record, messages = run_recording_warnings(directory=tmp_path)
    assert len(messages) == 1 and "recomputing" in messages[0], messages
    assert record == good and json.loads(path.read_text()) == good
    import matplotlib
    matplotlib.use("Agg")
    assert plots.experiment_figures(record), "what is served is complete enough to draw"


def test_run_outcome_says_whether_it_read_or_computed(tmp_path):
    first = experiments.run_outcome("stability", directory=tmp_path, **TINY["stability"])
    second = experiments.run_outcome("stability", directory=tmp_path, **TINY["stability"])
    assert (first.from_cache, second.from_cache) == (False, True) and first.path == second.path
    assert first.record == second.record
    path = first.path
    path.write_text("{}")
    with pytest.warns(RuntimeWarning, match="unreadable or invalid"):
        third = experiments.run_outcome("stability", directory=tmp_path, **TINY["stability"])
    assert not third.from_cache, "a recomputed record is not reported as read"
    off = experiments.run_outcome("stability", directory=tmp_path, use_cache=False, **TINY["stability"])
    assert (off.from_cache, off.path) == (False, None)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_cache_files_get_the_mode_the_umask_gives(umask, mode, tmp_path):
    before = os.umask(umask)
    try:
        atomic.write_json(tmp_path / "a.json", {"a": 1})
        atomic.write_text(tmp_path / "b.txt", "b")
        record = experiments.run_outcome("stability", directory=tmp_path / "cache", **TINY["stability"])
    finally:
        os.umask(before)
    for path in (tmp_path / "a.json", tmp_path / "b.txt", record.path):
        assert path.stat().st_mode & 0o777 == mode, path
    assert os.umask(before) == before, "the umask is left as it was"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_removes_every_cache_the_project_writes(tmp_path):
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    caches = [".lecturelib_cache", "notebooks/.lecturelib_cache", "book/.lecturelib_cache", ".pytest_cache",
              "notebooks/.pytest_cache", "lecturelib/__pycache__", "tests/__pycache__", "_build/html"]
    kept = [".venv/lib/__pycache__", "notebooks/data", ".git/objects"]
    for folder in caches + kept:
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.json").write_text("{}")
    subprocess.run(["make", "-s", "clean"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    assert [c for c in caches if (tmp_path / c).exists()] == []
    assert all((tmp_path / k / "x.json").exists() for k in kept)


@pytest.mark.parametrize("experiment", sorted(TINY))
def test_planned_steps_are_the_steps_the_run_takes(experiment):
    taken = []
    with training.listening_to_steps(taken.append):
        experiments.run(experiment, use_cache=False, progress=False, **TINY[experiment])
    config = experiments.make_config(experiment, **TINY[experiment])
    assert sum(taken) == experiments.planned_steps(experiment, config) > 0


class FakeBar:
    made = []

    def __init__(self, total, **kwargs):
        self.total, self.n, self.closed, self.kwargs = total, 0, False, kwargs
        FakeBar.made.append(self)

    def update(self, n=1):
        self.n += n

    def close(self):
        self.closed = True


def test_progress_bar_over_the_whole_run_only_when_asked_or_on_a_terminal(monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    FakeBar.made.clear()
    experiments.run("stability", use_cache=False, progress=True, **TINY["stability"])
    (bar,) = FakeBar.made
    config = experiments.make_config("stability", **TINY["stability"])
    assert bar.total == bar.n == experiments.planned_steps("stability", config) and bar.closed
    assert bar.kwargs["delay"] > 0, "not shown for a run of a few seconds"
    experiments.run("stability", use_cache=False, **TINY["stability"])   # progress=None; pytest's stderr is no terminal
    assert len(FakeBar.made) == 1
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    monkeypatch.setenv("CI", "1")
    experiments.run("stability", use_cache=False, **TINY["stability"])
    assert len(FakeBar.made) == 1, "never in CI logs"


class OfflineMNIST:
    """Stands in for torchvision.datasets.MNIST on a machine without a network."""

    seen = []

    def __init__(self, root, train, download):
        OfflineMNIST.seen.append(download)
        if download:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        raise RuntimeError("Dataset not found. You can use download=True to download it")


def test_experiments_download_a_missing_dataset_and_say_so_when_offline(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setattr(torchvision.datasets, "MNIST", OfflineMNIST)
    OfflineMNIST.seen.clear()
    assert experiments.make_config("lottery").download is True
    with pytest.raises(data.DatasetUnavailableError) as info:
        experiments.run("lottery", dataset="mnist", root=str(tmp_path), use_cache=False)
    assert OfflineMNIST.seen == [True], "a download was tried"
    message = str(info.value)
    assert "'mnist'" in message and "tried to download it and failed" in message and "URLError" in message
    assert "offline" in message and str(tmp_path) in message and "'digits'" in message and "\n" not in message
    with pytest.raises(data.DatasetUnavailableError, match="no download was tried"):
        experiments.run("lottery", dataset="mnist", root=str(tmp_path), download=False, use_cache=False)
