"""tools/student_edition.py: solutions become stubs, solution directives and outputs disappear."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, existing_chapters, load_tool, notebook_path

student_edition = load_tool("student_edition")


# --- helpers shared by the synthetic and the real notebooks ------------------------------------

def _functions(source: str) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Top-level functions and methods of top-level classes."""
    tree = student_edition._parse(source)
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(node)
        elif isinstance(node, ast.ClassDef):
            found += [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return found


def _body_fragments(source: str) -> list[str]:
    """The source of each solution function's body, without its docstring (what must vanish)."""
    lines = source.splitlines()
    fragments = []
    for fn in _functions(source):
        body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
        if body:
            fragments.append("\n".join(lines[body[0].lineno - 1 : body[-1].end_lineno]).strip())
    return [f for f in fragments if len(f) >= 12]  # ignore trivial bodies like "return x"


def _assert_stub_raises(source: str, where: str) -> int:
    """Call every function the stub defines (undecorated, defaults/annotations removed,
    None for each argument): each must raise NotImplementedError. Returns how many."""
    count = 0
    for fn in _functions(source):
        assert fn.body and isinstance(fn.body[-1], ast.Raise), f"{where}: {fn.name} does not end in raise"
        bare = ast.parse(ast.unparse(fn)).body[0]
        bare.decorator_list, bare.returns = [], None
        args = bare.args
        for a in args.posonlyargs + args.args + args.kwonlyargs:
            a.annotation = None
        for a in (args.vararg, args.kwarg):
            if a is not None:
                a.annotation = None
        args.defaults = [ast.Constant(None) for _ in args.defaults]
        args.kw_defaults = [ast.Constant(None) if d is not None else None for d in args.kw_defaults]
        namespace: dict = {}
        exec(compile(ast.fix_missing_locations(ast.Module([bare], [])), where, "exec"), namespace)
        func = namespace[fn.name]
        positional = [None] * (len(args.posonlyargs) + len(args.args))
        keywords = {a.arg: None for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None}
        if isinstance(fn, ast.AsyncFunctionDef):
            import asyncio
            call = lambda: asyncio.run(func(*positional, **keywords))  # noqa: E731
        else:
            call = lambda: func(*positional, **keywords)  # noqa: E731
        with pytest.raises(NotImplementedError):
            call()
        count += 1
    return count


def _check_student_edition(original: nbformat.NotebookNode, student: nbformat.NotebookNode, name: str) -> None:
    nbformat.validate(student)
    text = "\n".join(c.source for c in student.cells)
    assert "{solution" not in text, f"{name}: a {{solution…}} directive survived"
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not cleared"
    assert "widgets" not in student.metadata, f"{name}: saved widget state survived"
    solutions = [c for c in original.cells if student_edition.is_solution_cell(c)]
    stubs = [c for c in student.cells if student_edition.is_solution_cell(c)]
    assert len(stubs) == len(solutions), f"{name}: {len(solutions)} solution cells, {len(stubs)} stubs"
    for solution, stub in zip(solutions, stubs):
        assert solution.source.strip() not in text or not solution.source.strip(), f"{name}: a solution cell survived"
        for fragment in _body_fragments(solution.source):
            assert fragment not in text, f"{name}: solution code survived:\n{fragment}"
        assert [f.name for f in _functions(stub.source)] == [f.name for f in _functions(solution.source)]
        for original_fn, stub_fn in zip(_functions(solution.source), _functions(stub.source)):
            assert ast.get_docstring(stub_fn) == ast.get_docstring(original_fn), f"{name}: docstring of {stub_fn.name} changed"
            assert ast.dump(stub_fn.args) == ast.dump(original_fn.args), f"{name}: signature of {stub_fn.name} changed"
        assert "# YOUR CODE HERE" in stub.source
        _assert_stub_raises(stub.source, f"{name} stub")


# --- a synthetic notebook, built here ------------------------------------------------------------

def _synthetic_notebook() -> nbformat.NotebookNode:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    solution_code = code(
        'import numpy as np\n\n\n'
        '@np.vectorize\n'
        'def soft(x, *, t: float = 1.0):\n'
        '    """Shrink x towards 0 by t."""\n'
        '    return np.sign(x) * max(abs(x) - t, 0.0)\n\n\n'
        'def prune_smallest(w: np.ndarray,\n'
        '                   amount: float = 0.5) -> np.ndarray:\n'
        '    """Return a copy of ``w`` with the ``amount`` smallest-magnitude entries set to 0."""\n'
        '    k = int(round(amount * w.size))\n'
        '    out = w.copy()\n'
        '    out.flat[np.argsort(np.abs(w), axis=None)[:k]] = 0.0\n'
        '    return out\n\n\n'
        'class Pruner:\n'
        '    """Keeps a mask."""\n'
        '    def mask(self, w):\n'
        '        return np.abs(w) > np.median(np.abs(w))\n\n\n'
        'print(prune_smallest(np.arange(4.0)))',
        metadata={"tags": ["solution"]},
        outputs=[nbformat.v4.new_output("stream", text="[0. 0. 2. 3.]\n")],
        execution_count=3,
    )
    return nbformat.v4.new_notebook(cells=[
        code("import sys", execution_count=1,
             outputs=[nbformat.v4.new_output("stream", text="hi\n")]),
        md("## Exercises\n\n```{exercise}\n:label: ex-prune\n\nWrite `prune_smallest`.\n```\n\n"
           "```{solution-start} ex-prune\n:class: dropdown\n```"),
        md("The trick is to sort by magnitude: SECRET-EXPLANATION."),
        solution_code,
        md("More SECRET-EXPLANATION.\n\n```{solution-end}\n```\n\n## Summary\n\nWhat we learned."),
        code("check_prune_smallest(prune_smallest)", outputs=[], execution_count=4),
        md("Intro text.\n\n```{solution} ex-other\n:class: dropdown\nHIDDEN ANSWER\n```\n\nAfter."),
        md("::::{solution-start} ex-colon\n::::"),
        code("%time\nanswer = 42", metadata={"tags": ["solution"]}),
        md("::::{solution-end}\n::::"),
    ], metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}})


