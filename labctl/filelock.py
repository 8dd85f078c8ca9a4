"""Locks between labctl processes on one host: ``flock(2)`` on a file every user can open.

Two ``labctl up`` at once must not pick the same lab subnet or host port, and two kubeconfig
merges must not lose each other's contexts. An ``flock`` belongs to the open file, so the
kernel drops it when the process ends however it ends (``kill -9`` included): there is never
a stale lock to clean up, unlike the ``O_EXCL`` lock files kubectl uses.

The files live in ``/run/lock`` (world-writable and sticky on every Linux), so root and
ordinary users of the same Docker engine exclude each other; ``~/.cache/labctl`` is the
fall-back where ``/run/lock`` is missing or read-only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LabctlError

__all__ = ["lock_dir", "locked"]

SYSTEM_LOCK_DIR = Path("/run/lock")
POLL_SECONDS = 0.05


def lock_dir() -> Path:
    """Where labctl's lock files are: ``/run/lock`` if this user may create files there."""
    if SYSTEM_LOCK_DIR.is_dir() and os.access(SYSTEM_LOCK_DIR, os.W_OK | os.X_OK):
        return SYSTEM_LOCK_DIR
    fallback = Path.home() / ".cache" / "labctl"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


@contextmanager
def locked(name: str, *, timeout: float = 300.0, waiting: Callable[[], None] | None = None) -> Iterator[Path]:
    """Hold the host-wide lock ``name`` (the file ``labctl-<name>.lock``) for the ``with`` block.

    While another process holds it, ``waiting()`` is called every 50 ms (to report progress or
    to raise when the caller was cancelled); after ``timeout`` seconds a :class:`LabctlError`
    names the lock file.
    """
    path = lock_dir() / f"labctl-{name}.lock"
    fd = _open(path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            if waiting is not None:
                waiting()
            if time.monotonic() > deadline:
                raise LabctlError(f"another labctl process has held {path} for over {timeout:.0f}s",
                                  hint=f"`fuser -v {path}` shows which one")
            time.sleep(POLL_SECONDS)
        yield path
    finally:
        os.close(fd)  # closing the file releases the lock


def _open(path: Path) -> int:
    """Open the lock file read-only (enough for flock), creating it if needed.

    An existing file is opened without ``O_CREAT``: with ``fs.protected_regular`` the kernel
    refuses ``O_CREAT`` on another user's file in a sticky directory, even to root.
    """
    while True:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            continue  # another process created it between our two opens
        os.fchmod(fd, 0o644)  # readable by every user whatever the umask: they only need to open it
        return fd
