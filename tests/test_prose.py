"""The prose states no measured number that a rerun could make stale.

A chapter's markdown inserts every result with MyST-NB's glue (``{glue:text}`name```), so the text
says what the last run computed. This test reads the notebooks' JSON (nothing is executed) and flags
every *typed result* in a markdown cell. A number is a result when it looks like one:

* it carries a result's unit — ``%``, ``×`` (or ``x``/``times``/``-fold``), percentage ``points``,
  ``nats``, a time (``s``, ``ms``, ``µs``, ``seconds``, ``minutes``) or a count of ``test images``;
* it has a decimal point (measured values are rarely whole: losses, correlations, ratios);
* it follows a result's name within a few words (``accuracy 97``, ``loss of 2``, ``speed-up 3``);
* it counts outcomes (``9 of 10 seeds``).

Whole numbers without such a unit — an architecture 64-300-100-10, ``batch 64``, chapter 6,
Fig. 5, 8×8 pixels — are settings or names and pass. A flagged number is allowed when it is

* glued (the role is removed before the search);
* inside math (``$...$``: equation constants) or inline code (`` `lr=0.1` ``: a setting written as code);
* in a sentence that cites its source with ``{cite}`` (a paper's figure, e.g. Han et al.'s 9×);
* matched by one of the few phrases in :data:`SETTINGS` (each explained there).

Settings are better glued too (then a changed default cannot leave the prose behind); the
allowlist is for definitions and settings that are not a variable of any code.

The book's pages (``book/*.md``, ``README.md``) cannot glue: they state no measured number at all
and point to the chapter instead. ``book/performance.md`` is generated from the benchmarks'
results by ``make bench`` (its numbers are computed), so it is not read.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import CHAPTERS, REPO

NUMBER = r"(?<![\w.·⁻])[−-]?\d(?:[\d,]*\d)?(?:\.\d+)?"
SPACE = r"[ \u00a0\u202f]*"
RESULT_NAMES = (r"accuracy|accuracies|loss|losses|error|errors|barrier|barriers|speed-?ups?|"
                r"correlation|gap|lead|ratio")

# A number is a candidate result when one of these matches it (group "n" is the number).
RESULT_PATTERNS = [
    re.compile(rf"(?P<n>{NUMBER}){SPACE}(?:%|percent\b|per cent\b)"),
    re.compile(rf"(?P<n>{NUMBER}){SPACE}(?:×|x\b|times\b|-?fold\b)(?!{SPACE}\d)"),
    re.compile(rf"(?P<n>{NUMBER}){SPACE}(?:(?:percentage\s+)?points\b|pp\b|nats?\b|"
               rf"s\b|ms\b|µs\b|seconds?\b|minutes?\b|hours?\b|test\s+images?\b)"),
    re.compile(rf"(?P<n>(?<![\w.·⁻])[−-]?\d+\.\d+)"),
    # a result's name, up to three words, then a number; 0 and 1 alone are the ends of a scale
    # or the break-even ratio ("a speed-up above 1"), a bound rather than a measurement
    re.compile(rf"\b(?:{RESULT_NAMES})\b(?:[ \t:=≈]+[A-Za-z-]+){{0,3}}?[ \t:=≈(]+(?P<n>(?![01]\b){NUMBER})"),
    re.compile(rf"(?P<n>{NUMBER})\s+(?:of|out\s+of)\s+(?:the\s+)?\d+\b"),
]

# Settings and definitions that look like results (kept few; each says why it is not a result).
SETTINGS = [
    re.compile(rf"sums? to 100{SPACE}%"),                       # a share that is the whole: a histogram panel
    re.compile(r"Python \d+\.\d+(?: to \d+\.\d+)?"),             # a version of Python is a name
]


def _strip(markdown: str) -> str:
    """The markdown with glue, math, inline code, roles, link targets and HTML comments removed."""
    text = re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)
    text = re.sub(r"```\{glue:[\w]+\}[^\n]*", " GLUED ", text)            # a glued figure / math block
    text = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", " GLUED ", text)
    text = re.sub(r"^(```+)[ \t]*[\w-]+[ \t]*\n.*?^\1[ \t]*$", " CODE ", text, flags=re.S | re.M)  # code blocks
    text = re.sub(r"^\s*(?:```+|:::)\{[\w:-]+\}", " ", text, flags=re.M)  # a directive's name (its title is prose)
    text = re.sub(r"^\s*(?:```+|:::)\s*$|^\s*:\w[\w-]*:.*$", " ", text, flags=re.M)  # fences and options
    text = re.sub(r"\$\$.*?\$\$", " MATH ", text, flags=re.S)
    text = re.sub(r"(?<!\\)\$[^$\n]*(?<!\\)\$", " MATH ", text)
    text = re.sub(r"\{(?!cite)[\w:-]+\}`[^`]*`", " ROLE ", text)      # {term}, {doc}, {ref}, …
    text = re.sub(r"`[^`\n]*`", " CODE ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)                               # link targets (URLs)
    return text


def _sentences(text: str) -> list[str]:
    """``text`` cut at sentence ends (``. `` before a capital, blank lines, list items)."""
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(*])|\n\s*\n|\n\s*[-*] |\n\s*\d+\. ", text) if s.strip()]


def typed_results(markdown: str) -> list[str]:
    """Every typed result of one markdown text, each as a short snippet around the number.

    Returns an empty list when every number is glued, in math or code, cited, or a setting of
    :data:`SETTINGS`.

    Examples:
        >>> typed_results("The pruned net reaches 97.1 % accuracy.")
        ['…The pruned net reaches ⟦97.1⟧ % accuracy.…']
        >>> typed_results("The pruned net reaches {glue:text}`acc` accuracy.")
        []
    """
    found = []
    for sentence in _sentences(_strip(markdown)):
        if "{cite" in sentence:
            continue
        allowed = [m.span() for pattern in SETTINGS for m in pattern.finditer(sentence)]
        seen = set()
        for pattern in RESULT_PATTERNS:
            for m in pattern.finditer(sentence):
                start, end = m.span("n")
                if start in seen or any(a <= start < b for a, b in allowed):
                    continue
                seen.add(start)
                before = sentence[max(0, start - 50):start].replace("\n", " ")
                after = sentence[end:end + 30].replace("\n", " ")
                found.append(f"…{before}⟦{sentence[start:end]}⟧{after}…")
    return found


def _markdown_cells(chapter: str) -> list[tuple[int, str]]:
    notebook = json.loads((REPO / "notebooks" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    return [(i, "".join(cell["source"])) for i, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "markdown"]


def _report(where: str, hits: list[tuple[str, list[str]]]) -> str:
    lines = [f"{where}: typed results in the prose (glue them, cite their source, or rewrite):"]
    for place, snippets in hits:
        lines += [f"  {place}:"] + [f"    {s}" for s in snippets]
    return "\n".join(lines)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_prose_glues_every_result(chapter):
    hits = [(f"markdown cell {i}", found) for i, source in _markdown_cells(chapter)
            if (found := typed_results(source))]
    assert not hits, _report(f"notebooks/{chapter}.ipynb", hits)


@pytest.mark.parametrize("page", sorted({p.relative_to(REPO).as_posix()
                                         for p in [*REPO.glob("book/*.md"), REPO / "README.md"]}
                                        - {"book/performance.md"}))
def test_book_page_states_no_measured_number(page):
    found = typed_results((REPO / page).read_text(encoding="utf-8"))
    assert not found, _report(page, [("text", found)])


def test_performance_page_is_generated():
    assert "Generated by `make bench`" in (REPO / "book" / "performance.md").read_text(encoding="utf-8"), (
        "book/performance.md is skipped by the typed-result check only because make bench writes it")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_glued_name_is_stored_in_the_notebook(chapter):
    """Each ``{glue:text}`name``` of the markdown has a stored glue output in the committed notebook."""
    notebook = json.loads((REPO / "notebooks" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    stored = {output.get("metadata", {}).get("scrapbook", {}).get("name")
              for cell in notebook["cells"] if cell["cell_type"] == "code"
              for output in cell.get("outputs", [])}
    used = {}
    for i, source in _markdown_cells(chapter):
        for name in re.findall(r"\{glue(?::\w+)?\}`([^`]*)`", source) + re.findall(
                r"```\{glue:\w+\}\s*(\S+)", source):
            used.setdefault(name, i)
    missing = {name: i for name, i in used.items() if name not in stored}
    assert not missing, (f"notebooks/{chapter}.ipynb: glued names with no stored value (markdown cell: name): "
                         f"{missing}; re-execute the notebook or fix the name")


# --- the detector itself: it flags what it should, and only that ----------------------------

@pytest.mark.parametrize("markdown, number", [
    ("Pruned, the network keeps 97.1 % test accuracy.", "97.1"),
    ("Iterative pruning is 2 points ahead at the sparsest level.", "2"),
    ("The sparse kernel is 3× faster than the dense one.", "3"),
    ("The loss without retraining stops at 2.30, a uniform guess.", "2.30"),
    ("Test accuracy reaches 96 on the digits.", "96"),
    ("The ticket wins on 9 of 10 seeds.", "9"),
    ("One epoch takes 12 ms on this CPU.", "12"),
    ("The rank correlation is 0.98 on every seed.", "0.98"),
    ("Fine-tuning is −1.7 points behind training from scratch.", "−1.7"),
    ("- a list item saying the loss barrier fell to 0.01 nats", "0.01"),
])
def test_a_typed_result_is_flagged(markdown, number):
    found = typed_results(markdown)
    assert found and f"⟦{number}⟧" in found[0], found


@pytest.mark.parametrize("markdown", [
    "Pruned, the network keeps {glue:text}`acc_pruned` test accuracy ({glue:text}`gap` points).",
    "Han et al. report 9× fewer weights for AlexNet {cite}`han2015learning`.",
    "A neuron computes $S = 0.5 x_1 + 2.5 x_2$ (constants inside math).",
    "We train LeNet-300-100 (64 → 300 → 100 → 10 on the 8×8 digits) at batch 64 for chapter 6.",
    "Call `prune(net, 0.9)` in code; `lr=0.1` is a setting.",
    "Every panel sums to 100 %, the rows share the x-axis.",
    "Python 3.11 to 3.14 is supported.",
    "Their Fig. 5 is the subject of chapter 8; step 3 fine-tunes.",
])
def test_glued_cited_math_code_and_settings_pass(markdown):
    assert typed_results(markdown) == []


def test_a_chapter_with_a_typed_result_fails(monkeypatch):
    """The chapter test itself fails (and names the cell) on a synthetic notebook with one typed result."""
    cells = [(0, "# Title"), (1, "The ticket is {glue:text}`lead` ahead."), (2, "Dense: 96.8 % accuracy.")]
    monkeypatch.setitem(globals(), "_markdown_cells", lambda chapter: cells)
    with pytest.raises(AssertionError, match=r"markdown cell 2:\n\s+…Dense: ⟦96\.8⟧ % accuracy"):
        test_chapter_prose_glues_every_result("synthetic")


# --- the lecture's words: each chapter names the Korean term beside the English one ---------

HANGUL = re.compile("[\uac00-\ud7a3]")

# The key terms of each chapter (English, as in the glossary): where a term first appears in the
# chapter's markdown — title lines aside, learning objectives included — the lecture's Korean term
# stands beside it and one of the two links to its glossary entry ({term} role). Every glossary
# entry is required in the chapter the glossary says introduces it; the other entries are the
# lecture's words a later chapter leans on (가지치기, 마스크, 재학습, 되감기, …).
KEY_TERMS = {
    "01_weighted_sum": ["weighted sum", "weight", "importance", "pruning", "pruning ratio", "magnitude pruning"],
    "02_gains_and_costs": ["pruning", "inference speed", "regularization", "early stopping", "information loss",
                           "latency", "granularity", "sparse format", "sparsity", "unstructured pruning",
                           "structured pruning", "channel pruning", "FLOPs"],
    "03_weight_distributions": ["pruning", "weight distribution", "magnitude pruning", "mask", "retraining"],
    "04_pruning_vs_dropout": ["dropout", "pruning", "regularization", "ensemble", "mask", "early stopping"],
    "05_pruning_loop": ["pruning", "importance", "magnitude pruning", "sparsity", "fine-tuning", "mask"],
    "06_ratio_curves": ["regularization", "pruning ratio", "retraining", "global pruning"],
    "07_structured_pruning": ["granularity", "unstructured pruning", "structured pruning", "layer-wise pruning",
                              "global pruning", "FLOPs", "channel", "channel pruning", "training from scratch",
                              "weight distribution", "latency"],
    "08_iterative_pruning": ["one-shot pruning", "iterative pruning", "fine-tuning", "global pruning"],
    "09_lottery_ticket": ["lottery ticket hypothesis", "winning ticket", "iterative magnitude pruning", "mask",
                          "rewinding"],
    "10_rewinding_stability": ["rewinding", "stability", "noise", "error barrier", "linear mode connectivity",
                               "loss barrier", "label noise"],
}
NEAR = 140   # characters after the English term's first appearance in which the Korean term must stand


def glossary_entries() -> list[dict]:
    """The glossary's entries: English names, Korean names and the chapter that introduces each."""
    text = (REPO / "book" / "glossary.md").read_text(encoding="utf-8")
    block = text.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    entries, names = [], []
    for line in block.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            names.append(line.strip())
            continue
        chapter = re.search(r"notebooks/(\d\d_\w+)", line)
        entries.append({"english": [n for n in names if not HANGUL.search(n)],
                        "korean": [n for n in names if HANGUL.search(n)],
                        "chapter": chapter.group(1) if chapter else None})
        names = []
    return entries