def test_synthetic_notebook(tmp_path):
    original = _synthetic_notebook()
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(original, src / "01_demo.ipynb")
    written = student_edition.write_student_edition(src, tmp_path / "out")
    assert [p.name for p in written] == ["01_demo.ipynb"]
    student = nbformat.read(written[0], as_version=4)
    _check_student_edition(original, student, "synthetic")
    text = "\n".join(c.source for c in student.cells)
    assert "SECRET-EXPLANATION" not in text and "HIDDEN ANSWER" not in text and "answer = 42" not in text
    assert "Intro text." in text and "After." in text and "Write `prune_smallest`." in text
    assert "## Exercises" in text and "## Summary\n\nWhat we learned." in text
    assert "check_prune_smallest(prune_smallest)" in text
    stub = next(c.source for c in student.cells if student_edition.is_solution_cell(c))
    assert stub.startswith("import numpy as np")
    assert "@np.vectorize\ndef soft(x, *, t: float = 1.0):" in stub
    assert "def prune_smallest(w: np.ndarray,\n                   amount: float = 0.5) -> np.ndarray:" in stub
    assert "print(" not in stub
    assert _assert_stub_raises(stub, "synthetic") == 3
    assert next(c for c in original.cells if student_edition.is_solution_cell(c)).outputs, "the original was modified"


def test_unterminated_solution_is_an_error():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("```{solution-start} x\n```")])
    with pytest.raises(ValueError, match="solution-end"):
        student_edition.student_notebook(nb)


def test_untagged_code_inside_a_solution_is_an_error():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(cells=[
        md("```{solution-start} x\n:class: dropdown\n```"), code("answer = 42"), md("```{solution-end}\n```")])
    with pytest.raises(ValueError, match="not tagged 'solution'"):
        student_edition.student_notebook(nb)


def test_command_line(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(_synthetic_notebook(), src / "02_demo.ipynb")
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "student_edition.py"), str(src), str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "02_demo.ipynb").exists()


# --- the real notebooks ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    if not existing_chapters():
        pytest.fail("no chapter notebook in notebooks/ to build a student edition from")
    out = tmp_path_factory.mktemp("student")
    student_edition.write_student_edition(REPO / "notebooks", out)
    return out


@pytest.mark.parametrize("chapter", [pytest.param(c, id=c) for c in sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))] or
                         [pytest.param(None, marks=pytest.mark.skip(reason="no notebooks yet"))])
def test_real_notebook(student_dir, chapter):
    original = nbformat.read(notebook_path(chapter), as_version=4)
    student = nbformat.read(student_dir / f"{chapter}.ipynb", as_version=4)
    assert any(student_edition.is_solution_cell(c) for c in original.cells), f"{chapter}: no cell tagged 'solution'"
    _check_student_edition(original, student, chapter)


def test_at_least_one_real_notebook(student_dir):
    assert list(student_dir.glob("[0-9][0-9]_*.ipynb"))
