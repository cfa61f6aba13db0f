"""The book builds with warnings as errors, and every chapter page shows its own figures,
a correct Colab launch link and exercise solutions as collapsed dropdowns."""

from __future__ import annotations

import base64
import re

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup

from conftest import BOOK_PAGES, CHAPTERS, REPO, colab_url, load_config, notebook_path

BIB_KEYS = {"lee2019snip", "greydanus2020scaling",
    "han2015learning", "frankle2019lottery", "frankle2020linear", "frankle2019stabilizing",
    "liu2019rethinking", "srivastava2014dropout", "blalock2020state", "renda2020comparing",
    "li2017pruning", "lecun1990optimal", "gal2016dropout", "hoefler2021sparsity", "zhu2017prune",
    "he2017channel", "lecun1998gradient", "krizhevsky2009learning", "xiao2017fashion",
}


def _soup(book_html, docname: str) -> BeautifulSoup:
    page = book_html / f"{docname}.html"
    assert page.exists(), f"{page.relative_to(REPO)} was not built"
    return BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")


# --- configuration: cheap checks that need no build ---------------------------------------

def test_toc_lists_every_chapter_and_page_once():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    assert toc["format"] == "jb-book" and toc["root"] == "book/intro"
    files = [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    expected = [f"notebooks/{c}" for c in CHAPTERS] + [p for p in BOOK_PAGES if p != "book/intro"]
    assert sorted(files) == sorted(expected), f"_toc.yml lists {files}"
    assert [f for f in files if f.startswith("notebooks/")] == [f"notebooks/{c}" for c in CHAPTERS], (
        "chapters must appear in order 01..10"
    )
    for part in toc["parts"]:
        assert part.get("caption"), f"part without caption: {part}"
        if any(ch["file"].startswith("notebooks/") for ch in part["chapters"]):
            assert part.get("numbered") is True, f"chapter part {part['caption']!r} is not numbered"


def test_config_never_executes_and_links_colab():
    config = load_config()
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["repository"]["url"] == "https://github.com/pruning-course/pruning-course"
    assert config["repository"]["branch"] == "main"
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]


def test_bibliography_has_exactly_the_course_keys():
    bib = (REPO / "book" / "references.bib").read_text(encoding="utf-8")
    keys = re.findall(r"^@\w+\{([^,\s]+),", bib, flags=re.MULTILINE)
    assert len(keys) == len(set(keys)), f"duplicate BibTeX keys: {sorted(k for k in keys if keys.count(k) > 1)}"
    assert set(keys) == BIB_KEYS


# --- the built book -------------------------------------------------------------------------

def test_book_builds_without_warnings(book_html):
    for docname in [f"notebooks/{c}" for c in CHAPTERS] + BOOK_PAGES:
        assert (book_html / f"{docname}.html").exists(), f"{docname}.html missing"
    assert (book_html / "search.html").exists()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_shows_its_own_figures(book_html, chapter):
    soup = _soup(book_html, f"notebooks/{chapter}")
    # (the kernel-free sliders embed their frames as data: URIs; test_browser checks those)
    imgs = [img for img in soup.select("div.cell_output img") if not img.get("src", "").startswith("data:")]
    assert imgs, f"{chapter}: no <img> in any cell output (commit the notebook with its outputs)"
    nb = nbformat.read(notebook_path(chapter), as_version=4)
    committed = {
        base64.b64decode(out["data"]["image/png"])
        for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if "image/png" in out.get("data", {})
    }
    rendered = set()
    for img in imgs:
        src = img.get("src", "")
        path = (book_html / "notebooks" / src).resolve()
        assert path.is_file() and path.stat().st_size > 0, f"{chapter}: <img src={src!r}> points to no file"
        rendered.add(path.read_bytes())
    assert committed & rendered, f"{chapter}: none of the page's images is one of the notebook's PNG outputs"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_has_colab_launch_link(book_html, chapter):
    soup = _soup(book_html, f"notebooks/{chapter}")
    links = [a["href"] for a in soup.find_all("a", href=True) if "colab.research.google.com" in a["href"]]
    assert links and set(links) == {colab_url(chapter)}, f"{chapter}: Colab links {links}"
    assert colab_url(chapter) == (
        "https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/"
        f"notebooks/{chapter}.ipynb"
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_opens_with_its_title_not_the_colab_bootstrap(book_html, chapter):
    # The bootstrap is for Colab only (tagged remove-cell); the rendered page starts with the chapter's H1.
    main = _soup(book_html, f"notebooks/{chapter}").find("main")
    assert "Colab bootstrap" not in main.get_text() and "google.colab" not in main.get_text(), f"{chapter}: bootstrap shown"
    assert main.find("h1") is not None and not main.find("h1").find_previous("div", class_="cell"), f"{chapter}: a code cell precedes the title"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_solutions_are_dropdowns(book_html, chapter):
    soup = _soup(book_html, f"notebooks/{chapter}")
    exercises = soup.select("div.exercise")
    solutions = soup.select("div.solution")
    assert len(exercises) >= 2, f"{chapter}: {len(exercises)} exercise(s), the course asks for at least 2"
    assert solutions, f"{chapter}: no rendered solution"
    not_dropdown = [s.get("id") for s in solutions if "dropdown" not in s.get("class", [])]
    assert not not_dropdown, f"{chapter}: solutions not rendered as dropdowns: {not_dropdown}"
    scripts = [s.get("src", "") for s in soup.find_all("script")]
    assert any("togglebutton" in s for s in scripts), f"{chapter}: togglebutton JS (which collapses them) not loaded"
    # the solution code cells (tagged "solution") sit inside the dropdown, not after it
    nb = nbformat.read(notebook_path(chapter), as_version=4)
    tagged = [c for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])]
    rendered = soup.select("div.cell.tag_solution")
    assert len(rendered) == len(tagged), f"{chapter}: {len(tagged)} solution cells, {len(rendered)} rendered"
    for cell in rendered:
        parent = cell.find_parent("div", class_="solution")
        assert parent is not None and "dropdown" in parent.get("class", []), (
            f"{chapter}: a solution code cell is rendered outside a solution dropdown "
            "(wrap it in {solution-start} ... {solution-end})"
        )


def test_glossary_and_references_render(book_html):
    glossary = _soup(book_html, "book/glossary")
    terms = [dt.get_text(" ", strip=True) for dt in glossary.select("dl.glossary dt")]
    for term in ["pruning", "가지치기", "lottery ticket hypothesis", "복권 가설", "rewinding", "되감기"]:
        assert any(t.startswith(term) for t in terms), f"glossary lacks {term!r}"
    references = _soup(book_html, "book/references").get_text(" ", strip=True).lower()
    bib = (REPO / "book" / "references.bib").read_text(encoding="utf-8")
    for title in re.findall(r"^\s*title\s*=\s*\{(.+)\},?\s*$", bib, flags=re.MULTILINE):
        words = re.sub(r"[{}]", "", title).lower()
        assert words in references, f"references page lacks {title!r}"