_TERM_ROLE = re.compile(r"\{term\}`([^`<]*?)\s*(?:<([^>`]*)>)?`")
_NOT_PROSE = re.compile(r"(\{[\w:-]+\}`[^`]*`)|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$", re.S)


def first_appearance(cells: list[tuple[int, str]], entry: dict) -> tuple[int, str] | None:
    """``(cell index, text from the first appearance on)`` of a glossary entry, or None if it never appears.

    An appearance is a ``{term}`` role naming the entry (English or Korean) or the English name as a
    word (a plural ``s`` allowed); title lines, math, inline code and other roles do not count.
    """
    names = {n.lower() for n in entry["english"] + entry["korean"]}
    for i, source in cells:
        text = re.sub(r"^#.*$", " ", source, flags=re.M)
        text = _NOT_PROSE.sub(lambda m: m.group(1) if (m.group(1) or "").startswith("{term}") else " ", text)
        starts = [m.start() for m in _TERM_ROLE.finditer(text)
                  if (m.group(2) or m.group(1)).strip().lower() in names]
        plain = _TERM_ROLE.sub(lambda m: " " * len(m.group(0)), text)
        for name in entry["english"]:
            flags = 0 if any(c.isupper() for c in name) else re.I   # IMP, FLOPs: as written
            starts += [m.start() for m in re.finditer(rf"(?<![\w-]){re.escape(name)}s?(?![\w-])", plain, flags)]
        if starts:
            return i, text[min(starts):]
    return None


