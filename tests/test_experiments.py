"""Tests of the experiment runner: configs, profiles, hashing and the on-disk cache."""

import dataclasses
import json
import warnings

import pytest

from lecturelib import atomic, cache, configs, experiments, iterative, machine, plots, training

TINY = {
    "lottery": dict(hidden=(8,), iterations=6, eval_every=3, rounds=2, seeds=(0,), long_iterations=9, long_levels=1),
    "digits_lottery": dict(hidden=(8,), iterations=6, eval_every=3, rounds=1, seeds=(0,), long_iterations=0),
    "rewinding": dict(hidden=(8,), iterations=6, eval_every=3, rounds=1, seeds=(0,), ks=(0, 2), alphas=3),
    "stability": dict(hidden=(8,), iterations=6, ks=(0, 2), seeds=(0,), alphas=3),
    "noisy_stability": dict(iterations=6, lr_milestones=(4,), ks=(0, 2), seeds=(0,), alphas=3),
    "noisy_rewinding": dict(iterations=6, lr_milestones=(4,), eval_every=3, rounds=1, seeds=(0,), ks=(0, 2), alphas=3),
}


def test_config_hash_is_pinned():
    # If this fails, a default changed: every cached result of the ci profile is recomputed.
    # Update the value only on purpose.
    assert cache.config_hash(configs.LotteryConfig()) == PINNED_LOTTERY_HASH


PINNED_LOTTERY_HASH = "a3c39e44e3a7"   # download=True by default since issue 12; MNIST-1D and the long control since issue 13; T = 1,000 (4T control) and the configs inheriting TrainSettings since issue 17


def test_config_hash_changes_with_any_setting_and_not_with_the_profile_name():
    base = experiments.make_config("lottery", "ci")
    assert cache.config_hash(base) == cache.config_hash(experiments.make_config("lottery", "ci"))
    assert cache.config_hash(base) != cache.config_hash(experiments.make_config("lottery", "ci", lr=1e-3))
    assert cache.config_hash(base) != cache.config_hash(experiments.make_config("lottery", "ci", seeds=(0, 1)))
    assert cache.config_hash(experiments.make_config("lottery", "ci", seeds=[0, 1])) == \
        cache.config_hash(experiments.make_config("lottery", "ci", seeds=(0, 1)))
    # two experiments with equal fields still differ
    assert cache.config_hash(configs.StabilityConfig()) != cache.config_hash(configs.RewindingConfig())


def test_profiles_cover_every_experiment_and_paper_is_frankle_and_carbin():
    for profile, table in configs.PROFILES.items():
        assert set(table) == set(experiments.EXPERIMENTS), profile
        for name in experiments.EXPERIMENTS:
            experiments.make_config(name, profile)
    paper = experiments.make_config("lottery", "paper")
    assert (paper.dataset, paper.optimizer, paper.lr, paper.batch_size, paper.iterations) == ("mnist", "adam", 1.2e-3, 60, 50_000)
    assert (paper.rate, paper.output_rate, paper.hidden) == (0.2, 0.1, (300, 100))
    assert experiments.make_config("lottery", "lecture").rate == 0.2, "the lecture profile prunes at Frankle & Carbin's rate"
    ci = experiments.make_config("lottery")
    assert (ci.dataset, ci.rate, ci.output_rate) == ("mnist1d", pytest.approx(1 - 0.8 ** 2), pytest.approx(1 - 0.9 ** 2)), \
        "the chapter's setting: MNIST-1D, two of Frankle & Carbin's rounds at once"
    assert ci.long_iterations == 4 * ci.iterations
    assert experiments.make_config("digits_lottery").dataset == "digits"


def test_the_lottery_convergence_control_trains_the_sparsest_masks_longer():
    record = experiments.run("lottery", use_cache=False, **TINY["lottery"])
    runs, long = record["results"]["runs"], record["results"]["long"]
    assert set(long) == {"ticket", "random"} and len(long["ticket"]) == 1 and len(long["ticket"][0]) == 1
    for kind in ("ticket", "random"):
        control = long[kind][0][0]
        assert control["level"] == 2 and control["weights_left"] == runs[kind][0][2]["weights_left"]
        assert control["history"]["iteration"][-1] == 9
    config = experiments.make_config("lottery", **TINY["lottery"])
    assert experiments.planned_steps("lottery", config) == 2 * (3 * 6 + 1 * 9)
    assert experiments.run("digits_lottery", use_cache=False, **TINY["digits_lottery"])["results"]["long"] == \
        {"ticket": [], "random": []}, "long_iterations=0: no control"
    with pytest.raises(ValueError, match="long_iterations"):
        experiments.make_config("lottery", long_iterations=1000)
    with pytest.raises(ValueError, match="long_levels"):
        experiments.make_config("lottery", rounds=2, long_levels=3)


