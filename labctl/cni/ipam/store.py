"""Where reservations live: the ``Store`` seam and the on-node disk store.

Mirrors host-local's ``backend/disk``: one file per reserved IP under
``<dataDir>/<network>/`` holding ``containerID\\nifname``, a
``last_reserved_ip.<rangeID>`` file for round robin, and a ``lock`` file held
with ``flock`` for the whole allocation. Files survive a node agent restart,
so a restarted agent never hands out an IP twice; ``O_EXCL`` makes the
reservation itself atomic even if two processes somehow skipped the lock.
A student can ``ls /var/lib/cni/networks/labctl`` on a node and see them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from labctl.cni import types
from labctl.cni.types import CNIError

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
LAST_RESERVED_PREFIX = "last_reserved_ip."
LOCK_FILE = "lock"


TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Protocol

    class Store(Protocol):
        """The seven operations the allocator needs (host-local ``backend.Store``)."""

        def locked(self) -> contextlib.AbstractContextManager[None]: ...
        def reserve(self, container_id: str, ifname: str, ip: str, range_id: str) -> bool: ...
        def last_reserved_ip(self, range_id: str) -> str | None: ...
        def release_by_id(self, container_id: str, ifname: str) -> list[str]: ...
        def get_by_id(self, container_id: str, ifname: str) -> list[str]: ...
        def release(self, ip: str) -> None: ...
        def reserved_ips(self) -> set[str]: ...


class DiskStore:
    """File-per-IP store for one network on this node."""

    def __init__(self, network: str, data_dir: str = DEFAULT_DATA_DIR) -> None:
        if not network or "/" in network or network in (".", ".."):
            raise CNIError(types.ERR_INVALID_NETCONF, f"invalid network name {network!r}")
        self.dir = os.path.join(data_dir, network)  # os.path, not pathlib: ~20 ms less per exec
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as err:
            raise CNIError(types.ERR_IO, f"failed to create IPAM data dir {self.dir!r}", str(err)) from err

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the network's lock: one allocation or release at a time per node."""
        fd = os.open(os.path.join(self.dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def _ip_file(self, ip: str) -> str:
        # IPv6 addresses contain ':' which is fine on Linux; keep names as printed.
        return os.path.join(self.dir, ip)

    def _last_file(self, range_id: str) -> str:
        return os.path.join(self.dir, f"{LAST_RESERVED_PREFIX}{range_id}")

    def reserve(self, container_id: str, ifname: str, ip: str, range_id: str) -> bool:
        """Create the IP's file exclusively; False if someone holds it already."""
        try:
            fd = os.open(self._ip_file(ip), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(f"{container_id.strip()}\n{ifname}")
        with open(self._last_file(range_id), "w") as f:
            f.write(ip)
        return True

    def last_reserved_ip(self, range_id: str) -> str | None:
        try:
            with open(self._last_file(range_id)) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def _reservations(self) -> list[str]:
        """The reservation files' names, i.e. the reserved IPs."""
        return [n for n in os.listdir(self.dir) if n != LOCK_FILE and not n.startswith(LAST_RESERVED_PREFIX)]

    def _owners(self) -> Iterator[tuple[str, str, str]]:
        """Yield (ip, container_id, ifname) for every reservation file."""
        for name in self._reservations():
            try:
                with open(os.path.join(self.dir, name)) as f:
                    lines = f.read().replace("\r\n", "\n").split("\n")
            except (FileNotFoundError, IsADirectoryError):
                continue
            yield name, lines[0].strip(), (lines[1].strip() if len(lines) > 1 else "")

    def get_by_id(self, container_id: str, ifname: str) -> list[str]:
        return [ip for ip, cid, ifn in self._owners() if cid == container_id and ifn == ifname]

    def release_by_id(self, container_id: str, ifname: str) -> list[str]:
        """Remove the reservations of (container, ifname); missing ones are fine (DEL twice)."""
        released = self.get_by_id(container_id, ifname)
        for ip in released:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._ip_file(ip))
        return released

    def release(self, ip: str) -> None:
        """Remove one reservation (rollback of a half-done ADD)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._ip_file(ip))

    def reserved_ips(self) -> set[str]:
        """The names alone: an ADD reads every reservation's owner once (get_by_id), not twice."""
        return set(self._reservations())