def missing_korean(cells: list[tuple[int, str]], entry: dict) -> str | None:
    """Why the entry's first appearance lacks its Korean term or a glossary link; None when it has both."""
    found = first_appearance(cells, entry)
    if found is None:
        return f"{entry['english'][0]!r} does not appear in the chapter's markdown"
    i, text = found
    window = text[:NEAR]
    if any(k in window for k in entry["korean"]) and "{term}`" in window:
        return None
    snippet = " ".join(window.split())
    return (f"markdown cell {i}: {entry['english'][0]!r} first appears without "
            f"{' / '.join(entry['korean'])} and a {{term}} link beside it: …{snippet}…")


def _entry(english: str) -> dict:
    entries = [e for e in glossary_entries() if english in e["english"]]
    assert entries, f"{english!r} is not a glossary entry (book/glossary.md)"
    return entries[0]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_names_its_key_terms_in_korean(chapter):
    cells = _markdown_cells(chapter)
    problems = [p for term in KEY_TERMS[chapter] if (p := missing_korean(cells, _entry(term)))]
    assert not problems, f"notebooks/{chapter}.ipynb:\n  " + "\n  ".join(problems)


def test_every_glossary_entry_is_a_key_term_where_it_is_introduced():
    entries = glossary_entries()
    assert all(e["korean"] and e["english"] for e in entries), "every glossary entry has an English and a Korean name"
    unchecked = [e["english"][0] for e in entries if e["english"][0] not in KEY_TERMS.get(e["chapter"], [])]
    assert not unchecked, f"glossary entries not among KEY_TERMS of the chapter that introduces them: {unchecked}"


