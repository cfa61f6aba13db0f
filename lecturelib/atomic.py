"""Atomic file writing: a reader never sees a half-written file, and an interrupted write leaves the old one.

Each write goes to a temporary file in the target's folder, which then replaces the target in one
``os.replace``. The file gets the mode an ordinary ``open(path, "w")`` would (``0o666`` less the
umask), not the owner-only ``0o600`` of a temporary file, so a cache shared by a group stays readable.
Used by the experiment cache, the benchmarks' results and page, and the command line's figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) to write; on leaving the block it becomes ``path``.

    The folder is created if missing. If the block raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj, *, indent: int | None = None) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (with a final newline when ``indent`` is given)."""
    write_text(path, json.dumps(obj, indent=indent) + ("\n" if indent is not None else ""))


def _umask() -> int:
    mask = os.umask(0o022)   # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask
