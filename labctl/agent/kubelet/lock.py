"""One kubelet per node: an ``flock`` on a file in the node.

Two kubelets on one node would both create sandboxes for the same pods. The agent's
kubelet waits for the lock; ``python -m labctl.agent.kubelet`` (a standalone kubelet,
for debugging and tests) gives up at once if another one holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_PATH = Path("/run/labctl/kubelet.lock")


class NodeLockHeld(Exception):
    """Another kubelet runs on this node."""


def acquire(path: Path = LOCK_PATH, wait: bool = True) -> int:
    """Take the node's kubelet lock; return the fd that holds it (keep it open)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError as err:
        os.close(fd)
        raise NodeLockHeld(f"another kubelet holds {str(path)!r}") from err
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd
