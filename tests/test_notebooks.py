"""Execute every notebook once (strict nbval) against a real, non-editable install of lecturelib.

This is the only place notebooks run. The test:

1. creates a fresh virtual environment in a temp dir whose ``.pth`` file makes .venv's
   site-packages visible (so torch & co. are not reinstalled) but not the repository;
2. ``pip install --no-deps --no-build-isolation <repo>`` into it, and checks that
   ``import lecturelib`` from another directory finds that installed copy;
3. registers an ipykernel kernelspec inside the temp venv and checks that the kernel runs
   the temp venv's interpreter and imports the installed lecturelib;
4. copies the notebooks into an empty temp dir and runs
   ``pytest --nbval <copies> --nbval-sanitize-with tests/nbval_sanitize.cfg`` there, streaming
   its output, with that kernel.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import warnings
from pathlib import Path

import pytest

from conftest import REPO, existing_chapters, load_tool, notebook_path

numeric_platform = load_tool("numeric_platform")

KERNEL_NAME = "lecturelib-nbval"
NBVAL_TIMEOUT_S = 1200  # all notebooks together; `make test` must stay well under 15 minutes
CELL_TIMEOUT_S = 600


def _clean_env(tmp_venv: Path | None = None) -> dict[str, str]:
    """The environment of the subprocesses: no PYTHONPATH (the repo must not leak in)."""
    env = dict(os.environ)
    # LECTURELIB_CACHE: cached experiment results would let a notebook pass without running
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "MPLBACKEND", "VIRTUAL_ENV", "JUPYTER_PATH",
                "LECTURELIB_CACHE"):
        env.pop(var, None)
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if tmp_venv is not None:
        env["VIRTUAL_ENV"] = str(tmp_venv)
        env["PATH"] = f"{tmp_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        # kernelspecs: only the temp venv's, never one from the user's or the system's dirs
        env["JUPYTER_PATH"] = str(tmp_venv / "share" / "jupyter")
        env["JUPYTER_DATA_DIR"] = str(tmp_venv / "share" / "jupyter")
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(map(str, cmd))}` failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
                    pytrace=False)
    return proc.stdout


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory) -> Path:
    """A temp venv seeing .venv's site-packages, with lecturelib pip-installed (not editable)."""
    root = tmp_path_factory.mktemp("nbval")
    venv = root / "venv"
    env = _clean_env()
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root, env=env)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=root, env=env).strip())
    dot_venv_site = sysconfig.get_paths()["purelib"]  # the interpreter running the tests is .venv's
    # addsitedir (not a bare path line) so that .pth files inside .venv's site-packages work too
    (site / "_dot_venv.pth").write_text(f"import site; site.addsitedir({dot_venv_site!r})\n")

    env = _clean_env(venv)
    # A copy of the repo without build leftovers: pip builds in a temp dir, but setuptools
    # writes lecturelib.egg-info next to pyproject.toml; keep the working tree clean.
    src = root / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".venv", "_build", ".git", "__pycache__", "*.egg-info", "build", ".lecturelib_cache", ".pytest_cache"))
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-q", str(src)], cwd=root, env=env)
    return venv


def test_lecturelib_is_imported_from_the_installed_copy(installed_venv, tmp_path):
    env = _clean_env(installed_venv)
    out = _run([str(installed_venv / "bin" / "python"), "-c",
                "import lecturelib, sys; print(lecturelib.__file__); print(sys.prefix)"],
               cwd=tmp_path, env=env).splitlines()
    module_file, prefix = Path(out[0]), Path(out[1])
    assert prefix == installed_venv
    assert installed_venv in module_file.parents and "site-packages" in module_file.parts, (
        f"lecturelib imported from {module_file}, not from the temp venv's site-packages"
    )
    assert REPO not in module_file.parents


@pytest.fixture(scope="module")
def kernel(installed_venv) -> str:
    """Register an ipykernel kernelspec that runs the temp venv's python; return its name."""
    env = _clean_env(installed_venv)
    python = installed_venv / "bin" / "python"
    _run([str(python), "-m", "ipykernel", "install", "--prefix", str(installed_venv),
          "--name", KERNEL_NAME, "--display-name", "lecturelib (nbval)"], cwd=installed_venv, env=env)
    spec = json.loads((installed_venv / "share/jupyter/kernels" / KERNEL_NAME / "kernel.json").read_text())
    assert Path(spec["argv"][0]) == python, f"kernelspec runs {spec['argv'][0]}"
    return KERNEL_NAME


def test_kernel_runs_the_temp_venv(installed_venv, kernel, tmp_path):
    probe = (
        "import nbformat, json\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("
        "'import sys, lecturelib; print(sys.executable); print(lecturelib.__file__)')])\n"
        f"NotebookClient(nb, kernel_name={kernel!r}, timeout=120).execute()\n"
        "print(json.dumps(nb.cells[0].outputs[0]['text'].splitlines()))\n"
    )
    out = _run([str(installed_venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=_clean_env(installed_venv))
    executable, module_file = json.loads(out.strip().splitlines()[-1])
    assert Path(executable) == installed_venv / "bin" / "python", f"kernel ran {executable}"
    assert installed_venv in Path(module_file).parents, f"kernel imported lecturelib from {module_file}"


def output_comparison(recorded: dict | None, here: dict) -> tuple[list[str], str]:
    """The nbval option that decides how outputs are compared, and why.

    Exact comparison (strict nbval) where this machine is the numeric platform the outputs were
    recorded on; elsewhere ``--nbval-lax``: every cell still runs and every assert in it still
    must hold, but printed numbers may differ in their last digits (see tools/numeric_platform.py).
    """
    if recorded == here:
        return [], "outputs compared exactly (this is the platform they were recorded on)"
    differences = ", ".join(f"{key}: recorded {(recorded or {}).get(key)!r}, here {here.get(key)!r}"
                            for key in sorted(set(here) | set(recorded or {}))
                            if (recorded or {}).get(key) != here.get(key))
    return ["--nbval-lax"], (f"outputs NOT compared exactly: notebooks/executed_on.json records another platform "
                             f"({differences}); every cell and assert still runs. Run `make execute` on this "
                             f"machine and commit, to compare exactly here.")


def test_outputs_are_compared_exactly_only_on_the_recorded_platform():
    here = numeric_platform.fingerprint()
    assert numeric_platform.recorded() is not None, "notebooks/executed_on.json is missing: run `make execute`"
    assert set(numeric_platform.recorded()) == set(here), "executed_on.json is out of date: run `make execute`"
    assert output_comparison(dict(here), here)[0] == []
    # "another platform" must really differ from this one, whatever CPU runs the test
    other_capability = next(c for c in ("AVX512", "AVX2", "DEFAULT") if c != here["torch_cpu_capability"])
    other = dict(here, torch_cpu_capability=other_capability)
    assert other != here
    options, reason = output_comparison(other, here)
    assert options == ["--nbval-lax"] and f"torch_cpu_capability: recorded {other_capability!r}, here" in reason
    assert output_comparison(None, here)[0] == ["--nbval-lax"]
    for key in here:   # any single field that differs is enough to compare loosely
        assert output_comparison(dict(here, **{key: here[key] + "-elsewhere"}), here)[0] == ["--nbval-lax"], key


def test_notebooks_reproduce_their_outputs(installed_venv, kernel, tmp_path, capsys):
    chapters = existing_chapters()
    assert chapters, "no notebook to execute"
    run_dir = tmp_path / "notebooks"
    run_dir.mkdir()
    copies = []
    for chapter in chapters:
        copies.append(shutil.copy2(notebook_path(chapter), run_dir / f"{chapter}.ipynb"))
    # an (empty) ini file of its own, outside the notebook folder, so that this pytest never
    # picks up the repository's configuration
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    comparison, why = output_comparison(numeric_platform.recorded(), numeric_platform.fingerprint())
    if comparison:
        warnings.warn(why, stacklevel=1)
    cmd = [str(installed_venv / "bin" / "python"), "-m", "pytest", "--nbval", *comparison, *map(str, copies),
           f"--nbval-sanitize-with={REPO / 'tests' / 'nbval_sanitize.cfg'}",
           f"--nbval-kernel-name={kernel}", f"--nbval-cell-timeout={CELL_TIMEOUT_S}",
           f"--rootdir={run_dir}", "-c", str(ini),
           "-p", "no:cacheprovider", "-q", "-rfE", "--color=no", "--durations=5"]
    tail: collections.deque[str] = collections.deque(maxlen=120)
    start = time.monotonic()
    with capsys.disabled():
        print(f"\n[nbval] executing {len(copies)} notebook(s) with kernel {kernel!r} in {run_dir}; {why}", flush=True)
        env = dict(_clean_env(installed_venv), PYTHONUNBUFFERED="1")  # stream, do not block-buffer
        proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)

        def kill_group():  # pytest and the kernels it started
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        watchdog = threading.Timer(NBVAL_TIMEOUT_S, kill_group)  # kills a silent hang too
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(line.rstrip("\n"))
                print(f"[nbval] {line}", end="", flush=True)
            proc.wait(timeout=60)
        finally:
            watchdog.cancel()
            proc.stdout.close()
            if proc.poll() is None:
                kill_group()
                proc.wait()
        print(f"[nbval] finished in {time.monotonic() - start:.0f} s with exit code {proc.returncode}", flush=True)
    if proc.returncode != 0:
        reason = (f"killed after {NBVAL_TIMEOUT_S} s" if time.monotonic() - start >= NBVAL_TIMEOUT_S
                  else f"exit code {proc.returncode}")
        pytest.fail(f"nbval failed ({reason}); last lines:\n" + "\n".join(tail), pytrace=False)
