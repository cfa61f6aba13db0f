"""Grade students' notebooks (for teachers; the exercises of every chapter): run each in a fresh kernel and
report every self-checked exercise.

    python -m lecturelib grade alice.ipynb bob.ipynb
    python -m lecturelib grade submissions/                  # every *.ipynb below the folder
    python -m lecturelib grade submissions/ --cell-timeout 60 --timeout 300

An exercise is a code cell that calls (or passes on) a ``lecturelib.checks.check_*`` function; it is named by the
``:label:`` of the ``{exercise}`` above it (or ``cell N`` when there is none). Each notebook runs
top to bottom in a new Jupyter kernel, with errors allowed, in a temporary copy of its folder, so a
notebook neither sees nor changes what other runs wrote. After every exercise cell the grader asks
the kernel what the checks concluded (:func:`lecturelib.checks.report_outcomes`), so a notebook
that catches a check's exception is still graded by what the check found. One row per exercise:

* ``passed`` — every check in the cell passed;
* ``failed`` — a check failed (its message), or the cell raised before a check could run;
* ``not attempted`` — the function is still the student edition's stub (``raise NotImplementedError``);
* ``not run`` — the notebook stopped before the cell: its time limit, or the kernel died.

The kernel is the current Python's (``python3``); ``PYTHONPATH`` gets the folder this
``lecturelib`` was imported from, so the notebooks import the same library, plus ``--pythonpath``.
The notebooks run with your permissions: grade only code you are prepared to run. The grader
trusts the notebook's own cells: a notebook from which an exercise's check cell was deleted has no
row for that exercise, so compare the rows with the exercises of the course's notebook.

Exit status: 0 when no exercise failed (each passed or was not attempted); 1 when one failed or
was not run, or a notebook could not be read or holds no self-checked exercise; 2 for a usage
error (a path that does not exist or is not a notebook, a folder without notebooks, a bad limit).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PASSED, FAILED, NOT_ATTEMPTED, NOT_RUN = "passed", "failed", "not attempted", "not run"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_LABEL = re.compile(r"^\s*:label:\s*(\S+)", re.M)
_CHECK_CALL = re.compile(r"\bcheck_\w+(?=\s*\()")
_REPORT = "__import__('lecturelib.checks', fromlist=['report_outcomes']).report_outcomes()"
_NOT_COPIED = shutil.ignore_patterns(".*", "__pycache__", "_build")


class UsageError(ValueError):
    """A path or a limit the grader cannot work with."""


@dataclass(frozen=True)
class Exercise:
    """A cell that calls self-checks: its index in the notebook, the exercise's label and the checks called."""

    cell: int
    label: str
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    """The grade of one exercise: ``status`` is one of passed, failed, not attempted, not run."""

    exercise: str
    checks: tuple[str, ...]
    status: str
    message: str = ""


@dataclass
class NotebookGrade:
    """The results of one notebook, why it stopped early (``problem``, or ``""``) and its run time in seconds."""

    path: Path
    results: list[Result] = field(default_factory=list)
    problem: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.problem) or not self.results or any(r.status in (FAILED, NOT_RUN) for r in self.results)


def _named_checks(source: str) -> tuple[str, ...]:
    """The ``check_*`` functions a cell calls or passes on (``fallback(f, checks.check_f)``); comments do not count."""
    try:
        tree = ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()))
    except SyntaxError:   # a student's broken cell: the regular expression still finds the call
        return tuple(dict.fromkeys(_CHECK_CALL.findall(source)))
    names = [node.attr if isinstance(node, ast.Attribute) else node.id for node in ast.walk(tree)
             if isinstance(node, (ast.Attribute, ast.Name)) and (node.attr if isinstance(node, ast.Attribute) else node.id).startswith("check_")]
    return tuple(dict.fromkeys(names))


def exercises(nb) -> list[Exercise]:
    """The self-checked exercises of a notebook, in order: every code cell, other than a solution, that uses a ``check_*`` function.

    Each is named by the ``:label:`` of the last ``{exercise}`` directive above it; a second check
    cell of the same exercise gets `` (2)``, and a check cell with no exercise above it ``cell N``.
    """
    found, label, seen = [], None, {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and "{exercise}" in cell.source:
            match = _LABEL.search(cell.source[cell.source.index("{exercise}"):])
            label = match.group(1) if match else None
        elif cell.cell_type == "code" and "solution" not in cell.metadata.get("tags", []) and (names := _named_checks(cell.source)):
            name = label or f"cell {index}"
            seen[name] = seen.get(name, 0) + 1
            found.append(Exercise(index, name if seen[name] == 1 else f"{name} ({seen[name]})", names))
    return found


def find_notebooks(paths: list[str | os.PathLike]) -> list[Path]:
    """The notebooks to grade: each path that is a ``.ipynb`` file, and every ``*.ipynb`` below each folder (sorted).

    Raises :class:`UsageError` for a path that does not exist, a file that is not ``.ipynb`` and a folder without notebooks.
    """
    if not paths:
        raise UsageError("give at least one notebook or folder to grade")
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*.ipynb") if not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not inside:
                raise UsageError(f"the folder {str(path)!r} holds no .ipynb notebook")
            found += inside
        elif path.is_file():
            if path.suffix != ".ipynb":
                raise UsageError(f"{str(path)!r} is not a notebook; give .ipynb files or folders")
            found.append(path)
        else:
            raise UsageError(f"no such notebook or folder: {str(path)!r}")
    return list(dict.fromkeys(found))


def _kernel_env(pythonpath: list[str | os.PathLike]) -> dict[str, str]:
    """The environment of the kernel: this one, with ``pythonpath`` and the folder holding this lecturelib on ``PYTHONPATH``."""
    root = Path(__file__).resolve().parents[1]
    entries = [str(Path(p).resolve()) for p in pythonpath] + [str(root)]
    if os.environ.get("PYTHONPATH"):
        entries.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(entries)}