@pytest.mark.parametrize("markdown, ok", [
    ("Removing weights — {term}`pruning` ({term}`가지치기`) — barely moves the sum.", True),
    ("Removing weights — {term}`Pruning <pruning>`, 가지치기 — barely moves the sum.", True),
    ("Removing weights — pruning — barely moves the sum. " + "It is the subject of the course. " * 5
     + "Later: {term}`pruning` ({term}`가지치기`).", False),
    ("Removing weights — {term}`pruning` — barely moves the sum.", False),
    ("Removing weights — pruning (가지치기) — barely moves the sum.", False),
])
def test_korean_term_check_on_synthetic_cells(markdown, ok):
    cells = [(0, "# Pruning in the title does not count"), (1, markdown)]
    assert (missing_korean(cells, _entry("pruning")) is None) == ok


def test_every_term_link_names_a_glossary_entry():
    """A ``{term}`` role in a chapter or page links to an entry of book/glossary.md (English or Korean name)."""
    names = {n.lower() for e in glossary_entries() for n in e["english"] + e["korean"]}
    texts = {f"notebooks/{c}.ipynb": "\n".join(s for _, s in _markdown_cells(c)) for c in CHAPTERS}
    texts |= {p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8") for p in REPO.glob("book/*.md")
              if p.name != "glossary.md"}   # the glossary's own text shows the role as an example
    unknown = [f"{where}: {m.group(0)}" for where, text in texts.items() for m in _TERM_ROLE.finditer(text)
               if (m.group(2) or m.group(1)).strip().lower() not in names]
    assert not unknown, "links to no glossary entry:\n  " + "\n  ".join(unknown)
