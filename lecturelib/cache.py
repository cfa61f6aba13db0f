"""The on-disk cache of the experiments (chapters 9 and 10): a result is named by its config
(:func:`config_hash`) and by the code that computes it (:func:`code_fingerprint`), so a changed
setting or an edited module is never served a stale result.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from . import __version__


def config_hash(config) -> str:
    """Return the 12-hex-digit name of ``config``: sha256 of its fields as sorted JSON.

    Equal configs give equal hashes on every machine; any changed field changes it.
    """
    payload = json.dumps({"experiment": type(config).__name__, **asdict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


_SOURCE = Path(__file__).parent   # the lecturelib whose code computes the results
_NOT_COMPUTING = ("__main__.py", "checks.py", "grading.py", "plots.py", "widgets.py")   # command line, notebook checks and grading, drawing


def code_fingerprint() -> dict[str, str]:
    """Return what besides the config decides a result: lecturelib's version, its source, torch's version.

    ``source_sha256`` hashes every ``lecturelib/*.py`` except the modules that compute no result
    (the command line, plotting, widgets, the notebooks' exercise checks and their grader). Hashing all the rest
    rather than tracing which functions a runner calls keeps it simple and never stale: any edit to
    a module that could change a number (even a comment) recomputes the results. Read on every call
    (about a millisecond), so an edit made while Python runs counts too.
    """
    digest = hashlib.sha256()
    for path in sorted(_SOURCE.glob("*.py")):
        if path.name not in _NOT_COMPUTING:
            digest.update(path.name.encode() + b"\0" + path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return {"lecturelib": __version__, "source_sha256": digest.hexdigest()[:16], "torch": torch.__version__}


def cache_dir() -> Path:
    """Return the cache folder: ``$LECTURELIB_CACHE`` or ``.lecturelib_cache/`` in the current directory."""
    return Path(os.environ.get("LECTURELIB_CACHE", ".lecturelib_cache"))


def result_path(experiment: str, config, directory: str | os.PathLike | None = None) -> Path:
    """Return where the result of ``config`` is cached: ``<cache>/<experiment>-<config hash>-<code hash>.json``.

    The code hash (8 hex digits) names :func:`code_fingerprint`: a new lecturelib or torch, or an
    edited module, looks for a different file, so a stale result is never read.
    """
    code = hashlib.sha256(json.dumps(code_fingerprint(), sort_keys=True).encode()).hexdigest()[:8]
    return Path(directory if directory is not None else cache_dir()) / f"{experiment}-{config_hash(config)}-{code}.json"


def read_cached(path: Path, experiment: str, config, required: tuple[str, ...]) -> dict | None:
    """Return the record in ``path`` if it validates — JSON of this ``experiment``, ``config`` and code, with
    each of its results' ``required`` keys non-empty — otherwise ``None``, after one warning saying why."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError("it is not a JSON object")
        if record.get("experiment") != experiment or record.get("config_hash") != config_hash(config):
            raise ValueError("it belongs to another configuration")
        if record.get("code") != code_fingerprint():
            raise ValueError("it was computed by other code (lecturelib or torch version, or lecturelib's source)")
        results = record.get("results")
        missing = [key for key in required if not (isinstance(results, dict) and results.get(key))]
        if missing:
            raise ValueError(f"its results lack {', '.join(missing)} or have them empty")
        return record
    except (OSError, ValueError) as error:   # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        warnings.warn(f"cache entry {path} is unreadable or invalid ({type(error).__name__}: {error}); recomputing it",
                      RuntimeWarning, stacklevel=4)
        return None
