"""Run a command in a container and collect what it left: exit code, stdout, stderr.

``docker exec`` without a terminal, over the lossless stream client: the output of a fast
command (``ip route``) is never dropped, stdin can be fed and closed (``cat`` ends), and
stdout and stderr stay apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from .streams import DockerEngine, FrameDemuxer

__all__ = ["ExecResult", "run"]

_STDERR = 2


@dataclass(frozen=True)
class ExecResult:
    """What a finished command left, in a node (``Node.exec``) or a pod (``labctl.client.streams``)."""

    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


async def run(engine: DockerEngine, container: str, argv: Sequence[str],
              stdin: bytes | None = None) -> ExecResult:
    """Run ``argv`` in a running container; feed ``stdin`` (then close it) when given.

    Raises :class:`~.streams.DockerAPIError` when the engine refuses (no such container:
    404, container not running: 409). A command that cannot start (``no such file``) is an
    ordinary result, exit code 126 or 127, as with ``docker exec``.
    """
    exec_id = await engine.exec_create(container, list(argv), stdin=stdin is not None, stdout=True,
                                       stderr=True, tty=False)
    reader, writer = await engine.exec_start(exec_id, tty=False)
    out, err = bytearray(), bytearray()

    async def feed() -> None:
        # concurrently with reading: a command may write a pipe's worth before reading it all
        if stdin is None:
            return
        try:
            writer.write(stdin)
            await writer.drain()
            writer.write_eof()  # the engine closes the process's stdin
        except ConnectionError:
            pass  # the command ended without reading all of it, as `true < file` may

    async def collect() -> None:
        demuxer = FrameDemuxer()
        while chunk := await reader.read(64 * 1024):
            for stream, data in demuxer.feed(chunk):
                (err if stream == _STDERR else out).extend(data)

    try:
        await asyncio.gather(feed(), collect())
    finally:
        writer.close()
    code = await engine.exec_exit_code(exec_id)
    return ExecResult(-1 if code is None else code, bytes(out), bytes(err))
