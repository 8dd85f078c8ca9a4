"""A command on a pseudo-terminal, as a student's shell runs ``kubectl exec -it`` or ``kubectl attach -it``."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def read_until(fd: int, token: bytes, timeout: float = 15) -> bytes:
    """What the terminal shows until ``token`` appears (or the time is up, or the command is gone)."""
    data, deadline = b"", time.monotonic() + timeout
    while token not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # a pty reports EIO once the child side is gone
                break
            if not chunk:
                break
            data += chunk
    return data


@contextmanager
def on_terminal(argv: Sequence[str], rows: int = 33, cols: int = 101) -> Iterator[tuple[subprocess.Popen, int]]:
    """Run ``argv`` with a pty of ``rows`` x ``cols`` as its stdin, stdout and stderr; yields (process, master fd)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        yield proc, master
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)