def _outcomes(cell) -> list[dict] | None:
    """The outcomes printed by a report cell, or ``None`` if it printed none (it failed: no lecturelib in the kernel)."""
    from .checks import GRADER_MARK

    for output in cell.get("outputs", []):
        for line in output.get("text", "").splitlines() if output.get("output_type") == "stream" else []:
            if line.startswith(GRADER_MARK):
                return json.loads(line[len(GRADER_MARK):])
    return None


def _error(cell) -> tuple[str, str] | None:
    """``(exception name, message)`` of a cell's error output, if any."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename", "Error"), " ".join(str(output.get("evalue", "")).split())
    return None


def _grade(exercise: Exercise, check_cell, outcomes: list[dict] | None, earlier_error: str, stopped: str) -> Result:
    """Grade one exercise from its check cell's outputs and the outcomes the checks recorded (``stopped``: why the run stopped
    before or in this cell, else ``""``)."""
    if outcomes:
        failed = [o for o in outcomes if o["status"] == FAILED]
        if failed:
            return Result(exercise.label, exercise.checks, FAILED, failed[0]["message"])
        if any(o["status"] == NOT_ATTEMPTED for o in outcomes):
            return Result(exercise.label, exercise.checks, NOT_ATTEMPTED)
        return Result(exercise.label, exercise.checks, PASSED)
    if stopped:
        return Result(exercise.label, exercise.checks, NOT_RUN, stopped)
    error = _error(check_cell)
    if error is None:
        return Result(exercise.label, exercise.checks, FAILED, "the cell ran but no self-check did: its call was removed or skipped")
    name, message = error
    if name == "NotImplementedError":
        return Result(exercise.label, exercise.checks, NOT_ATTEMPTED)
    hint = f" (an earlier cell of this exercise raised {earlier_error})" if earlier_error else ""
    return Result(exercise.label, exercise.checks, FAILED, f"{name}: {message}{hint}")


def grade_notebook(path: str | os.PathLike, *, cell_timeout: float = 120.0, timeout: float = 600.0,
                   pythonpath: Sequence[str | os.PathLike] = (), kernel_name: str = "python3") -> NotebookGrade:
    """Run the notebook at ``path`` in a fresh kernel, in a temporary copy of its folder, and grade every self-checked exercise.

    Args:
        path: the ``.ipynb`` file; never modified.
        cell_timeout: the longest one cell may run, in seconds.
        timeout: the longest the whole notebook may run, kernel start included, in seconds; after it (or a cell's limit,
            or a dead kernel) the remaining exercises are ``not run`` and ``problem`` says why.
        pythonpath: folders put on the kernel's ``PYTHONPATH`` before this lecturelib's folder.
        kernel_name: the Jupyter kernel to start.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(path)
    grade = NotebookGrade(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook: a row, so that one bad file does not stop a folder
        grade.problem = f"cannot read the notebook: {' '.join(str(error).split())[:300]}"
        return grade
    found = exercises(nb)
    if not found:
        grade.problem = "no cell calls a lecturelib.checks.check_* function"
        return grade
    # the copy that runs: a report cell after every check cell; cell_of[i] = where original cell i now is
    run = nbformat.v4.new_notebook(metadata=nb.metadata)
    cell_of, origin = {}, []   # origin[j]: the original cell that run cell j is or reports on; a report cell follows its check cell
    check_cells = {e.cell for e in found}
    for index, cell in enumerate(nb.cells):
        cell_of[index] = len(run.cells)
        run.cells.append(copy.deepcopy(cell))
        origin.append(index)
        if index in check_cells:
            run.cells.append(nbformat.v4.new_code_cell(_REPORT))
            origin.append(index)
    for cell in run.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start, current = time.monotonic(), 0
    with tempfile.TemporaryDirectory(prefix="lecturelib-grade-") as tmp:
        workdir = Path(tmp) / "work"
        shutil.copytree(path.resolve().parent, workdir, ignore=_NOT_COPIED, symlinks=True)
        client = NotebookClient(run, timeout=max(1, int(cell_timeout)), kernel_name=kernel_name, allow_errors=True,
                                interrupt_on_timeout=False, shutdown_kernel="immediate", resources={"metadata": {"path": str(workdir)}})
        try:
            # the kernel's own log (a warning about TCP without encryption) would interleave with the rows
            with client.setup_kernel(env=_kernel_env(list(pythonpath)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
                for index, cell in enumerate(run.cells):
                    current = index
                    left = timeout - (time.monotonic() - start)
                    if left <= 0:
                        grade.problem = f"stopped at cell {origin[index]}: the notebook's time limit of {timeout:g} s is used up"
                        break
                    client.timeout = max(1, int(min(cell_timeout, left)))
                    try:
                        client.execute_cell(cell, index)
                    except CellTimeoutError:
                        limit = "a cell's" if client.timeout >= int(cell_timeout) else "the notebook's"
                        grade.problem = f"stopped in cell {origin[index]}: it ran past {limit} time limit ({client.timeout} s)"
                        break
        except DeadKernelError as error:
            grade.problem = f"the kernel died in cell {origin[current]}: {' '.join(str(error).split())}"
        except (RuntimeError, OSError) as error:  # the kernel would not start
            grade.problem, current = f"the notebook could not run: {' '.join(str(error).split())[:300]}", 0
    grade.seconds = time.monotonic() - start
    stopped_at = origin[current] if grade.problem else None   # the run stopped before or in this cell
    previous = -1
    for exercise in found:
        earlier = [_error(run.cells[cell_of[i]]) for i in range(previous + 1, exercise.cell) if nb.cells[i].cell_type == "code"]
        earlier_error = next((f"{name}: {message}" for name, message in filter(None, earlier)), "")
        outcomes = _outcomes(run.cells[cell_of[exercise.cell] + 1])
        stopped = grade.problem if stopped_at is not None and exercise.cell >= stopped_at else ""
        grade.results.append(_grade(exercise, run.cells[cell_of[exercise.cell]], outcomes, earlier_error, stopped))
        previous = exercise.cell
    return grade


def format_grade(grade: NotebookGrade) -> str:
    """The rows of one notebook: a header line with the path, then ``exercise  checks  status  message`` per exercise."""
    lines = [f"{grade.path} ({grade.seconds:.0f} s)" + (f": {grade.problem}" if grade.problem else "")]
    if not grade.results and not grade.problem:
        lines[0] += ": no self-checked exercise"
    label_w = max([len(r.exercise) for r in grade.results] + [8])
    check_w = max([len(", ".join(r.checks)) for r in grade.results] + [5])
    for r in grade.results:
        lines.append(f"  {r.exercise:<{label_w}}  {', '.join(r.checks):<{check_w}}  {r.status:<13}  {r.message}".rstrip())
    return "\n".join(lines)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``grade`` command to the command line's sub-commands."""
    parser = commands.add_parser(
        "grade", help="run students' notebooks and report each self-checked exercise",
        description="Run each notebook in a fresh kernel (errors allowed, time-limited, in a temporary copy of its folder) and "
                    "print one row per exercise: passed / failed (the check's message) / not attempted / not run. "
                    "Exit status 0: nothing failed; 1: an exercise failed or did not run; 2: a usage error.")
    parser.add_argument("paths", nargs="+", metavar="NOTEBOOK_OR_FOLDER", help="student notebooks (.ipynb), or folders of them")
    parser.add_argument("--cell-timeout", type=float, default=120.0, metavar="SECONDS", help="limit for one cell (default: 120)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS", help="limit for one whole notebook (default: 600)")
    parser.add_argument("--pythonpath", action="append", default=[], metavar="FOLDER",
                        help="put FOLDER on the kernel's PYTHONPATH (repeatable); this lecturelib's folder is always there")
    parser.add_argument("--kernel", default="python3", help="the Jupyter kernel to run the notebooks in (default: python3)")


def _check_kernel(name: str) -> None:
    """Raise :class:`UsageError` unless nbclient is installed and Jupyter knows a kernel called ``name``."""
    try:
        import nbclient  # noqa: F401
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError as error:
        raise UsageError(f"the grader needs nbclient and ipykernel ({error}); the course's .venv has them (make env), "
                         "or: pip install nbclient ipykernel") from None

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        known = ", ".join(sorted(KernelSpecManager().find_kernel_specs())) or "none"
        raise UsageError(f"no Jupyter kernel called {name!r}; installed: {known}") from None


def command(args: argparse.Namespace) -> int:
    """Run ``grade`` with parsed arguments; return the exit status."""
    try:
        for name in ("cell_timeout", "timeout"):
            value = getattr(args, name)
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"--{name.replace('_', '-')} must be a positive, finite number of seconds, got {value!r}")
        notebooks = find_notebooks(args.paths)
        _check_kernel(args.kernel)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    counts: dict[str, int] = {}
    failed = False
    for path in notebooks:
        grade = grade_notebook(path, cell_timeout=args.cell_timeout, timeout=args.timeout, pythonpath=args.pythonpath,
                               kernel_name=args.kernel)
        print(format_grade(grade), flush=True)
        failed |= grade.failed
        for r in grade.results:
            counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in (PASSED, FAILED, NOT_ATTEMPTED, NOT_RUN))
    print(f"{len(notebooks)} notebook{'s' * (len(notebooks) != 1)}: {summary}")
    return EXIT_FAILED if failed else EXIT_OK
