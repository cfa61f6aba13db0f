"""Open the built book in headless Chromium (Playwright) as a reader would.

Every page loads without JavaScript errors from the book's own assets and with every image
loaded; each chapter has at least two exercises whose solutions stay collapsed until
clicked, and a correct Colab link; the search page finds "lottery". Screenshots of the
chapters go to _build/screenshots/NN.png. Requests to other hosts are aborted and reported
(the book must work offline, with no CDN), so errors caused by them are not the book's.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import CHAPTERS, REPO, colab_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "_build" / "screenshots"
# Chapters whose widgets (or slider-shaped results) have a kernel-free twin in the rendered page.
TWIN_CHAPTERS = ["01_weighted_sum", "03_weight_distributions", "04_pruning_vs_dropout", "06_ratio_curves",
                 "09_lottery_ticket", "10_rewinding_stability"]
PAGE_BUDGET_BYTES = 3_000_000


def _require_chromium():
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium package (`make env` does it as root)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server(book_html):
    """Serve _build/html on 127.0.0.1 (a free port) from a background thread; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # part of uv.lock (the dev group)
        if os.environ.get("CI"):
            pytest.fail(f"playwright is not installed: {exc}", pytrace=False)
        pytest.skip(f"playwright is not installed: {exc}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Visit:
    """A page opened on the local server, with the problems seen while loading it."""

    def __init__(self, browser, server: str, path: str):
        self.server = server
        self.host = urlparse(server).netloc
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.remote: list[str] = []   # requests to other hosts, aborted: the book must not need them
        self.console_errors: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        self.page.on("pageerror", self._on_page_error)
        self.page.on("response", self._on_response)
        self.page.on("requestfailed", self._on_request_failed)
        self.page.goto(server + path, wait_until="load")
        self.page.wait_for_load_state("networkidle")

    def _own(self, url: str) -> bool:
        return urlparse(url).netloc == self.host

    def _route(self, route):
        if route.request.url.startswith(("data:", "blob:")) or self._own(route.request.url):
            route.continue_()
        else:
            self.remote.append(route.request.url)
            route.abort()  # no network: external hosts are blocked

    def _on_page_error(self, error):
        stack = error.stack or ""
        # An error whose stack mentions only external hosts comes from a third-party script.
        if "http" in stack and self.server not in stack:
            return
        self.problems.append(f"JavaScript error: {error.message}\n{stack[:600]}")

    def _on_response(self, response):
        if self._own(response.url) and response.status >= 400:
            self.problems.append(f"HTTP {response.status} for {response.url}")

    def _on_request_failed(self, request):
        if self._own(request.url):
            self.problems.append(f"request failed: {request.url} ({request.failure})")

    def broken_images(self) -> list[str]:
        self.page.evaluate("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        self.page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=15000)
        images = self.page.evaluate(
            "() => Array.from(document.images).map(i => [i.currentSrc || i.src, i.naturalWidth])")
        return [src for src, width in images if width == 0]

    def visible_search_fields(self) -> int:
        """How many search fields (or search buttons) a reader sees on the page."""
        return self.page.evaluate("""() => Array.from(document.querySelectorAll(
            '.search-button-field, .search-button, input[type=search], form.bd-search'))
            .filter(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden').length""")

    def close(self):
        self.context.close()


def _pages(book_html: Path) -> list[str]:
    skip = {"_static", "_sources", "_images", "_sphinx_design_static"}
    return sorted(
        p.relative_to(book_html).as_posix() for p in book_html.rglob("*.html")
        if not skip & set(p.relative_to(book_html).parts) and p.name != "search.html"
    )


def test_every_page_loads_cleanly(browser, server, book_html):
    pages = _pages(book_html)
    assert "index.html" in pages and len(pages) >= len(CHAPTERS) + 5, pages
    failures = []
    for path in pages:
        visit = Visit(browser, server, path)
        try:
            problems = visit.problems + [f"image not loaded: {src}" for src in visit.broken_images()]
            problems += [f"requests another host (the book works offline, no CDN): {url}" for url in visit.remote]
            if (fields := visit.visible_search_fields()) != 1:
                problems.append(f"{fields} visible search fields at 1280 px wide, want exactly 1")
        finally:
            visit.close()
        if problems:
            failures.append(f"{path}:\n  " + "\n  ".join(problems))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_in_browser(browser, server, chapter):
    visit = Visit(browser, server, f"notebooks/{chapter}.html")
    page = visit.page
    try:
        assert not visit.problems, "\n".join(visit.problems)
        assert not visit.broken_images(), f"{chapter}: images not loaded: {visit.broken_images()}"

        exercises = page.locator("div.exercise")
        assert exercises.count() >= 2, f"{chapter}: {exercises.count()} exercise(s), want at least 2"
        solutions = page.locator("div.solution")
        assert solutions.count() >= 1, f"{chapter}: no solution"
        for i in range(solutions.count()):
            solution = solutions.nth(i)
            body = solution.locator(":scope > :not(.admonition-title)").first
            assert "toggle-hidden" in (solution.get_attribute("class") or ""), f"{chapter}: solution {i} not collapsed"
            assert not body.is_visible(), f"{chapter}: the body of solution {i} is visible before a click"

        first = solutions.first
        first.scroll_into_view_if_needed()
        first.locator(".admonition-title").first.click()
        page.wait_for_function("s => !s.classList.contains('toggle-hidden')", arg=first.element_handle(), timeout=5000)
        assert first.locator(":scope > :not(.admonition-title)").first.is_visible(), (
            f"{chapter}: the first solution did not open when clicked"
        )

        # MathJax is served by the book itself (sphinx-mathjax-offline): formulas typeset with no network.
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=15000)
        page.evaluate("() => MathJax.startup.promise")
        typeset = page.locator("main mjx-container").count()
        raw = page.evaluate("() => /\\\\\\(|\\$\\$/.test(document.querySelector('main').innerText)")
        assert typeset > 0 and not raw, f"{chapter}: {typeset} typeset formulas, raw TeX left on the page: {raw}"

        hrefs = page.eval_on_selector_all(
            "a[href*='colab.research.google.com']", "links => links.map(a => a.href)")
        assert hrefs and set(hrefs) == {colab_url(chapter)}, f"{chapter}: Colab links {hrefs}"

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        first.locator(".admonition-title").first.click()  # collapse again for the picture
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / f"{chapter[:2]}.png"))
        assert visit.problems == [], "\n".join(visit.problems)
    finally:
        visit.close()


