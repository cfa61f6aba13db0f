"""The machine a timing or a seeded run depends on: its description, PyTorch's thread count for a block,
and independent jobs run side by side on its cores.

Every timing in the course (chapters 2 and 7, the performance page) states the machine class it was
measured on, and the notebooks' numeric platform (``tools/numeric_platform.py``) is the part of the
description that decides the bits of a seeded run. Nothing here identifies the machine (no host name).
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import torch

from ._checks import check_positive_int

A, T = TypeVar("A"), TypeVar("T")
_CPUINFO_KEYS = {"model name": "cpu_model", "vendor_id": "cpu_vendor", "cpu family": "cpu_family", "model": "cpu_model_number"}


def usable_cores() -> int:
    """Return the number of cores this process may use (its CPU affinity where the OS reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine_class() -> str:
    """Return a short description of this machine without identifying it, e.g. ``"x86_64 CPU, 2 cores, torch 2.4.0"``."""
    cores = usable_cores()
    return f"{platform.machine() or 'unknown'} CPU, {cores} core{'s' if cores != 1 else ''}, torch {torch.__version__.split('+')[0]}"


def description() -> dict[str, str | int]:
    """Return this machine's description: ``machine_class``, the CPU (``cpu_model`` name, ``cpu_vendor``,
    ``cpu_family``, ``cpu_model_number``, from ``/proc/cpuinfo`` on Linux), ``cores``, PyTorch's
    ``torch_threads`` and ``torch_cpu_capability`` (the SIMD level it dispatches to), and the
    ``torch``, ``python``, ``os`` and ``machine`` (architecture) versions and names."""
    info: dict[str, str | int] = {"machine_class": machine_class(), "cpu_model": platform.processor() or platform.machine() or "unknown CPU",
                                  "cpu_vendor": "", "cpu_family": "", "cpu_model_number": platform.processor()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux: the processor string is the best there is
        cpuinfo = []
    found: dict[str, str] = {}
    for line in cpuinfo:   # the first processor's entry
        key, _, value = line.partition(":")
        if key.strip() in _CPUINFO_KEYS:
            found.setdefault(_CPUINFO_KEYS[key.strip()], value.strip())
    info.update(found)
    info.update(cores=usable_cores(), torch_threads=torch.get_num_threads(), torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
                torch=torch.__version__, python=platform.python_version(), os=f"{platform.system()} {platform.machine()}",
                machine=platform.machine())
    return info


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None``: leave it), restoring the old count after.

    Raises:
        TypeError / ValueError: ``n`` is not a positive int (before anything is changed).
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(check_positive_int("threads", n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def side_by_side(fn: Callable[[A], T], items: Iterable[A], *, device: torch.device | str | None = None) -> list[T]:
    """Return ``[fn(item) for item in items]``, computed on up to :func:`usable_cores` Python threads when on the CPU.

    Each call computes exactly what it computes alone — bit for bit: PyTorch's kernels release
    Python's lock, so two calls use two cores while every operation still runs on the thread count
    set for the block (one, in the chapters and experiments). Unlike a second PyTorch thread inside
    each operation, the calls never wait on each other, so a busy machine makes them no slower than
    one after another. The calls must be independent: no tensor that one changes and another reads,
    no draws from the global random generator (:mod:`lecturelib.models` seeds its networks under a
    lock). The first call that raises re-raises here (calls not started yet are cancelled).

    ``device`` says where the calls compute (``None`` or ``"auto"``: :func:`lecturelib.training.default_device`);
    on a GPU they run one after another: a GPU gains nothing from them, and two threads' kernels on an
    Apple GPU crash PyTorch 2.14 (pytorch/pytorch#197805).

    Examples:
        >>> side_by_side(lambda seed: seed ** 2, range(4), device="cpu")   # e.g. one training per seed
        [0, 1, 4, 9]
    """
    from .training import resolve_device   # imported here: training sits above this module

    items = list(items)
    on_cpu = resolve_device(device).type == "cpu"
    workers = min(len(items), usable_cores()) if on_cpu else 1
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))
