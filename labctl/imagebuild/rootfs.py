"""labctl/base: a Debian bookworm root filesystem with the lab's packages, built without a registry.

When a registry answers, ``debian:bookworm-slim`` is pulled and the packages are added with
``images/base/Dockerfile.pull``. Otherwise ``debootstrap`` builds the same package set from
the Debian mirror and ``docker import`` turns the directory into an image. Either way the
result is tagged with the same content hash, so the rest of the lab cannot tell the difference.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from labctl.imagebuild import LabctlImageError, LineSink, tail
from labctl.imagebuild.dockerbuild import docker_build

SUITE = "bookworm"
PULL_IMAGE = ("debian", "bookworm-slim")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Dropped from the debootstrap tree: the downloaded .debs, the apt lists, and docs/man pages,
# none of which a lab container uses (about a third of the tree).
_PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
          "usr/share/info")
# debootstrap and the chroot it calls live in sbin, which a user's PATH may lack.
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
BASE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["bash"]',
]


def read_packages(context: Path) -> list[str]:
    """Return the package names in ``packages.txt`` (comments and blank lines skipped)."""
    lines = (context / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def build_base_rootfs(client: Any, ref: str, context: Path, workdir: Path, *,
                      labels: dict[str, str], log: LineSink, source: str = "auto") -> str:
    """Build ``ref`` as the Debian base image; return how (``"pull"`` or ``"debootstrap"``).

    ``source`` is ``auto`` (pull when a registry answers, else debootstrap), ``pull`` or
    ``debootstrap``; the ``LABCTL_BASE_SOURCE`` environment variable sets it for the CLI.
    """
    if source in ("auto", "pull"):
        try:
            client.images.pull(*PULL_IMAGE)
        except Exception as err:  # docker.errors.APIError, requests errors: no registry
            if source == "pull":
                raise LabctlImageError(f"failed to pull {':'.join(PULL_IMAGE)!r}: {err}") from err
            log(f"no registry reachable ({str(err).splitlines()[0][:120]}); using debootstrap")
        else:
            _build_from_pull(client, ref, context, labels, log)
            return "pull"
    _build_from_debootstrap(client, ref, read_packages(context), workdir, labels, log)
    return "debootstrap"


def _build_from_pull(client: Any, ref: str, context: Path, labels: dict[str, str],
                     log: LineSink) -> None:
    docker_build(client, context, ref, dockerfile="Dockerfile.pull", labels=labels, log=log)


def _build_from_debootstrap(client: Any, ref: str, packages: list[str], workdir: Path,
                            labels: dict[str, str], log: LineSink) -> None:
    """debootstrap → prune → tar → ``docker import``; the tree and tarball are removed afterwards."""
    if shutil.which("debootstrap", path=_SBIN_PATH) is None:
        raise LabctlImageError(
            "failed to build the Debian base image: no registry is reachable and debootstrap is "
            "missing: run 'apt-get install debootstrap'")
    if os.geteuid() != 0:
        raise LabctlImageError("failed to build the Debian base image: debootstrap needs root: "
                               "run labctl with sudo")
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="rootfs-", dir=workdir))
    tree, tarball = tmp / "tree", tmp / "rootfs.tar"
    try:
        _debootstrap(packages, tree, tmp / "debootstrap.log", log)
        for rel in _PRUNE:
            _remove_tree(tree / rel, keep_dir=True)
        log("packing the root filesystem")
        _run(["tar", "--numeric-owner", "--xattrs", "-C", str(tree), "-cf", str(tarball), "."],
             "pack the Debian root filesystem")
        log(f"importing it as {ref!r}")
        repository, tag = ref.rsplit(":", 1)
        changes = BASE_CHANGES + [f"LABEL {key}={value}" for key, value in labels.items()]
        try:
            client.api.import_image_from_file(str(tarball), repository=repository, tag=tag,
                                              changes=changes)
        except Exception as err:
            raise LabctlImageError(f"failed to import the Debian root filesystem as {ref!r}: {err}") from err
    finally:
        _remove_tree(tmp)


def _debootstrap(packages: list[str], tree: Path, logfile: Path, log: LineSink) -> None:
    """Run debootstrap (minbase + ``packages``), streaming its ``I:`` lines to ``log``."""
    mirror = os.environ.get("LABCTL_DEBIAN_MIRROR", DEFAULT_MIRROR)
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE,
            str(tree), mirror]
    log(f"debootstrap {SUITE} from {mirror} (about a minute)")
    with open(logfile, "w") as out:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PATH": _SBIN_PATH})
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.startswith(("I: Retrieving", "I: Validating", "I: Installing",
                                "I: Configuring", "I: Base system")) and "Packages" not in line:
                log(line.strip())
        returncode = proc.wait()
    if returncode != 0:
        raise LabctlImageError(
            f"failed to run debootstrap (exit {returncode}); last lines of {str(logfile)!r}:\n"
            + tail(logfile.read_text()))


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise LabctlImageError(f"failed to {what}: {' '.join(argv)!r}:\n{tail(result.stderr)}")


def _remove_tree(path: Path, keep_dir: bool = False) -> None:
    """Remove ``path`` without crossing into mounts (a failed debootstrap may leave /proc mounted)."""
    if not path.exists():
        return
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f]
    for mountpoint in sorted((m for m in mounts if m.startswith(f"{path}/")), reverse=True):
        subprocess.run(["umount", "-l", mountpoint], check=False)
    targets = [str(p) for p in path.iterdir()] if keep_dir else [str(path)]
    if targets:
        subprocess.run(["rm", "-rf", "--one-file-system", *targets], check=False)
