"""Sphinx extension: one search field per page, the one at the top of the sidebar.

pydata-sphinx-theme (0.16+) adds a search field to the page header unless the user's
``html_theme_options`` set ``navbar_persistent``; sphinx-book-theme's own empty default does not
count, so every page showed a second search field in an otherwise empty header bar. Jupyter Book
writes ``html_theme_options`` itself (launch buttons, repository links), and a
``html_theme_options`` key in ``_config.yml`` would replace all of them — so this sets the one
option before the theme reads it.
"""

from __future__ import annotations


def _no_header_search(app, config) -> None:
    config.html_theme_options = {**config.html_theme_options, "navbar_persistent": []}


def setup(app):
    app.connect("config-inited", _no_header_search)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
