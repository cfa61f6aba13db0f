"""Latency helpers: statistics of repeated runs, interleaved comparisons, and the layers being timed."""

import re
import time

import pytest
import torch

from lecturelib import latency, pruning


def test_latency_stats_median_and_quartiles():
    stats = latency.latency_stats([0.004, 0.001, 0.003, 0.002, 0.005])
    assert stats.median == pytest.approx(0.003)
    assert stats.q1 == pytest.approx(0.002) and stats.q3 == pytest.approx(0.004)
    assert stats.iqr == pytest.approx(0.002) and stats.repeats == 5
    assert "ms" in str(stats)


def test_latency_stats_rejects_empty_and_negative():
    with pytest.raises(ValueError, match="at least one"):
        latency.latency_stats([])
    with pytest.raises(ValueError, match="-0.1"):
        latency.latency_stats([0.1, -0.1])


def test_measure_latency_warms_up_then_times_repeats():
    calls = []
    stats = latency.measure_latency(lambda: calls.append(1), warmup=2, repeats=5)
    assert len(calls) == 7 and stats.repeats == 5


def test_measure_latency_sees_a_slower_function():
    fast = latency.measure_latency(lambda: None, warmup=0, repeats=3)
    slow = latency.measure_latency(lambda: time.sleep(0.01), warmup=0, repeats=3)
    assert slow.median >= 0.009 > fast.median


def test_compare_latency_interleaves_rounds():
    order = []
    stats = latency.compare_latency({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, warmup=1, repeats=2)
    assert order == ["a", "b", "a", "b", "b", "a"] and list(stats) == ["a", "b"]
    with pytest.raises(TypeError, match="fns\\['x'\\]"):
        latency.compare_latency({"x": 3})
    with pytest.raises(ValueError, match="repeats"):
        latency.measure_latency(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="empty"):
        latency.compare_latency({})


def test_speedups_divides_the_baseline_median():
    stats = {"dense": latency.latency_stats([2.0]), "fast": latency.latency_stats([0.5])}
    assert latency.speedups(stats, "dense") == {"dense": 1.0, "fast": 4.0}
    with pytest.raises(KeyError, match="nope"):
        latency.speedups(stats, "nope")


def test_machine_class_is_short_and_anonymous():
    text = latency.machine_class()
    assert re.fullmatch(r"\S+ CPU, \d+ cores?, torch \d+\.\d+(\.\d+)?\S*", text), text
    import socket

    assert socket.gethostname() not in text


def test_remove_rows_keeps_largest_norm_rows_in_order():
    w = torch.tensor([[3.0, 0.0], [0.1, 0.1], [0.0, -2.0], [1.0, 1.0]])
    b = torch.arange(4.0)
    kept_w, kept_b, kept = latency.remove_rows(w, 0.5, b)
    assert kept.tolist() == [0, 2] and torch.equal(kept_w, w[[0, 2]]) and kept_b.tolist() == [0.0, 2.0]
    with pytest.raises(ValueError, match="2-D"):
        latency.remove_rows(torch.ones(3), 0.5)
    with pytest.raises(ValueError, match="sparsity"):
        latency.remove_rows(w, 1.0)
    assert latency.remove_rows(w, 0.9)[2].tolist() == [0], "round(0.9 * 4) = 4 rows, but the largest-norm row stays"
    tied = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert latency.remove_rows(tied, 0.34)[2].tolist() == [1, 2], "equal norms: the lower row index goes first"


def test_dense_zeroed_and_csr_layers_compute_the_same_product():
    w = pruning.prune_weights(latency.random_weight(32, 16, seed=1), 0.9)
    x = torch.randn(5, 16)
    dense = latency.dense_linear(w, x)()
    assert torch.allclose(latency.csr_linear(w, x)(), dense, atol=1e-6)
    assert torch.allclose(dense, x @ w.T, atol=1e-6)


def test_remove_hidden_units_shrinks_inner_widths_only():
    stack = latency.linear_stack(8, 3, seed=0)
    small = latency.remove_hidden_units(stack, 0.5)
    assert [tuple(w.shape) for w in small] == [(4, 8), (4, 4), (8, 4)]
    x = torch.randn(2, 8)
    assert latency.stack_forward(small, x).shape == (2, 8)
    assert latency.weight_count(small) == 32 + 16 + 32
    csr = [w.to_sparse_csr() for w in stack]
    assert torch.allclose(latency.stack_forward(csr, x), latency.stack_forward(stack, x), atol=1e-5)
    assert latency.weight_count(csr) == 3 * 64


def test_threads_are_set_during_the_measurement_and_restored():
    before = torch.get_num_threads()
    seen = []
    latency.measure_latency(lambda: seen.append(torch.get_num_threads()), warmup=0, repeats=2, threads=1)
    assert seen == [1, 1] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        latency.measure_latency(lambda: None, threads=0)


def test_break_even_sparsity_interpolates_in_log_ratio_and_handles_the_ends():
    assert latency.break_even_sparsity([0.5, 0.9], [2.0, 0.5]) == pytest.approx(0.7)
    assert latency.break_even_sparsity([0.5, 0.8, 0.9], [4.0, 2.0, 1.0]) == pytest.approx(0.9)
    assert latency.break_even_sparsity([0.5, 0.9], [0.8, 0.5]) == 0.5      # already faster at the first point
    assert latency.break_even_sparsity([0.5, 0.9], [3.0, 1.5]) is None     # never pays in the measured range
    with pytest.raises(ValueError, match="increase"):
        latency.break_even_sparsity([0.9, 0.5], [2.0, 0.5])
    with pytest.raises(ValueError, match="> 0"):
        latency.break_even_sparsity([0.5, 0.9], [2.0, 0.0])
