"""uv.lock, the one universal lock of the development toolchain (see pyproject.toml, [tool.uv]).

1. ``uv lock --check``: the lock is up to date with pyproject.toml (else `make env` would
   install stale pins: it runs ``uv sync --frozen``).
2. The lock resolves for every platform students use: for each, the packages it installs there
   (``uv export`` lines whose markers hold in that platform's environment) include torch, each
   has a wheel for that platform, and PyTorch's CUDA-only packages (``nvidia-*``, ``triton``,
   ``cuda-*``) appear on Linux only: PyPI's torch for Linux, x86-64 and aarch64 alike, is the
   CUDA build (it also runs on CPUs); macOS and Windows get CPU builds without them.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name, parse_wheel_filename

from conftest import REPO, venv_bin

# Marker environments of the platforms in pyproject.toml's [tool.uv] environments, for the
# toolchain's Python (3.11, as `make env` creates it). Keys not given come from this machine.
PYTHON = {"python_version": "3.11", "python_full_version": "3.11.7", "implementation_name": "cpython",
          "platform_python_implementation": "CPython"}
PLATFORMS = {
    "linux-x86_64": {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux", "os_name": "posix"},
    "linux-aarch64": {"sys_platform": "linux", "platform_machine": "aarch64", "platform_system": "Linux", "os_name": "posix"},
    "macos-arm64": {"sys_platform": "darwin", "platform_machine": "arm64", "platform_system": "Darwin", "os_name": "posix"},
    "windows-x86_64": {"sys_platform": "win32", "platform_machine": "AMD64", "platform_system": "Windows", "os_name": "nt"},
}
# Wheel platform tags each platform installs (macOS: built for macOS 14 or older, so Sonoma runs them).
WHEEL_PLATFORM = {
    "linux-x86_64": re.compile(r"^(manylinux\w*|linux)_x86_64$"),
    "linux-aarch64": re.compile(r"^(manylinux\w*|linux)_aarch64$"),
    "macos-arm64": re.compile(r"^macosx_(10|11|12|13|14)_\d+_(arm64|universal2)$"),
    "windows-x86_64": re.compile(r"^win_amd64$"),
}
PYTHON_TAGS = {"cp311", "py3", "py311"}
# PyPI's Linux torch wheels are built against CUDA and pull these in; no other platform may.
CUDA_ONLY = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")
CUDA_FREE = ["macos-arm64", "windows-x86_64"]


def uv_command() -> list[str]:
    """The uv executable: .venv's (pinned by uv.lock), else one on PATH, else ``python -m uv``."""
    try:
        return [venv_bin("uv")]
    except FileNotFoundError:
        if importlib.util.find_spec("uv") is not None:
            return [sys.executable, "-m", "uv"]
        pytest.fail("uv is not installed next to the test interpreter, on PATH, nor as a module; run `make env`",
                    pytrace=False)


def run_uv(*args: str) -> str:
    out = subprocess.run([*uv_command(), *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.fail(f"`uv {' '.join(args)}` failed ({out.returncode}):\n{out.stderr}", pytrace=False)
    return out.stdout


@pytest.fixture(scope="module")
def exported() -> list[tuple[str, str, Marker | None]]:
    """(name, version, marker) of every package of uv.lock, dev group and extras included."""
    text = run_uv("export", "--frozen", "--no-hashes", "--no-header", "--no-annotate", "--all-extras",
                  "--all-groups", "--no-emit-project", "--format", "requirements.txt")
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement, _, marker = line.partition(" ; ")
        name, _, version = requirement.partition("==")
        assert version, f"uv export printed an unpinned line: {line!r}"
        rows.append((str(canonicalize_name(name)), version, Marker(marker) if marker else None))
    return rows


@pytest.fixture(scope="module")
def locked_files() -> dict[tuple[str, str], dict]:
    """uv.lock's [[package]] tables by (name, version): their wheels and sdist."""
    lock = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    return {(str(canonicalize_name(p["name"])), p["version"]): p for p in lock["package"] if "version" in p}


def installed_on(platform: str, exported) -> dict[str, str]:
    """{name: version} of the packages uv installs on a platform."""
    env = {**PYTHON, **PLATFORMS[platform]}
    return {name: version for name, version, marker in exported if marker is None or marker.evaluate(env)}


def test_lock_is_up_to_date_with_pyproject():
    out = subprocess.run([*uv_command(), "lock", "--check"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (
        "uv.lock is out of date with pyproject.toml: run `uv lock` (with .venv/bin/uv) and commit uv.lock.\n"
        + out.stderr)


def test_pinned_torch_is_the_one_the_notebook_outputs_were_recorded_with(exported):
    versions = {version for name, version, _ in exported if name in ("torch", "torchvision")}
    assert versions == {"2.14.1", "0.29.1"}, (
        f"uv.lock pins torch/torchvision {sorted(versions)}; the committed notebook outputs were recorded "
        "with torch 2.14.1 and torchvision 0.29.1 (pyproject.toml: [tool.uv] constraint-dependencies)")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_lock_installs_the_toolchain_with_wheels_for(platform, exported, locked_files):
    packages = installed_on(platform, exported)
    missing = {"torch", "torchvision", "jupyter-book", "nbval", "pytest", "mnist1d", "uv"} - set(packages)
    assert not missing, f"uv.lock installs no {sorted(missing)} on {platform}"
    no_wheel = []
    for name, version in packages.items():
        entry = locked_files[(name, version)]
        wheels = [parse_wheel_filename(w["url"].rsplit("/", 1)[-1])[3] for w in entry.get("wheels", [])]
        fits = any(tag.platform == "any" or WHEEL_PLATFORM[platform].match(tag.platform)
                   for tags in wheels for tag in tags if tag.interpreter in PYTHON_TAGS or tag.abi == "abi3")
        if not fits:
            no_wheel.append(f"{name}=={version}")
    assert not no_wheel, (f"uv.lock has no wheel for Python 3.11 on {platform} of {no_wheel}: "
                          "it would build them from source there (or fail)")


@pytest.mark.parametrize("platform", CUDA_FREE)
def test_no_cuda_only_package_on(platform, exported):
    cuda = sorted(name for name in installed_on(platform, exported) if CUDA_ONLY.match(name))
    assert not cuda, f"uv.lock installs CUDA-only packages on {platform}, where they have no wheels: {cuda}"


def test_linux_x86_64_gets_the_cuda_build_of_torch(exported):
    cuda = [name for name in installed_on("linux-x86_64", exported) if CUDA_ONLY.match(name)]
    assert "triton" in cuda and any(name.startswith("nvidia-") for name in cuda), (
        f"uv.lock installs no CUDA packages on Linux x86-64 (found {cuda}): the markers that keep them "
        "off macOS and Windows no longer match the platform that needs them")
