"""Numbers for the book's prose (every chapter): a chapter never types a measured number, it glues it.

A code cell calls ``glue("name", value, ".1f")``; a markdown cell writes ``{glue:text}`name``` and
the book (MyST-NB) inserts the text at that place, so the prose always says what the last run
computed. The value is stored as MyST-NB's ``glue(name, text, display=False)`` stores it — a hidden
display output whose metadata names the key — but without importing MyST-NB, which the book's
build has and Colab does not.
"""

from __future__ import annotations

from typing import Any

# MyST-NB's prefix for hidden glue outputs (myst_nb.ext.glue.GLUE_PREFIX)
GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value: Any, fmt: str = "") -> None:
    """Store ``format(value, fmt)`` under ``name`` for ``{glue:text}`name``` in the markdown.

    Nothing is returned (so a ``glue`` call at the end of a cell shows no output); the stored text is
    :func:`glue_text` ``(value, fmt)``.

    Args:
        name: the key, unique within the notebook (letters, digits, ``_`` and ``-``).
        value: what to insert; formatted with ``fmt`` (e.g. ``".1f"``, ``".0%"``, ``","``).
        fmt: a format specification; ``""`` uses ``str(value)``.

    Outside a Jupyter kernel (a plain script) nothing is stored.

    Raises:
        ValueError: ``name`` is empty or has characters other than letters, digits, ``_``, ``-``.

    Examples:
        >>> glue("accuracy", 0.9712, ".1%")   # in a notebook, {glue:text}`accuracy` then reads 97.1%
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be a non-empty string of letters, digits, '_' and '-', got {name!r}")
    text = glue_text(value, fmt)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:   # no IPython: a plain script, nothing to store
        return
    if get_ipython() is not None:
        display({GLUE_PREFIX + "text/plain": repr(text)}, raw=True,
                metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}})


def glue_text(value: Any, fmt: str = "") -> str:
    """Return the text :func:`glue` stores for ``value``: ``format(value, fmt)``, or ``str(value)`` without ``fmt``.

    Examples:
        >>> glue_text(0.9712, ".1%"), glue_text(1234, ","), glue_text("0.61–1.32")
        ('97.1%', '1,234', '0.61–1.32')
    """
    return format(value, fmt) if fmt else str(value)
