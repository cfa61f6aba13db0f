"""tools/student_edition.py: solutions become stubs, solution directives and outputs disappear."""

from __future__ import annotations

import ast
import re
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


# --- a skipped exercise never stops a chapter; every chapter has a predict-then-run question ----------

_ALLOWED_USES = ("use_or_fallback",)   # plus every checks.check_*: they report a stub as not attempted


def _bound_names(tree: ast.AST) -> set[str]:
    """The names a cell binds in the notebook's namespace: assignments, loop and ``with`` targets, definitions,
    imports — not the local names inside its functions, classes or comprehensions."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _guarded(tree: ast.AST) -> set[int]:
    """ids of the Name nodes passed to a checks.check_* or checks.use_or_fallback call (where a stub is safe)."""
    safe = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                node.func.attr.startswith("check_") or node.func.attr in _ALLOWED_USES):
            safe |= {id(arg) for arg in node.args if isinstance(arg, ast.Name)}
    return safe


@pytest.mark.parametrize("chapter", [pytest.param(c, id=c) for c in sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))])
def test_a_skipped_exercise_never_stops_the_chapter(chapter):
    """In the student edition a solution cell defines stubs and binds nothing else, so a later cell may use a
    solution's function or class only through a check or ``checks.use_or_fallback``, and never a value that
    only a solution cell computes — otherwise the chapter stops at the first exercise a student skips."""
    problems = _dead_ends(nbformat.read(notebook_path(chapter), as_version=4).cells)
    assert not problems, f"{chapter}: " + "; ".join(problems)


def test_dead_ends_are_found_in_a_synthetic_notebook():
    code = nbformat.v4.new_code_cell
    cells = [code("def f(x):\n    return 2 * x\n\nanswer = f(3)", metadata={"tags": ["solution"]}),
             code("checks.check_f(f)\ng = checks.use_or_fallback(f, abs)\ng(1)"),
             code("f(2)"), code("print(answer)"), code("answer = 1\nprint(answer)")]
    assert _dead_ends(cells) == ["cell 2 calls the exercise's f directly: pass it through checks.use_or_fallback",
                                 "cell 3 uses answer, which only a solution cell computes"]


def _dead_ends(cells) -> list[str]:
    """Why the student edition of ``cells`` would stop at a skipped exercise (empty: it would not)."""
    stubs: set[str] = set()          # functions and classes of solution cells (stubs in the student edition)
    solution_only: set[str] = set()  # other names bound only by solution cells so far
    plain: set[str] = set()          # names bound by the cells the student edition keeps
    problems = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = student_edition._parse(cell.source)
        except SyntaxError:
            continue
        if student_edition.is_solution_cell(cell):
            defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
            imported = _bound_names(ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], []))
            stubs |= defined
            solution_only |= _bound_names(tree) - defined - imported - plain
            continue
        safe, rebound = _guarded(tree), _bound_names(tree)   # a name the cell binds itself is the cell's own
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in rebound:
                if node.id in stubs and id(node) not in safe:
                    problems.append(f"cell {i} calls the exercise's {node.id} directly: pass it through checks.use_or_fallback")
                elif node.id in solution_only:
                    problems.append(f"cell {i} uses {node.id}, which only a solution cell computes")
        stubs -= rebound
        solution_only -= rebound
        plain |= rebound
    return list(dict.fromkeys(problems))


@pytest.mark.parametrize("chapter", [pytest.param(c, id=c) for c in sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))])
def test_every_chapter_has_a_predict_then_run_question(chapter):
    """A plain cell ``prediction = None`` (what the student edition keeps), a solution cell that sets ``prediction``,
    then a cell that checks it with ``checks.check_prediction(prediction, …)``, in this order."""
    stage = _prediction_stage(nbformat.read(notebook_path(chapter), as_version=4).cells)
    assert stage == 3, (f"{chapter}: no predict-then-run question found (stage {stage} of 3: a plain `prediction = None` cell, "
                        "a solution cell setting prediction, a checks.check_prediction(prediction, ...) cell)")


def test_a_prediction_the_student_edition_would_lose_is_no_question():
    code = nbformat.v4.new_code_cell
    solution = code("prediction = 0.5", metadata={"tags": ["solution"]})
    check = code("checks.check_prediction(prediction, 0.5, tolerance=0.1, what='x')")
    assert _prediction_stage([code("prediction = None"), solution, check]) == 3
    assert _prediction_stage([solution, check]) == 0, "without the plain cell the student edition has no `prediction`"
    assert _prediction_stage([code("prediction = None"), code("prediction = 0.5"), check]) == 1, "the answer must be a solution"


def _prediction_stage(cells) -> int:
    """How far ``cells`` get through a predict-then-run question: 3 = plain ``prediction = None``, solution, check."""
    stage = 0
    for cell in cells:
        if cell.cell_type != "code":
            continue
        source, solution = cell.source, student_edition.is_solution_cell(cell)
        if stage == 0 and not solution and re.search(r"^prediction = None\b", source, re.M):
            stage = 1
        elif stage == 1 and solution and re.search(r"^prediction = ", source, re.M):
            stage = 2
        elif stage == 2 and not solution and "checks.check_prediction(prediction" in source:
            stage = 3
            break
    return stage
