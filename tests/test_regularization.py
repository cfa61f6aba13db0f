"""Regime comparison on a small training set: same budget, same data, same init per seed."""

import numpy as np
import pytest
import torch

from lecturelib import regularization
from lecturelib.training import History


def test_concat_histories_shifts_iterations():
    a = History(iteration=[10, 20], train_loss=[1.0, 0.5], test_loss=[1, 1], test_acc=[0.1, 0.2])
    b = History(iteration=[10, 20], train_loss=[0.4, 0.3], test_loss=[1, 1], test_acc=[0.3, 0.4])
    c = regularization.concat_histories(a, b)
    assert c.iteration == [10, 20, 30, 40] and c.test_acc == [0.1, 0.2, 0.3, 0.4]


def test_compare_regimes_runs_each_regime_per_seed():
    runs = regularization.compare_regimes(n_train=50, seeds=(0, 1), iterations=20, sparsity=0.8,
                                          regimes=("dense", "pruned", "dropout"), eval_every=10)
    assert [(r.regime, r.seed) for r in runs] == [(g, s) for s in (0, 1) for g in ("dense", "pruned", "dropout")]
    for run in runs:
        assert run.history.iteration == [10, 20, 30, 40]
        assert 0 <= run.test_acc <= 1 and run.test_loss > 0
        assert run.model is not None and not run.model.training
    pruned = [r for r in runs if r.regime == "pruned"]
    dense = [r for r in runs if r.regime == "dense"]
    assert all(r.sparsity == pytest.approx(0.8, abs=0.01) for r in pruned)
    # the pruned run shares the dense run's first half exactly
    assert pruned[0].history.test_acc[:2] == dense[0].history.test_acc[:2]
    summary = regularization.summarize(runs)
    assert summary["dense"]["n"] == 2 and summary["dense"]["min"] <= summary["dense"]["mean"] <= summary["dense"]["max"]
    it, values = regularization.curves(runs, "dropout")
    assert it.tolist() == [10, 20, 30, 40] and values.shape == (2, 4)


def test_early_stopped_is_the_dense_run_at_the_halfway_step():
    runs = regularization.compare_regimes(n_train=50, seeds=(0, 1), iterations=20, sparsity=0.8,
                                          regimes=("dense", "early_stopped"), eval_every=10, device="cpu")
    early = [r for r in runs if r.regime == "early_stopped"]
    dense = [r for r in runs if r.regime == "dense"]
    for e, d in zip(early, dense):
        assert e.history.iteration == [10, 20] and e.sparsity == 0.0
        # its final scores are the dense run's scores at step `iterations`, read off the dense curve
        assert e.test_acc == d.history.test_acc[1] and e.test_loss == pytest.approx(d.history.test_loss[1])
        assert e.model is not d.model and all(p.device.type == "cpu" for p in e.model.parameters())
    diffs = regularization.paired_differences(runs, "dense", "early_stopped", "test_loss")
    assert diffs.shape == (2,)
    assert diffs.tolist() == pytest.approx([d.test_loss - e.test_loss for d, e in zip(dense, early)])
    with pytest.raises(ValueError, match="same seeds"):
        regularization.paired_differences(runs, "dense", "pruned")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_models_come_back_on_the_cpu_after_a_gpu_run():
    runs = regularization.compare_regimes(n_train=50, seeds=(0,), iterations=10, eval_every=10, device="cuda",
                                          regimes=("dense", "pruned", "dropout", "early_stopped"))
    x = torch.randn(3, 1, 8, 8)   # a notebook's CPU tensor
    for run in runs:
        assert all(p.device.type == "cpu" for p in run.model.parameters())
        assert run.model(x).shape == (3, 10)


def test_compare_regimes_validates():
    with pytest.raises(ValueError, match="regime"):
        regularization.compare_regimes(regimes=("dense", "sparse"))
    with pytest.raises(ValueError, match="metric"):
        regularization.summarize([], "acc")
    with pytest.raises(ValueError, match="no runs"):
        regularization.curves([], "dense")


def test_dropout_regime_repeats_exactly():
    kwargs = dict(n_train=50, seeds=(3,), iterations=15, regimes=("dropout",), eval_every=15)
    a = regularization.compare_regimes(**kwargs)[0]
    torch.rand(5)  # disturb the global generator between the runs
    b = regularization.compare_regimes(**kwargs)[0]
    assert a.history.train_loss == b.history.train_loss and a.test_acc == b.test_acc
