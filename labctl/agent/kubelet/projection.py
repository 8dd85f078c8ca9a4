"""Writing a projected volume into a container so that readers never see half of it.

kube's atomic writer (``pkg/volume/util/atomic_writer.go``) keeps a volume's files in a
hidden generation directory, points the symlink ``..data`` at it, and exposes each file as
``<name> -> ..data/<name>``. An update writes a complete new generation, then swaps
``..data`` in one step: a reader opening ``token`` gets the old token or the new one, never
an empty or half-written file.

The kubelet here reaches a container's filesystem only through Docker's archive API
(``put_archive``), which can create and replace entries but never delete one. So instead of a
fresh timestamped directory per update, two generations ``..0`` and ``..1`` alternate: an
update rewrites the one ``..data`` does not point at, then replaces ``..data`` — the last
entry of the same archive, extracted after the files are complete. (Docker replaces a
symlink by removing and re-creating it: for a few microseconds ``token`` does not resolve,
and :class:`labctl.client.tokenfile.TokenFile` keeps its previous token when a read fails.)

``ls -la /var/run/secrets/kubernetes.io/serviceaccount`` in a pod shows the layout.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Mapping

DATA_LINK = "..data"
GENERATIONS = ("..0", "..1")
FILE_MODE = 0o644  # kube's defaultMode 420
DIR_MODE = 0o755


def next_generation(current: str | None) -> str:
    """The generation to write: the one ``..data`` does not point at (``..0`` for a new volume)."""
    if current is None:
        return GENERATIONS[0]
    name = current.rstrip("/").rsplit("/", 1)[-1]
    return GENERATIONS[1] if name == GENERATIONS[0] else GENERATIONS[0]


def volume_archive(directory: str, files: Mapping[str, bytes], current: str | None = None,
                   now: float | None = None) -> bytes:
    """A tar for ``put_archive(container, "/", …)`` that updates the volume at ``directory``.

    ``current`` is where ``..data`` points now (None for a container not yet started: then
    the per-file symlinks are written too). Entries are in extraction order: the new
    generation's directory and files, the per-file links (first write only), ``..data`` last.
    """
    when = time.time() if now is None else now  # the readers' "did it change" check looks at mtimes
    root = directory.strip("/")
    generation = next_generation(current)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry(f"{root}/{generation}", tarfile.DIRTYPE, DIR_MODE, when))
        for name, content in files.items():
            tar.addfile(_entry(f"{root}/{generation}/{name}", tarfile.REGTYPE, FILE_MODE, when, size=len(content)),
                        io.BytesIO(content))
        if current is None:
            for name in files:
                tar.addfile(_entry(f"{root}/{name}", tarfile.SYMTYPE, 0o777, when, link=f"{DATA_LINK}/{name}"))
        tar.addfile(_entry(f"{root}/{DATA_LINK}", tarfile.SYMTYPE, 0o777, when, link=generation))
    return buf.getvalue()


def _entry(name: str, kind: bytes, mode: int, mtime: float, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, mtime, size, link
    return info
