"""lecturelib.machine: the thread count of a block and independent jobs run side by side."""

import threading

import pytest
import torch

from lecturelib import machine, models


def test_side_by_side_returns_results_in_the_order_of_the_jobs(monkeypatch):
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    seen = set()
    started = threading.Barrier(2, timeout=10)

    def job(i):
        seen.add(threading.get_ident())
        if i < 2:
            started.wait()   # the first two jobs run at the same time, or this times out
        return i * i

    assert machine.side_by_side(job, range(5)) == [0, 1, 4, 9, 16]
    assert len(seen) == 2


def test_side_by_side_runs_in_order_on_one_core(monkeypatch):
    monkeypatch.setattr(machine, "usable_cores", lambda: 1)
    order = []
    assert machine.side_by_side(lambda i: order.append(threading.get_ident()) or i, range(3)) == [0, 1, 2]
    assert set(order) == {threading.get_ident()}
    assert machine.side_by_side(abs, []) == []


@pytest.mark.parametrize("device", ["mps", "cuda:0", torch.device("cuda")])
def test_side_by_side_runs_one_after_another_on_a_gpu(monkeypatch, device):
    """Two threads' MPS kernels crash PyTorch 2.14 (pytorch/pytorch#197805), and a GPU gains nothing from threads."""
    monkeypatch.setattr(machine, "usable_cores", lambda: 4)
    seen = []
    assert machine.side_by_side(lambda i: seen.append(threading.get_ident()) or i, range(3), device=device) == [0, 1, 2]
    assert set(seen) == {threading.get_ident()}


def test_side_by_side_asks_training_for_the_default_device(monkeypatch):
    from lecturelib import training

    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    monkeypatch.setattr(training, "default_device", lambda: torch.device("mps"))
    seen = []
    machine.side_by_side(lambda i: seen.append(threading.get_ident()), range(4))
    assert set(seen) == {threading.get_ident()}, "on an accelerator by default: one after another"
    monkeypatch.setattr(training, "default_device", lambda: torch.device("cpu"))
    barrier = threading.Barrier(2, timeout=10)
    machine.side_by_side(lambda i: barrier.wait(), range(2), device="auto")   # on the CPU: two threads at once


def test_side_by_side_reraises_a_calls_error(monkeypatch):
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)

    def job(i):
        if i == 1:
            raise FloatingPointError("training diverged")
        return i

    with pytest.raises(FloatingPointError, match="diverged"):
        machine.side_by_side(job, range(4))


def test_seeded_networks_are_the_same_when_built_in_parallel(monkeypatch):
    """models seed from the global generator under a lock: networks built in parallel jobs equal those built one by one."""
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    build = lambda seed: models.mlp((1, 8, 8), 10, (64, 32), seed=seed)   # noqa: E731
    alone = [build(seed) for seed in range(24)]
    for _ in range(3):
        parallel = machine.side_by_side(build, range(24))
        assert all(torch.equal(p, q) for a, b in zip(alone, parallel) for p, q in zip(a.parameters(), b.parameters()))


def test_torch_threads_sets_and_restores_the_count():
    before = torch.get_num_threads()
    with machine.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        with machine.torch_threads(0):
            pass


def test_mnist1d_generated_in_parallel_is_the_data_generated_alone(monkeypatch):
    """mnist1d's generator reseeds NumPy's global generator: data loaded in parallel jobs must not interleave its draws."""
    from lecturelib import data

    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    alone = data._mnist1d_arrays()
    data._mnist1d_arrays.cache_clear()
    try:
        parallel = machine.side_by_side(lambda _: data._mnist1d_arrays.__wrapped__(), range(2), device="cpu")
    finally:
        data._mnist1d_arrays.cache_clear()
    for arrays in parallel:
        assert all((a == b).all() for a, b in zip(arrays, alone))
