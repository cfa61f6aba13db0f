"""Sphinx extension: drop repeated inline <script> blocks from every HTML page.

sphinx-thebe registers its inline configuration script (``const THEBE_JS_URL = …``) with
``filename=None``; Sphinx re-adds registry scripts with ``filename=""``, so under Sphinx 7.4
the same script ends up twice on every page and the browser reports
"Identifier 'THEBE_JS_URL' has already been declared". This keeps the first copy of each
identical script (same file, same body, same attributes).
"""

from __future__ import annotations


def _key(script) -> tuple:
    filename = getattr(script, "filename", script) or ""
    attributes = tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items()))
    return (str(filename), attributes)


def _dedupe(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