def test_one_search_field_on_a_phone(browser, server):
    visit = Visit(browser, server, "notebooks/01_weighted_sum.html")
    try:
        visit.page.set_viewport_size({"width": 400, "height": 800})
        visit.page.wait_for_timeout(200)
        assert visit.visible_search_fields() == 1
    finally:
        visit.close()


@pytest.mark.parametrize("chapter", TWIN_CHAPTERS)
def test_kernel_free_sliders_work_with_the_keyboard(browser, server, book_html, chapter):
    size = (book_html / "notebooks" / f"{chapter}.html").stat().st_size
    assert size < PAGE_BUDGET_BYTES, f"{chapter}: the page weighs {size / 1e6:.1f} MB (budget 3 MB)"
    visit = Visit(browser, server, f"notebooks/{chapter}.html")
    page = visit.page
    try:
        twins = page.locator(".lecturelib-twin")
        assert twins.count() >= 1, f"{chapter}: no kernel-free slider in the rendered page"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        errors_before = len(visit.console_errors)   # the theme's own console messages at load are not the twins'
        for i in range(twins.count()):
            twin = twins.nth(i)
            twin.scroll_into_view_if_needed()
            data = json.loads(twin.locator("script[type='application/json']").text_content())
            slider, image, label = twin.locator("input[type=range]"), twin.locator("img"), twin.locator("output")
            start = int(slider.input_value())
            assert image.get_attribute("src") == data["frames"][start], f"{chapter} twin {i}: wrong first frame"
            twin.screenshot(path=str(SCREENSHOTS / f"{chapter[:2]}-twin{i}-a.png"))
            slider.focus()
            key, end = ("Home", 0) if start == len(data["frames"]) - 1 else ("End", len(data["frames"]) - 1)
            page.keyboard.press(key)
            assert int(slider.input_value()) == end, f"{chapter} twin {i}: {key} did not move the slider"
            assert image.get_attribute("src") == data["frames"][end] != data["frames"][start], (
                f"{chapter} twin {i}: the figure did not change to the frame of position {end}")
            assert label.text_content() == data["labels"][end] and image.get_attribute("alt") == data["titles"][end]
            page.keyboard.press("ArrowLeft" if end else "ArrowRight")
            step = end - 1 if end else 1
            assert image.get_attribute("src") == data["frames"][step], f"{chapter} twin {i}: arrow key did not step"
            twin.screenshot(path=str(SCREENSHOTS / f"{chapter[:2]}-twin{i}-b.png"))
        page.set_viewport_size({"width": 400, "height": 800})   # a phone: the figure fits the width
        widths = page.eval_on_selector_all(".lecturelib-twin img", "imgs => imgs.map(i => i.getBoundingClientRect().right)")
        assert max(widths) <= 400, f"{chapter}: a twin overflows a phone-width window ({widths})"
        assert not visit.problems, "\n".join(visit.problems)
        assert visit.console_errors[errors_before:] == [], f"{chapter}: console errors while using the sliders"
        assert not visit.remote, f"{chapter}: the page requests other hosts (no CDN: the book works offline): {visit.remote}"
    finally:
        visit.close()


def test_search_finds_lottery(browser, server):
    visit = Visit(browser, server, "search.html?q=lottery")
    try:
        results = visit.page.locator("ul.search li")
        results.first.wait_for(timeout=20000)
        assert results.count() >= 1
        texts = " ".join(results.all_inner_texts()).lower()
        assert "lottery" in texts or "ticket" in texts, texts[:500]
        assert not visit.problems, "\n".join(visit.problems)
    finally:
        visit.close()
