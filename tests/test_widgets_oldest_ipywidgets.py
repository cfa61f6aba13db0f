"""Every widget of the course builds and reacts to its slider with the oldest ipywidgets that
pyproject.toml allows — the version Colab ships (7.7.x), so the Colab bootstrap never upgrades
ipywidgets inside a running session.

The test installs exactly that version into a throw-away virtual environment (whose ``.pth`` file
lets it see .venv's torch & co. *after* its own site-packages) and builds each widget there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from pathlib import Path

import pytest

from conftest import REPO


def ipywidgets_lower_bound() -> str:
    """The ``ipywidgets>=X`` bound of pyproject.toml's dependencies."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = [m.group(1) for d in dependencies if (m := re.fullmatch(r"ipywidgets\s*>=\s*([\d.]+)", d.strip()))]
    assert len(bounds) == 1, f"pyproject.toml must require ipywidgets with one lower bound (>=X), got {dependencies}"
    return bounds[0]


def uv_executable() -> str | None:
    """The uv that set up .venv (beside this interpreter) or the one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


WIDGETS_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    import matplotlib
    matplotlib.use("Agg")
    import ipywidgets, numpy as np, torch
    assert ipywidgets.__file__.startswith({venv!r}), ipywidgets.__file__
    print("ipywidgets", ipywidgets.__version__)
    from lecturelib import plots, widgets
    demos = {{
        "weighted_sum_demo": (widgets.weighted_sum_demo(torch.randn(64), torch.randn(64)), 0.3),
        "pruning_histogram_demo": (widgets.pruning_histogram_demo(torch.randn(2000)), 0.7),
        "dropout_mask_demo": (widgets.dropout_mask_demo(), 0.2),
        "ratio_curve_demo": (widgets.ratio_curve_demo(
            [0.5, 0.9], {{"retrained": (np.array([[0.9, 0.8]]), plots.COLORS["retrained"], "-")}}, dense_acc=0.95), 0.5),
    }}
    for name, (box, value) in demos.items():
        slider = box.children[0]
        before = box.figure.axes[0].get_title()
        slider.value = value
        after = box.figure.axes[0].get_title()
        assert after != before, f"{{name}}: moving the slider to {{value}} did not redraw ({{before!r}})"
        print(name, "ok:", after)
""")


def test_every_widget_works_with_the_oldest_allowed_ipywidgets(tmp_path):
    version = ipywidgets_lower_bound()
    uv = uv_executable()
    if uv is None:
        pytest.fail("uv is needed to build the throw-away environment (make env installs it)")
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    install = subprocess.run([uv, "pip", "install", "-q", "--python", str(python), f"ipywidgets=={version}"],
                             capture_output=True, text=True, env=env)
    assert install.returncode == 0, f"could not install ipywidgets=={version}:\n{install.stderr[-2000:]}"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # appended after the venv's own site-packages, so its ipywidgets wins over .venv's
    Path(site, "_dot_venv.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    script = WIDGETS_SCRIPT.format(repo=str(REPO), venv=str(venv))
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, f"a widget failed with ipywidgets {version}:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    assert f"ipywidgets {version}" in run.stdout
    assert run.stdout.count(" ok:") == 4, run.stdout
