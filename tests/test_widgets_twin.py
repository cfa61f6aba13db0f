"""widgets.twin: the kernel-free twin of a demo holds one frame per slider value, drawn by the demo's own draw function."""

from __future__ import annotations

import json
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch

from lecturelib import plots, widgets


def _payload(twin: widgets.Twin) -> dict:
    return json.loads(re.search(r'<script type="application/json">(.*?)</script>', twin.html, re.S).group(1))


def test_one_frame_per_slider_value_with_the_demos_titles():
    demo = widgets.pruning_histogram_demo(torch.randn(5000, generator=torch.Generator().manual_seed(0)), sparsity=0.5)
    twin = widgets.twin(demo)
    assert twin.values == tuple(round(0.05 * i, 10) for i in range(20))
    assert twin.labels[0] == "0%" and twin.labels[-1] == "95%"
    payload = _payload(twin)
    assert len(payload["frames"]) == len(set(payload["frames"])) == 20   # every value draws a different figure
    assert all(f.startswith("data:image/png;base64,") for f in payload["frames"])
    # the titles are those the live widget draws for the same value
    assert twin.titles[14] == demo.update(0.7).axes[0].get_title()
    assert 'value="10"' in twin.html and "50%" in twin.html   # starts at the demo's own value
    assert "http" not in twin.html.replace("http://www.w3.org", "")   # nothing remote


def test_selection_slider_twin_and_size():
    demo = widgets.ratio_curve_demo([0.5, 0.8, 0.9], {"retrained": (np.array([[0.9, 0.8, 0.7]]), plots.COLORS["retrained"], "-")})
    twin = widgets.twin(demo)
    assert twin.values == (0.5, 0.8, 0.9) and twin.labels == ("50 %", "80 %", "90 %")
    assert twin.titles == ("50 % pruned: retrained 90.0 %", "80 % pruned: retrained 80.0 %", "90 % pruned: retrained 70.0 %")
    assert twin._repr_html_() == twin.html and len(twin.html) < 1_000_000
    again = widgets.twin(demo)
    assert again.html != twin.html and _payload(again) == _payload(twin)   # unique element ids, same frames


def test_choice_demo_over_precomputed_results_and_its_twin():
    curves = {0: [1, 2, 3], 1: [3, 2, 1]}

    def draw(level):
        fig, ax = plt.subplots()
        ax.plot(curves[level])
        ax.set_title(f"level {level}")
        return fig

    import matplotlib.pyplot as plt

    demo = widgets.choice_demo([("100 % left", 0), ("80 % left", 1)], draw, description="weights left")
    assert demo.figure.axes[0].get_title() == "level 0"
    demo.children[0].value = 1
    assert demo.figure.axes[0].get_title() == "level 1"
    twin = widgets.twin(demo)
    assert twin.labels == ("100 % left", "80 % left") and twin.titles == ("level 0", "level 1")


def test_every_widget_of_the_chapters_has_a_kernel_free_twin():
    """A demo cell (``demo = widgets.*_demo(...)``, output removed from the book) is followed by its twin cell
    (``widgets.twin(demo)``, input removed), and the committed twin output holds the slider the book renders."""
    import re

    import nbformat

    from conftest import existing_chapters, notebook_path

    from test_browser import TWIN_CHAPTERS

    with_widgets = []
    for chapter in existing_chapters():
        cells = [c for c in nbformat.read(notebook_path(chapter), 4).cells if c.cell_type == "code"]
        for i, cell in enumerate(cells):
            if not re.search(r"\bwidgets\.\w+_demo\(", cell.source):
                continue
            with_widgets.append(chapter)
            twin = cells[i + 1] if i + 1 < len(cells) else None
            assert "remove-output" in cell.metadata.get("tags", []), f"{chapter}: the widget's cell should hide its output in the book"
            assert twin is not None and "widgets.twin(demo)" in twin.source, f"{chapter}: no twin cell after the widget's cell"
            assert "remove-input" in twin.metadata.get("tags", []), f"{chapter}: the twin cell should hide its code in the book"
            html = "".join(o.get("data", {}).get("text/html", "") for o in twin.get("outputs", []))
            assert 'class="lecturelib-twin"' in html, f"{chapter}: the committed twin cell has no twin output (execute the chapter)"
    assert sorted(set(with_widgets)) == sorted(TWIN_CHAPTERS), "the browser test must cover exactly the chapters with widgets"
