"""The instructors' grader (``python -m lecturelib grade``): small synthetic notebooks with two
self-checked exercises, solved, as the student edition, and with planted mistakes, plus the student
edition of chapter 1 run for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, load_tool, notebook_path
from lecturelib import grading
from lecturelib.__main__ import main

student_edition = load_tool("student_edition")
md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell

PRUNE = '''def prune_smallest(w, ratio):
    """Return a copy of w with the round(ratio * len(w)) smallest |w| set to 0."""
    out = w.clone()
    out[w.abs().argsort()[:round(ratio * len(w))]] = 0
    return out
'''
SCHEDULE = '''def sparsity_schedule(final_sparsity, rounds):
    """Return the sparsity after each round, ending exactly at final_sparsity."""
    out = [1 - (1 - final_sparsity) ** (r / rounds) for r in range(1, rounds + 1)]
    out[-1] = final_sparsity
    return out
'''

SCHEDULE_BY_RATE = '''def sparsity_schedule(final_sparsity, rounds):
    """Return the sparsity after each round (powers of one rate: 0.4999999999999999 for (0.5, 2))."""
    rate = 1 - (1 - final_sparsity) ** (1 / rounds)
    return [1 - (1 - rate) ** r for r in range(1, rounds + 1)]
'''


def exercise(label: str, solution: str, check: str, function: str) -> list:
    """The cells of one exercise as the course writes them: {exercise}, solution cells, then the check."""
    return [
        md(f"```{{exercise}} {label.title()}\n:label: {label}\nWrite `{function}`.\n```"),
        md(f"```{{solution-start}} {label}\n:class: dropdown\n```"),
        code(solution, metadata={"tags": ["solution"]}),
        md("```{solution-end}\n```"),
        code(f"checks.{check}({function})"),
    ]


def notebook(prune: str = PRUNE, schedule: str = SCHEDULE, *, prune_check: str | None = None) -> nbformat.NotebookNode:
    cells = [code("import torch\nfrom lecturelib import checks"),
             *exercise("ex-prune", prune, "check_prune_smallest", "prune_smallest"),
             md("Some text between the exercises."),
             *exercise("ex-schedule", schedule, "check_sparsity_schedule", "sparsity_schedule")]
    if prune_check is not None:
        cells[cells.index(next(c for c in cells if "check_prune_smallest" in c.source))].source = prune_check
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def rows(grade: grading.NotebookGrade) -> dict[str, tuple[str, str]]:
    return {r.exercise: (r.status, r.message) for r in grade.results}


# --- finding the exercises needs no kernel -------------------------------------------------------

def test_exercises_are_named_by_the_label_above_their_check_cell():
    nb = notebook()
    nb.cells.append(code("# a second check of the same exercise\nchecks.check_sparsity_schedule(sparsity_schedule)"))
    nb.cells.insert(1, code("checks.check_inverted_dropout(lambda x, p, g: x)  # before any exercise"))
    found = grading.exercises(nb)
    assert [(e.label, e.checks) for e in found] == [
        ("cell 1", ("check_inverted_dropout",)), ("ex-prune", ("check_prune_smallest",)),
        ("ex-schedule", ("check_sparsity_schedule",)), ("ex-schedule (2)", ("check_sparsity_schedule",))]
    nb.cells.append(code("# checks.check_prune_smallest(prune_smallest) is commented out here"))
    nb.cells.append(code("def check_mine(f):\n    return checks.check_prune_smallest(f)", metadata={"tags": ["solution"]}))
    assert len(grading.exercises(nb)) == 4, "a check in a comment or a solution cell is no exercise"
    nb.cells.append(code("prune_smallest = fallback(prune_smallest, checks.check_prune_smallest, reference)"))
    nb.cells.append(code("checks.check_prune_smallest(prune_smallest"))   # a syntax error
    assert [e.checks for e in grading.exercises(nb)[4:]] == [("check_prune_smallest",)] * 2


def test_usage_errors_exit_with_status_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a notebook")
    nb = write(notebook(), tmp_path / "nb" / "a.ipynb")
    for argv, message in ([str(tmp_path / "missing.ipynb")], "no such notebook or folder"), \
                         ([str(tmp_path / "notes.txt")], "is not a notebook"), \
                         ([str(tmp_path / "empty")], "holds no .ipynb"), \
                         ([str(nb), "--timeout", "0"], "--timeout must be a positive, finite number of seconds, got 0.0"), \
                         ([str(nb), "--cell-timeout", "inf"], "--cell-timeout must be a positive, finite number"), \
                         ([str(nb), "--kernel", "no-such-kernel"], "no Jupyter kernel called 'no-such-kernel'"):
        assert main(["grade", *argv]) == grading.EXIT_USAGE
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["grade"])   # no path at all: argparse's usage error
    assert exit_.value.code == grading.EXIT_USAGE


# --- grading runs a kernel -----------------------------------------------------------------------

def test_a_folder_of_solved_student_and_mistaken_notebooks(tmp_path):
    """One run of ``python -m lecturelib grade FOLDER``: a row per exercise, exit status 1 for the planted mistakes."""
    folder = tmp_path / "submissions"
    write(notebook(), folder / "solved.ipynb")
    write(student_edition.student_notebook(notebook()), folder / "student.ipynb")
    write(notebook(PRUNE.replace("round(", "int("), SCHEDULE_BY_RATE), folder / "bob" / "mistakes.ipynb")
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "lecturelib", "grade", str(folder), "--cell-timeout", "60"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == grading.EXIT_FAILED, out.stdout + out.stderr
    blocks: dict[str, str] = {}
    for line in out.stdout.splitlines():   # a header line "PATH (N s)", then one indented row per exercise
        if not line.startswith("  "):
            name = Path(line.split(" (")[0]).name
        blocks[name] = blocks.get(name, "") + line + "\n"
    solved, student, mistakes = blocks["solved.ipynb"], blocks["student.ipynb"], blocks["mistakes.ipynb"]
    assert solved.count("passed") == 2 and "failed" not in solved and "not attempted" not in solved
    assert student.count("not attempted") == 2 and "failed" not in student
    assert "ex-prune" in mistakes and "failed" in mistakes and "int() truncates" in mistakes
    assert "final_sparsity=0.5, rounds=2: the schedule ends at 0.4999999999999999, not at the requested 0.5" in mistakes
    assert out.stdout.rstrip().splitlines()[-1] == "3 notebooks: 2 passed, 2 failed, 2 not attempted, 0 not run"
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before, "the notebooks ran in temporary copies"


def test_a_caught_check_is_still_graded_and_a_broken_solution_is_explained(tmp_path):
    """A notebook that catches the check's exception (to fall back to a reference) still gets the check's verdict;
    a solution cell with a syntax error makes the check cell fail, and the row says why."""
    wrapped = ("try:\n    checks.check_prune_smallest(prune_smallest)\nexcept checks.CheckFailed as failure:\n"
               "    print('falling back to lecturelib:', failure)")
    nb = notebook(PRUNE.replace("out = w.clone()", "out = w"), SCHEDULE.replace("return out", "return out[:"), prune_check=wrapped)
    grade = grading.grade_notebook(write(nb, tmp_path / "a.ipynb"), cell_timeout=60)
    assert grade.failed and not grade.problem
    status, message = rows(grade)["ex-prune"]
    assert status == grading.FAILED and "modified it in place" in message
    status, message = rows(grade)["ex-schedule"]
    assert status == grading.FAILED and message.startswith("NameError") and "earlier cell of this exercise raised SyntaxError" in message


@pytest.mark.parametrize("first_cell, cell_timeout, timeout, problem", [
    ("import time\ntime.sleep(600)", 4, 600, "stopped in cell 0: it ran past a cell's time limit (4 s)"),
    ("import time\ntime.sleep(600)", 600, 6, "the notebook's time limit"),
    ("import os\nos._exit(1)", 600, 600, "the kernel died in cell 0"),
], ids=["cell-time-limit", "notebook-time-limit", "dead-kernel"])
def test_a_notebook_that_stops_early_reports_the_rest_as_not_run(tmp_path, first_cell, cell_timeout, timeout, problem):
    nb = notebook()
    nb.cells.insert(0, code(first_cell))
    grade = grading.grade_notebook(write(nb, tmp_path / "slow.ipynb"), cell_timeout=cell_timeout, timeout=timeout)
    assert "cell 0" in grade.problem and problem in grade.problem, grade.problem
    assert [(r.status, r.message) for r in grade.results] == [(grading.NOT_RUN, grade.problem)] * 2 and grade.failed


def test_the_student_edition_of_chapter_1_is_all_not_attempted(tmp_path):
    """The one real chapter: its student edition runs top to bottom and no exercise counts as failed."""
    student = student_edition.student_notebook(nbformat.read(notebook_path("01_weighted_sum"), as_version=4))
    grade = grading.grade_notebook(write(student, tmp_path / "01_weighted_sum.ipynb"), cell_timeout=300, timeout=600)
    assert grade.results and not grade.problem, grading.format_grade(grade)
    assert {r.status for r in grade.results} == {grading.NOT_ATTEMPTED}, grading.format_grade(grade)
    assert not grade.failed