def test_make_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="experiment"):
        experiments.make_config("lotto")
    with pytest.raises(ValueError, match="profile"):
        experiments.make_config("lottery", "huge")
    with pytest.raises(TypeError, match="'lrate'"):
        experiments.make_config("lottery", lrate=0.1)


@pytest.mark.parametrize("name", experiments.EXPERIMENTS)
def test_run_computes_then_serves_from_cache(name, tmp_path, monkeypatch):
    calls = []
    entry = experiments.EXPERIMENTS[name]
    monkeypatch.setitem(experiments.EXPERIMENTS, name, dataclasses.replace(entry, runner=lambda config: calls.append(config) or entry.runner(config)))
    first = experiments.run(name, directory=tmp_path, **TINY[name])
    second = experiments.run(name, directory=tmp_path, **TINY[name])
    assert len(calls) == 1, "the second run must come from the cache"
    assert first == second
    assert first["config_hash"] == cache.config_hash(experiments.make_config(name, **TINY[name]))
    experiments.run(name, directory=tmp_path, **{**TINY[name], "seeds": (1,)})
    assert len(calls) == 2, "a changed setting must recompute"
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert not list(tmp_path.glob("*.tmp")), "no temporary file may be left behind"


def test_corrupt_cache_entry_is_recomputed_with_a_warning(tmp_path):
    config = experiments.make_config("stability", **TINY["stability"])
    path = cache.result_path("stability", config, tmp_path)
    path.write_text('{"config_hash": "trunc')
    with pytest.warns(RuntimeWarning, match="unreadable"):
        record = experiments.run("stability", directory=tmp_path, **TINY["stability"])
    assert json.loads(path.read_text()) == record
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert experiments.run("stability", directory=tmp_path, **TINY["stability"]) == record


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURELIB_CACHE", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LECTURELIB_CACHE")
    assert str(cache.cache_dir()) == ".lecturelib_cache"


def test_atomic_write_replaces_the_file_and_a_failed_write_leaves_it(tmp_path):
    path = tmp_path / "sub" / "x.json"
    atomic.write_json(path, {"a": 1})
    atomic.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    with pytest.raises(OSError), atomic.replacing(path) as partial:
        partial.write_text("half")
        raise OSError("disk full")
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_result_readers_and_figures(tmp_path):
    record = experiments.run("lottery", directory=tmp_path, **TINY["lottery"])
    results = record["results"]
    acc = experiments.level_metric(results["runs"]["ticket"], "best_test_acc")
    assert acc.shape == (1, 3)
    assert experiments.history_metric_at(results["runs"]["random"], "val_acc", 3).shape == (1, 3)
    with pytest.raises(ValueError, match="not evaluated"):
        experiments.history_metric_at(results["runs"]["random"], "val_acc", 4)
    stab = experiments.run("stability", directory=tmp_path, **TINY["stability"])
    ks, values = experiments.barrier_matrix(stab["results"]["by_k"])
    assert ks == [0, 2] and values.shape == (1, 2)
    import matplotlib
    matplotlib.use("Agg")
    for rec in (record, stab, experiments.run("rewinding", directory=tmp_path, **TINY["rewinding"])):
        figs = plots.experiment_figures(rec)
        assert figs and all(hasattr(f, "savefig") for f in figs.values())


def test_experiments_train_on_a_fixed_thread_count_whatever_the_machine(tmp_path, monkeypatch):
    """CPU_THREADS, not the core count: the same run gives the same numbers on a 2-core laptop and a 64-core server."""
    import torch

    seen = []
    real_fit = training._fit
    monkeypatch.setattr(training, "_fit", lambda *a, **kw: seen.append(torch.get_num_threads()) or real_fit(*a, **kw))
    for cores in (2, 7):
        with machine.torch_threads(cores):
            experiments.run("stability", directory=tmp_path, use_cache=False, **TINY["stability"])
    assert seen and set(seen) == {experiments.CPU_THREADS}


def test_run_restores_the_thread_count(tmp_path):
    import torch

    before = torch.get_num_threads()
    experiments.run("stability", directory=tmp_path, use_cache=False, **TINY["stability"])
    assert torch.get_num_threads() == before
    assert not list(tmp_path.iterdir()), "use_cache=False writes nothing"


