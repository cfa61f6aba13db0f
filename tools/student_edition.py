"""Write the student edition of the course notebooks: solutions replaced by stubs, outputs cleared.

Usage::

    python tools/student_edition.py notebooks _build/student

For every ``NN_*.ipynb`` in the source folder it writes a notebook of the same name where

* each code cell tagged ``solution`` is replaced by a stub: the imports it makes and, for
  every function it defines (methods of classes too), the ``def`` line(s) and docstring
  followed by ``# YOUR CODE HERE`` and ``raise NotImplementedError``; any other statement
  of the cell is dropped;
* the ``{solution-start}`` / ``{solution-end}`` directives and all markdown between them are
  removed (whole cells, or the lines of a cell that also holds an exercise or a summary), as
  is any plain ``{solution}`` directive;
* every output and execution count is cleared.

The script only needs the standard library and ``nbformat`` (no lecturelib, no torch).
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from pathlib import Path

import nbformat

SOLUTION_TAG = "solution"
STUB_COMMENT = "# YOUR CODE HERE"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"

# A fenced solution directive: ```{solution-start} LABEL / ```{solution-end} / ```{solution} LABEL
# (backticks or colons, three or more).
_DIRECTIVE = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\s*\{(?P<name>solution(?:-start|-end)?)\}")
# IPython line magics / shell escapes are not Python: blank them before parsing.
_MAGIC = re.compile(r"^\s*[%!]")


def _parse(source: str) -> ast.Module:
    """Parse cell source, treating IPython magic lines as blank lines (line numbers kept)."""
    lines = ["" if _MAGIC.match(line) else line for line in source.splitlines()]
    return ast.parse("\n".join(lines))


def _stub_function(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> str:
    """Return the source of ``node`` with its body replaced by a stub (docstring kept)."""
    start = (node.decorator_list[0] if node.decorator_list else node).lineno
    first = node.body[0]
    indent = " " * first.col_offset
    if first.lineno > node.lineno:
        header = "\n".join(lines[start - 1 : first.lineno - 1])
    else:  # one-line ``def f(x): return x``: rebuild the header from the AST
        bare = ast.FunctionDef(
            name=node.name, args=node.args, body=[ast.Pass()], decorator_list=node.decorator_list,
            returns=node.returns, type_comment=None, **({"type_params": []} if sys.version_info >= (3, 12) else {}),
        )
        header = "\n".join(ast.unparse(ast.fix_missing_locations(bare)).splitlines()[:-1])
        header = "\n".join(" " * node.col_offset + h for h in header.splitlines())
        if isinstance(node, ast.AsyncFunctionDef):
            header = header.replace("def ", "async def ", 1)
        indent = " " * (node.col_offset + 4)
    parts = [header]
    if ast.get_docstring(node, clean=False) is not None:
        doc = "\n".join(lines[first.lineno - 1 : first.end_lineno])
        parts.append(doc)
    parts += [indent + STUB_COMMENT, indent + "raise NotImplementedError"]
    return "\n".join(parts)


def _stub_class(node: ast.ClassDef, lines: list[str]) -> str:
    """Return ``node`` with every method stubbed; docstring and class-level fields are kept."""
    start = (node.decorator_list[0] if node.decorator_list else node).lineno
    first = node.body[0]
    header = "\n".join(lines[start - 1 : first.lineno - 1])
    indent = " " * first.col_offset
    parts = [header]
    for child in node.body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            parts.append("\n" + _stub_function(child, lines))
        else:  # the docstring and field declarations (a dataclass needs them)
            parts.append("\n".join(lines[child.lineno - 1 : child.end_lineno]))
    if not any(isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef)) for c in node.body):
        parts.append(indent + STUB_COMMENT)
    return "\n".join(parts)


def stub_source(source: str) -> str:
    """Return the stub that replaces a solution cell's ``source``.

    Keeps import statements and the signature and docstring of every function and class
    method (and a class's field declarations); each body becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError``.

    Examples:
        >>> print(stub_source('def double(x):\\n    \"\"\"Return 2x.\"\"\"\\n    return 2 * x\\n'))
        def double(x):
            \"\"\"Return 2x.\"\"\"
            # YOUR CODE HERE
            raise NotImplementedError
    """
    tree = _parse(source)
    lines = source.splitlines()
    pieces: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            pieces.append("\n".join(lines[node.lineno - 1 : node.end_lineno]))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            pieces.append(_stub_function(node, lines))
        elif isinstance(node, ast.ClassDef):
            pieces.append(_stub_class(node, lines))
        # any other statement (a demo call, a constant) is part of the answer: dropped
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body):
        pieces.append(STUB_COMMENT)  # a solution that defines nothing: the student writes it all
    # Imports first, then one blank line between definitions.
    out, previous_was_import = [], False
    for piece in pieces:
        is_import = piece.lstrip().startswith(("import ", "from "))
        if out:
            out.append("\n" if (is_import and previous_was_import) else "\n\n\n")
        out.append(piece)
        previous_was_import = is_import
    return "".join(out)


def _directive_end(lines: list[str], i: int, fence: str) -> int:
    """Index of the line after the fence opened at ``lines[i]`` closes (or after the last line)."""
    closing = re.compile(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
    j = i + 1
    while j < len(lines) and not closing.match(lines[j]):
        j += 1
    return j + 1


def strip_solutions(markdown: str, inside: bool) -> tuple[str, bool]:
    """Remove solutions from one markdown cell; return the remaining text and the new state.

    ``inside`` tells whether the cell starts between a ``{solution-start}`` and its
    ``{solution-end}``. Removed: the two gated directives themselves, every line between
    them, and every plain ``{solution}`` directive (header, options and body). Text around
    them — an exercise before a ``{solution-start}``, a summary after a ``{solution-end}`` —
    is kept, even within the same cell.
    """
    lines = markdown.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            if not inside:
                out.append(lines[i])
            i += 1
            continue
        name = match.group("name")
        if name == "solution-start":
            if inside:
                raise ValueError("a {solution-start} directive inside another solution")
            inside = True
        elif name == "solution-end":
            if not inside:
                raise ValueError("a {solution-end} directive without a {solution-start}")
            inside = False
        i = _directive_end(lines, i, match.group("fence"))
    text = re.sub(r"\n{3,}", "\n\n", "".join(out)).strip("\n")
    return text, inside


def is_solution_cell(cell) -> bool:
    """True for a code cell tagged ``solution``."""
    return cell.cell_type == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a new notebook: the student edition of ``nb`` (``nb`` is not modified)."""
    new = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    new.metadata.pop("widgets", None)  # saved widget state belongs to the cleared outputs
    inside = False
    for cell in nb.cells:
        source = cell.source
        if cell.cell_type == "markdown":
            text, inside_after = strip_solutions(source, inside)
            changed = inside or inside_after or text != source.strip("\n")
            inside = inside_after
            if changed and not text.strip():
                continue  # the cell held nothing but solution material
            new_cell = nbformat.v4.new_markdown_cell(text if changed else source)
            if "attachments" in cell:
                new_cell["attachments"] = copy.deepcopy(cell["attachments"])
        elif cell.cell_type == "code":
            if inside and not is_solution_cell(cell):
                raise ValueError(
                    "a code cell between {solution-start} and {solution-end} is not tagged "
                    f"'solution', so its code would reach the students:\n{source[:200]}"
                )
            if is_solution_cell(cell):
                source = stub_source(source)
            new_cell = nbformat.v4.new_code_cell(source)  # no outputs, no execution count
        else:
            new_cell = nbformat.v4.new_raw_cell(source)
        new_cell.metadata = copy.deepcopy(cell.metadata)
        if "id" in cell:
            new_cell.id = cell.id
        new.cells.append(new_cell)
    if inside:
        raise ValueError("a {solution-start} directive has no matching {solution-end}")
    new.nbformat, new.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    return new


def write_student_edition(src: Path, dst: Path) -> list[Path]:
    """Write the student edition of every ``NN_*.ipynb`` in ``src`` to ``dst``; return the paths."""
    src, dst = Path(src), Path(dst)
    notebooks = sorted(src.glob(NOTEBOOK_GLOB))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks matching {NOTEBOOK_GLOB!r} in {src}")
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        student = student_notebook(nb)
        nbformat.validate(student)
        out = dst / path.name
        partial = out.with_name(f".{out.name}.tmp")   # then rename: never a half-written notebook
        nbformat.write(student, partial)
        partial.replace(out)
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="folder with the course notebooks (notebooks/)")
    parser.add_argument("dst", type=Path, help="folder to write the student edition to")
    args = parser.parse_args(argv)
    for path in write_student_edition(args.src, args.dst):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
