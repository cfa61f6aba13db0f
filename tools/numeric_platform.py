"""The numeric platform the committed notebook outputs were computed on.

A seeded run repeats exactly on the same machine, but not across CPUs: PyTorch and MKL pick
different kernels (AVX2 or AVX-512, one CPU generation or the next), whose sums round in a
different order, and a few hundred SGD steps turn that last-bit difference into a different
third decimal of an accuracy or a loss barrier. Forcing one code path everywhere costs too much
(MKL's cross-CPU mode makes a 4096-wide matrix product 3.5× slower here, which would distort the
latency chapters), so instead ``make execute`` records the platform next to the notebooks and the
nbval test compares outputs exactly only on the same platform. Elsewhere it still executes every
notebook and every claim the notebooks assert, and says loudly that the exact comparison was left
out and how to get it back.

Usage::

    python tools/numeric_platform.py            # print this machine's platform
    python tools/numeric_platform.py --record   # write notebooks/executed_on.json (make execute does)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RECORD = Path(__file__).resolve().parents[1] / "notebooks" / "executed_on.json"
sys.path.insert(0, str(RECORD.parents[1]))   # the checkout's lecturelib, also when run as a script
from lecturelib import atomic, machine  # noqa: E402


def fingerprint() -> dict[str, str]:
    """Return what decides the bits of a seeded CPU run: CPU vendor, family and model, the SIMD level
    PyTorch dispatches to, the number of threads, and the torch version (from :func:`lecturelib.machine.description`)."""
    info = machine.description()
    keys = {"machine": "machine", "cpu_vendor": "cpu_vendor", "cpu_family": "cpu_family", "cpu_model": "cpu_model_number",
            "torch_cpu_capability": "torch_cpu_capability", "torch_threads": "torch_threads", "torch": "torch"}
    return {key: str(info[source]) for key, source in keys.items()}


def recorded(path: Path = RECORD) -> dict[str, str] | None:
    """Return the platform recorded by the last ``make execute``, or None if there is no readable record."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def record(path: Path = RECORD) -> dict[str, str]:
    """Write this machine's fingerprint to ``path`` atomically and return it."""
    info = fingerprint()
    atomic.write_json(path, info, indent=1)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help=f"write {RECORD.relative_to(RECORD.parents[1])}")
    args = parser.parse_args(argv)
    info = record() if args.record else fingerprint()
    json.dump(info, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