def test_plots_of_the_lottery_chapters_label_their_axes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from lecturelib import plots

    fig, (a, b, c) = plt.subplots(1, 3)
    plots.plot_sparsity_curves(a, [1.0, 0.5, 0.1], {"t": (np.array([[0.9, 0.9, 0.8], [0.9, 0.8, 0.7]]), "k")}, ylabel="acc (%)", percent=True)
    assert a.get_xscale() == "log" and a.get_ylabel() == "acc (%)"
    assert np.allclose(a.lines[0].get_ydata(), [90, 85, 75]), "mean over seeds, in percent"
    runs = [{"alphas": [0.0, 0.5, 1.0], "errors": [0.1, 0.3, 0.1], "losses": [1, 2, 1]}]
    plots.plot_interpolation(b, {"k = 0": runs})
    assert np.allclose(b.lines[0].get_ydata(), [10, 30, 10]) and "α" in b.get_xlabel()
    plots.plot_barrier_vs_k(c, [0, 10, 100], {"dense": (np.array([[0.01, 0.02, 0.0]]), "k")})
    assert c.get_xscale() == "symlog" and "barrier" in c.get_ylabel()
    plt.close(fig)


@pytest.mark.parametrize("name", ["stability", "rewinding"])
def test_chapter_10_runs_the_mnist1d_cnn_annealed_by_a_cosine(name, monkeypatch):
    for profile in ("ci", "lecture"):
        config = experiments.make_config(name, profile)
        assert (config.dataset, config.model, config.optimizer, config.lr, config.momentum, config.batch_size, config.lr_schedule) == \
            ("mnist1d", "cnn1d", "sgd", 0.1, 0.9, 100, "cosine"), "the COURSE_SPEC setting: unstable at initialisation"
        assert config.alphas >= 11 and len(config.seeds) >= 3
    assert experiments.make_config(name, "lecture").iterations == 2000
    assert experiments.make_config(name, "paper").model == "mlp", "the paper profile's MNIST images need the MLP"
    seen = []
    for module in (experiments.training, iterative):   # stability's W_k; IMP's dense run (one seed: train)
        monkeypatch.setattr(module, "train", lambda *a, real=module.train, **kw: seen.append(kw) or real(*a, **kw))
    experiments.run(name, use_cache=False, **TINY[name])
    # W_k is taken from the first steps of the T-step run, on its schedule. The calls that take snapshots are those runs
    # (rewinding trains one per k, side by side: in either order).
    dense = [kw for kw in seen if kw.get("snapshot_at")]
    assert dense and all(kw.get("run_iterations", kw["iterations"]) == TINY[name]["iterations"] and kw["lr_schedule"] == "cosine"
                         for kw in dense)
    assert sorted(k for kw in dense for k in kw["snapshot_at"]) == [0, 2]


@pytest.mark.parametrize("name", ["noisy_stability", "noisy_rewinding"])
def test_noisy_experiments_train_the_cnn_on_noisy_labels_with_a_step_schedule(name, monkeypatch):
    config = experiments.make_config(name)
    assert (config.dataset, config.model, config.label_noise, config.lr_schedule) == ("digits", "cnn", 0.3, "step") and config.lr_milestones
    assert all(k < min(config.lr_milestones) for k in config.ks), "every W_k must be taken before the learning rate drops"
    seen = []
    real_noise = experiments.data_module.with_label_noise
    monkeypatch.setattr(experiments.data_module, "with_label_noise", lambda data, f, **kw: seen.append(f) or real_noise(data, f, **kw))
    record = experiments.run(name, use_cache=False, **TINY[name])
    assert seen == [0.3]
    by_k = record["results"]["by_k" if name == "noisy_stability" else "runs"]
    assert record["config"]["model"] == "cnn" and set(by_k) == {"0", "2"}
    with pytest.raises(ValueError, match="model"):
        experiments.run(name, use_cache=False, **{**TINY[name], "model": "resnet"})


@pytest.mark.parametrize("name", ["lottery", "rewinding", "stability"])
def test_jobs_side_by_side_give_the_numbers_of_one_after_another(name, monkeypatch):
    """The runners hand independent trainings (re-inits beside the convergence control; one rewind point, one k each)
    to machine.side_by_side; two threads must change the wall time only, never a bit of the result."""
    from lecturelib import machine

    settings = {**TINY[name], "seeds": (0, 1)}
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)          # threads even on a one-core machine
    calls = []
    real = machine.side_by_side

    def counted(fn, items, device=None):
        items = list(items)
        calls.append((len(items), device))
        return real(fn, items, device=device)

    monkeypatch.setattr(machine, "side_by_side", counted)
    together = experiments.run(name, use_cache=False, **settings)["results"]
    assert calls and max(n for n, _ in calls) >= 2, "the runner must hand several jobs to side_by_side"
    assert {device for _, device in calls} == {"cpu"}, "the runner must say where its jobs compute"
    monkeypatch.setattr(machine, "side_by_side", lambda fn, items, device=None: [fn(item) for item in items])
    assert experiments.run(name, use_cache=False, **settings)["results"] == together
