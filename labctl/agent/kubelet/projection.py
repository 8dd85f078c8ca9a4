"""Writing a kubelet-made volume so that readers never see half of it (kube's atomic writer).

ConfigMap, Secret, downward API and projected volumes — the service-account token among
them — are directories the kubelet writes on the node (``/var/lib/kubelet/pods/<uid>/volumes``,
:mod:`.volumes`) and bind-mounts read-only into the containers. kube's atomic writer
(``pkg/volume/util/atomic_writer.go``) keeps the files in a hidden, timestamped generation
directory, points the symlink ``..data`` at it, and exposes each top-level entry as
``<name> -> ..data/<name>``. An update writes a complete new generation, then renames a fresh
symlink over ``..data`` (one ``rename(2)``): a reader opening ``token`` gets the old token or the
new one, never an empty or half-written file. Then the old generation and the entries that
are gone are removed.

``ls -la /var/run/secrets/kubernetes.io/serviceaccount`` in a pod shows the layout.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATA_LINK = "..data"
FILE_MODE = 0o644  # kube's defaultMode 420
DIR_MODE = 0o755


@dataclass(frozen=True)
class VolumeFile:
    """One file of a volume: its bytes and its mode (``defaultMode``/``mode``)."""

    content: bytes
    mode: int = FILE_MODE


def generation_name(now: float) -> str:
    """kube's ``..2026_12_07_09_10_00.123456789``: sorts by time, never reused."""
    whole = int(now)
    return time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime(whole)) + f".{int((now - whole) * 1e9):09d}"


def current_files(directory: Path) -> dict[str, VolumeFile] | None:
    """What ``..data`` points at now, as written; None for a volume never written."""
    data = directory / DATA_LINK
    if not data.is_symlink():
        return None
    generation = directory / os.readlink(data)
    files = {}
    for path in generation.rglob("*"):
        if path.is_file():
            files[str(path.relative_to(generation))] = VolumeFile(path.read_bytes(), path.stat().st_mode & 0o7777)
    return files


def write_volume(directory: Path, files: Mapping[str, VolumeFile], gid: int | None = None,
                 now: float | None = None) -> bool:
    """Make ``directory`` hold exactly ``files`` (paths may have sub-directories); False when it already did.

    ``gid`` (the pod's ``fsGroup``) owns every file and directory, and files become
    group-readable, as the kubelet's ``SetVolumeOwnership`` does for read-only volumes.
    """
    wanted = {name: VolumeFile(f.content, f.mode | (0o440 if gid is not None else 0)) for name, f in files.items()}
    directory.mkdir(parents=True, exist_ok=True)
    if current_files(directory) == wanted:
        return False
    data = directory / DATA_LINK
    old = os.readlink(data) if data.is_symlink() else None
    generation = generation_name(time.time() if now is None else now)
    if generation == old:
        generation += "_"
    root = directory / generation
    root.mkdir(mode=DIR_MODE)
    _own(root, gid)
    for name, file in wanted.items():
        path = root / name
        for parent in reversed(path.relative_to(root).parents[:-1]):
            if not (root / parent).exists():
                (root / parent).mkdir(mode=DIR_MODE)
                _own(root / parent, gid)
        path.write_bytes(file.content)
        path.chmod(file.mode)
        _own(path, gid)
    os.chmod(directory, DIR_MODE)
    _own(directory, gid)
    tops = {name.split("/", 1)[0] for name in wanted}
    for top in tops:
        link = directory / top
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{top}")
    swap = directory / "..data_tmp"
    if swap.is_symlink():
        swap.unlink()
    swap.symlink_to(generation)
    os.replace(swap, data)  # the one atomic step
    for entry in directory.iterdir():
        if entry.name.startswith(".."):
            if entry.name not in (DATA_LINK, generation) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
        elif entry.name not in tops and entry.is_symlink():
            entry.unlink()
    return True


def _own(path: Path, gid: int | None) -> None:
    if gid is not None:
        os.chown(path, -1, gid, follow_symlinks=False)
