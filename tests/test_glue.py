"""lecturelib.glue writes what MyST-NB's own glue writes, so {glue:text} finds it in the book."""

import IPython
import IPython.display
import nbformat
import pytest

from lecturelib import glue as glue_module


def _captured(monkeypatch, target, attribute):
    calls = []
    monkeypatch.setattr(target, attribute, lambda data, raw, metadata: calls.append((data, metadata)))
    return calls


def test_glue_stores_what_myst_nb_stores(monkeypatch):
    myst_glue = pytest.importorskip("myst_nb.ext.glue")
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())   # as inside a kernel
    ours = _captured(monkeypatch, IPython.display, "display")
    theirs = _captured(monkeypatch, myst_glue, "ipy_display")
    assert glue_module.glue("acc", 0.97123, ".1%") is None   # no Out[] under the cell
    myst_glue.glue("acc", "97.1%", display=False)
    assert ours == theirs
    data, metadata = ours[0]
    cell = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("display_data", data=data, metadata=metadata)])
    (key, output), = myst_glue.extract_glue_data_cell(cell)
    assert key == "acc" and output["data"]["text/plain"] == "'97.1%'"


def test_glue_outside_a_kernel_only_formats(monkeypatch):
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    calls = _captured(monkeypatch, IPython.display, "display")
    glue_module.glue("n", 1234, ",")
    assert calls == [] and glue_module.glue_text(1234, ",") == "1,234"


@pytest.mark.parametrize("name", ["", "two words", "a:b", 3])
def test_glue_refuses_bad_names(name):
    with pytest.raises(ValueError, match="name must be"):
        glue_module.glue(name, 1)
