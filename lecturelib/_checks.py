"""Small validation helpers shared by the library: each raises with the argument's name,
the bad value and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def check_fraction(name: str, value: float, *, allow_one: bool = False) -> float:
    """Return ``value`` as a float if it lies in [0, 1) (or [0, 1] with ``allow_one``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1), got {value!r} of type {type(value).__name__}")
    upper_ok = value <= 1 if allow_one else value < 1
    if not (0 <= value and upper_ok):
        allowed = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")
    return float(value)


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(repr(a) for a in allowed)}")


def check_positive_int(name: str, value: int, *, allow_zero: bool = False) -> int:
    """Return ``value`` if it is an int > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return value


def check_functions(name: str, fns: Mapping[str, object]) -> None:
    """Raise unless ``fns`` is a non-empty ``{label: callable}`` mapping."""
    if not fns:
        raise ValueError(f"{name} must hold at least one function, got an empty mapping")
    for label, fn in fns.items():
        if not callable(fn):
            raise TypeError(f"{name}[{label!r}] must be callable, got {type(fn).__name__}")
