"""Small validation helpers shared by the library: each raises with the argument's name,
the bad value and what is allowed.

A number may be given as a Python ``int``/``float``, a NumPy scalar (``np.float32(0.5)``,
``np.int64(3)``) or a 0-d array or tensor (``torch.tensor(0.5)``): :func:`as_scalar` turns those
into the plain Python number every check then works on. Booleans are never numbers here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sized

import numpy as np
import torch


def as_scalar(value: object) -> object:
    """Return ``value`` as a Python scalar if it is a NumPy scalar or a 0-d array/tensor; otherwise unchanged.

    Examples:
        >>> as_scalar(np.float32(0.5)), as_scalar(np.int64(3)), as_scalar(torch.tensor(2)), as_scalar("x")
        (0.5, 3, 2, 'x')
    """
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)) and value.ndim == 0:
        return value.item()
    return value


def check_number(name: str, value: float) -> float:
    """Return ``value`` as a finite float; ``TypeError`` if it is not a number, ``ValueError`` if NaN or ±inf."""
    value = as_scalar(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_fraction(name: str, value: float) -> float:
    """Return ``value`` as a float if it lies in [0, 1)."""
    value = as_scalar(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1), got {value!r} of type {type(value).__name__}")
    if not 0 <= value < 1:   # also refuses NaN
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(repr(a) for a in allowed)}")


def check_positive_int(name: str, value: int, *, allow_zero: bool = False) -> int:
    """Return ``value`` as an ``int`` if it is an integer > 0 (or >= 0 with ``allow_zero``)."""
    value = as_scalar(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return int(value)


def check_functions(name: str, fns: Mapping[str, object]) -> None:
    """Raise unless ``fns`` is a non-empty ``{label: callable}`` mapping."""
    if not fns:
        raise ValueError(f"{name} must hold at least one function, got an empty mapping")
    for label, fn in fns.items():
        if not callable(fn):
            raise TypeError(f"{name}[{label!r}] must be callable, got {type(fn).__name__}")


def checked_train_kwargs(train_kwargs: Mapping | None, reserved: Iterable[str], caller: str) -> dict:
    """Return a copy of ``train_kwargs`` (``{}`` for ``None``); ``ValueError`` naming each ``reserved`` key it sets.

    ``caller`` (named in the message) sets the ``reserved`` arguments of ``train`` itself.
    """
    train_kwargs = dict(train_kwargs or {})
    clash = sorted(set(reserved) & set(train_kwargs))
    if clash:
        them = "it" if len(clash) == 1 else "them"
        raise ValueError(f"train_kwargs must not set {', '.join(map(repr, clash))}: {caller} sets {them} itself")
    return train_kwargs


def check_one_each(per: str, n: int, **lists: Sized) -> None:
    """Raise ``ValueError`` unless each of ``lists`` holds ``n`` entries, one per ``per`` (model, mask…)."""
    for name, values in lists.items():
        if len(values) != n:
            raise ValueError(f"{name} must hold one entry per {per} ({n}), got {len(values)}")
