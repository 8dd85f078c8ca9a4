"""The node image's wheelhouse: labctl's dependencies and the labctl wheel, built on the host.

The node image installs labctl from these wheels with ``pip install --no-index`` so its
``docker build`` needs no network. The dependency wheels are cached under a key of the
dependency set and the node's Python, so a change to labctl's code only rebuilds the small
labctl wheel (and only the last layer of the node image).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from labctl.imagebuild import LabctlImageError, LineSink, tail

# The node image runs Debian bookworm's python3 (3.11, glibc 2.36), whatever Python the host
# has, so dependency wheels are downloaded for that target rather than for the host.
NODE_PYTHON = "3.11"
NODE_ABI = "cp311"
NODE_GLIBC = "2_36"

# What the labctl wheel is built from; the node image's content hash covers the same files.
WHEEL_INPUT_FILES = ("pyproject.toml", "README.md", "LICENSE")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def read_dependencies(root: Path) -> list[str]:
    """Return labctl's runtime requirements from ``pyproject.toml`` (no extras)."""
    with open(root / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def node_platform() -> str:
    """Return the manylinux platform tag of the node image (the host's CPU, bookworm's glibc)."""
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine(), platform.machine())
    return f"manylinux_{NODE_GLIBC}_{machine}"


def node_platform_args() -> list[str]:
    """Return pip ``--platform`` flags for every manylinux tag the node's glibc can run.

    pip does not widen an explicit ``--platform`` to older manylinux tags, and most wheels are
    tagged ``manylinux_2_17``/``manylinux2014``, so list them all, newest first.
    """
    machine = node_platform().split("_", 3)[3]
    newest = int(NODE_GLIBC.split("_")[1])
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(newest, 4, -1)]
    tags += [f"manylinux{legacy}_{machine}" for legacy in ("2014", "2010", "1")]
    return [arg for tag in tags for arg in ("--platform", tag)]


def dependency_key(deps: list[str]) -> str:
    """Return the cache key of a dependency wheelhouse: requirements + target interpreter/platform."""
    text = "\n".join(sorted(deps) + [NODE_ABI, node_platform()])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def wheel_input_paths(root: Path) -> list[Path]:
    """Return every file the labctl wheel is built from, sorted (for content hashing)."""
    paths = [root / name for name in WHEEL_INPUT_FILES if (root / name).is_file()]
    for path in sorted((root / "labctl").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            paths.append(path)
    return paths


def _pip(args: list[str], what: str, log: LineSink, env: dict[str, str] | None = None) -> None:
    """Run ``python -m pip ARGS``, streaming its output to ``log``; raise with its tail on failure."""
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    output: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line)
        if line.startswith(("Collecting", "Successfully", "Saved")):  # skip pip's chatter
            log(line.rstrip())
    if proc.wait() != 0:
        raise LabctlImageError(
            f"failed to {what} (pip exited with {proc.returncode}); check that PyPI is reachable:\n"
            + tail("".join(output))
        )


def ensure_dependency_wheels(root: Path, cache_dir: Path, log: LineSink) -> Path:
    """Return a directory of wheels for labctl's dependencies for the node's Python, downloading once.

    The directory holds ``requirements.txt`` (the requirement strings) next to the wheels, and
    is only renamed into place once complete, so an interrupted download is never reused.
    """
    deps = read_dependencies(root)
    final = cache_dir / f"deps-{dependency_key(deps)}"
    if (final / "requirements.txt").is_file():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="deps-", dir=cache_dir))
    try:
        log(f"downloading dependency wheels for Python {NODE_PYTHON} ({node_platform()})")
        _pip(["download", "--only-binary=:all:", "--python-version", NODE_PYTHON,
              "--implementation", "cp", "--abi", NODE_ABI, *node_platform_args(),
              "--dest", str(tmp), *deps], "download labctl's dependency wheels", log)
        (tmp / "requirements.txt").write_text("\n".join(deps) + "\n")
        tmp.chmod(0o755)  # mkdtemp made it private; the build context copies this mode
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _ensure_build_tools(cache_dir: Path, log: LineSink) -> Path:
    """Return a directory to put on PYTHONPATH holding setuptools and wheel, installed once.

    With them importable, ``pip wheel --no-build-isolation`` builds labctl in ~2 s instead of
    creating a throwaway build environment (~10 s) on every node rebuild.
    """
    final = cache_dir / "build-tools"
    if (final / ".complete").is_file():
        return final
    shutil.rmtree(final, ignore_errors=True)
    _pip(["install", "--quiet", "--target", str(final), "setuptools>=70.1", "wheel"],
         "install setuptools and wheel to build the labctl wheel", log)
    (final / ".complete").touch()
    return final


def _host_has_build_tools() -> bool:
    """Whether this Python can build labctl's wheel itself: setuptools >= 61 (PEP 621), plus the
    ``wheel`` package below setuptools 70.1 (which took bdist_wheel in)."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(part) for part in setuptools.__version__.split(".")[:2] if part.isdigit())
    if version >= (70, 1):
        return True
    return version >= (61,) and importlib.util.find_spec("wheel") is not None


def build_labctl_wheel(root: Path, cache_dir: Path, out_dir: Path, log: LineSink) -> Path:
    """Build the labctl wheel from a clean copy of the checkout into ``out_dir``; return its path.

    Building from a copy keeps ``build/`` and ``*.egg-info`` out of the checkout, where other
    work may be going on, and supplies a README placeholder if the checkout has none yet.
    """
    with tempfile.TemporaryDirectory(prefix="labctl-src-", dir=cache_dir) as tmp:
        src = Path(tmp)
        shutil.copytree(root / "labctl", src / "labctl", ignore=_IGNORED)
        for name in WHEEL_INPUT_FILES:
            if (root / name).is_file():
                shutil.copy2(root / name, src / name)
        if not (src / "README.md").exists():
            (src / "README.md").write_text("labctl\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        env = None
        if not _host_has_build_tools():
            env = {**os.environ, "PYTHONPATH": str(_ensure_build_tools(cache_dir, log))}
        _pip(["wheel", "--no-deps", "--no-index", "--no-build-isolation", "--wheel-dir",
              str(out_dir), str(src)], "build the labctl wheel", log, env=env)
    wheels = sorted(out_dir.glob("labctl-*.whl"))
    if not wheels:
        raise LabctlImageError(f"failed to build the labctl wheel: no wheel in {str(out_dir)!r}")
    return wheels[-1]
