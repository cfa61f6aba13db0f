"""Every notebook opens with the Colab bootstrap (which installs lecturelib from the
repository of _config.yml, and only inside Colab) and has a ``parameters`` cell."""

from __future__ import annotations

import ast
import re
import sys
import types

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from conftest import CHAPTERS, REPO, existing_chapters, notebook_path, repository_url

BOOTSTRAP = """\
# Colab bootstrap: installs lecturelib only when this notebook runs in Google Colab.
import sys
if "google.colab" in sys.modules:
    %pip install -q "lecturelib @ git+{url}@v{version}"
"""


def library_version() -> str:
    """``lecturelib.__version__``, the one place the version is written (read without importing lecturelib)."""
    source = (REPO / "lecturelib" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', source, re.M).group(1)


def _first_code_cell(nb: nbformat.NotebookNode):
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def _chapter(chapter: str) -> nbformat.NotebookNode:
    path = notebook_path(chapter)
    if not path.exists():
        pytest.skip(f"notebooks/{chapter}.ipynb not written yet")
    return nbformat.read(path, as_version=4)


def _run_bootstrap(source: str, in_colab: bool) -> list[tuple[str, str]]:
    """Run the cell as IPython would, with a fake IPython; return the magics it ran."""
    python = TransformerManager().transform_cell(source)
    calls: list[tuple[str, str]] = []
    fake_ipython = types.SimpleNamespace(run_line_magic=lambda name, line, *a: calls.append((name, line)))
    saved = sys.modules.pop("google.colab", None)
    try:
        if in_colab:
            sys.modules["google.colab"] = types.ModuleType("google.colab")
        exec(compile(python, "<bootstrap>", "exec"), {"get_ipython": lambda: fake_ipython})
    finally:
        sys.modules.pop("google.colab", None)
        if saved is not None:
            sys.modules["google.colab"] = saved
    return calls


def test_at_least_one_notebook_exists():
    assert existing_chapters(), "no chapter notebook in notebooks/"


def test_bootstrap_template_uses_config_url():
    assert repository_url() == "https://github.com/pruning-course/pruning-course"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_first_cell_is_colab_bootstrap(chapter):
    first = _first_code_cell(_chapter(chapter))
    assert first is not None, f"{chapter}: no code cell"
    expected = BOOTSTRAP.format(url=repository_url(), version=library_version())
    assert first.source.strip() == expected.strip(), (
        f"{chapter}: first cell is not the Colab bootstrap.\nexpected:\n{expected}\ngot:\n{first.source}"
    )
    assert "remove-cell" in first.metadata.get("tags", []), f"{chapter}: the bootstrap must be tagged remove-cell (Colab only, not the book)"
    urls = re.findall(r"git\+(\S+?)@v[^\"]+\"", first.source)
    assert urls == [repository_url()], f"{chapter}: bootstrap installs from {urls}, _config.yml says {repository_url()}"
    assert f"@v{library_version()}\"" in first.source, (
        f"{chapter}: the bootstrap must install the tag of this book's lecturelib, v{library_version()} "
        f"(lecturelib/__init__.py); edit the first cell of every notebook when the version changes")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_bootstrap_installs_only_in_colab(chapter):
    source = _first_code_cell(_chapter(chapter)).source
    assert _run_bootstrap(source, in_colab=False) == [], f"{chapter}: the bootstrap runs a magic outside Colab"
    calls = _run_bootstrap(source, in_colab=True)
    assert [name for name, _ in calls] == ["pip"], f"{chapter}: in Colab the bootstrap ran {calls}"
    assert f'"lecturelib @ git+{repository_url()}@v{library_version()}"' in calls[0][1]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_parameters_cell(chapter):
    nb = _chapter(chapter)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{chapter}: {len(tagged)} cells tagged 'parameters' (want exactly 1)"
    cell = tagged[0]
    assert cell.cell_type == "code", f"{chapter}: the 'parameters' cell is {cell.cell_type}"
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code_cells) >= 2 and code_cells[1] is cell, (
        f"{chapter}: the 'parameters' cell must be the first code cell after the bootstrap"
    )
    values = {}
    for node in ast.parse(cell.source).body:
        assert isinstance(node, (ast.Assign, ast.AnnAssign)), (
            f"{chapter}: the parameters cell may only assign values (line {node.lineno}: {ast.unparse(node)!r})"
        )
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            pytest.fail(f"{chapter}: a parameter is not a literal: {ast.unparse(node)!r}")
        for target in targets:
            if isinstance(target, ast.Tuple):  # WARMUP, REPEATS = 3, 21
                assert all(isinstance(e, ast.Name) for e in target.elts) and len(target.elts) == len(value), (
                    f"{chapter}: cannot unpack {ast.unparse(node)!r}"
                )
                values.update({e.id: v for e, v in zip(target.elts, value)})
            else:
                assert isinstance(target, ast.Name), f"{chapter}: parameters must be plain names: {ast.unparse(node)!r}"
                values[target.id] = value
    assert values.get("DATASET") in ("digits", "mnist1d"), (
        f"{chapter}: DATASET should default to an offline data set ('digits' or 'mnist1d'), got {values.get('DATASET')!r}")
    assert isinstance(values.get("SEED"), int), f"{chapter}: SEED (an int) missing from the parameters cell"
