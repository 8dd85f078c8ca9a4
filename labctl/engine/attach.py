"""Connect this process's terminal to a command in a container: ``labctl exec`` and ``labctl shell``.

What ``docker exec -i [-t]`` does, over the lossless stream client:

- with ``tty``, the local terminal is in raw mode for the session (and restored after it,
  whatever happens), so every key — Ctrl-C, Ctrl-D, Ctrl-Z, arrows — travels as a byte to
  the remote terminal, whose line discipline turns it into a signal for the remote command,
  exactly as in an ssh session; the remote terminal follows the local window size, at the
  start and on every ``SIGWINCH``;
- without ``tty``, stdin is copied until its end, then the command's stdin is closed (so
  ``echo hi | labctl exec worker -- cat`` ends), and stdout and stderr stay apart;
- either way the result is the command's exit code.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import termios
import tty as terminal
from collections.abc import Sequence

from .streams import DockerAPIError, DockerEngine, FrameDemuxer

__all__ = ["attach"]

_STDERR = 2
_CHUNK = 64 * 1024
#: the engine may refuse a resize until the process runs; docker's CLI retries as well
_RESIZE_ATTEMPTS = 5


async def attach(engine: DockerEngine, container: str, argv: Sequence[str], *, tty: bool,
                 stdin: int = 0, stdout: int = 1, stderr: int = 2) -> int:
    """Run ``argv`` in ``container`` wired to these file descriptors; return its exit code.

    ``tty`` needs ``stdin`` to be a terminal. Raises :class:`~.streams.DockerAPIError` when the
    engine refuses the exec (no such container, container not running).
    """
    # with a TTY the terminal carries stderr too; attaching it as well makes the engine lose output
    exec_id = await engine.exec_create(container, list(argv), stdin=True, stdout=True, stderr=not tty, tty=tty)
    reader, writer = await engine.exec_start(exec_id, tty)
    loop = asyncio.get_running_loop()
    saved = termios.tcgetattr(stdin) if tty else None
    resizes: set[asyncio.Task[None]] = set()
    watching_size = False
    try:
        if tty:
            terminal.setraw(stdin, termios.TCSANOW)  # keep keys typed ahead
            await _resize(engine, exec_id, stdout)

            def on_winch() -> None:
                task = loop.create_task(_resize(engine, exec_id, stdout))
                resizes.add(task)
                task.add_done_callback(resizes.discard)

            try:
                loop.add_signal_handler(signal.SIGWINCH, on_winch)
                watching_size = True
            except (ValueError, RuntimeError):
                pass  # not the main thread: the size stays what it was at the start
        pump = loop.create_task(_copy_input(stdin, writer))
        try:
            await _copy_output(reader, tty, stdout, stderr)
        finally:
            pump.cancel()
            await asyncio.gather(pump, *resizes, return_exceptions=True)
    finally:
        if watching_size:
            loop.remove_signal_handler(signal.SIGWINCH)
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        writer.close()
    code = await engine.exec_exit_code(exec_id)
    return 1 if code is None else code


async def _resize(engine: DockerEngine, exec_id: str, fd: int) -> None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return
    for attempt in range(_RESIZE_ATTEMPTS):
        try:
            await engine.exec_resize(exec_id, size.columns, size.lines)
            return
        except DockerAPIError:
            await asyncio.sleep(0.02 * (attempt + 1))


async def _copy_output(reader: asyncio.StreamReader, tty: bool, stdout: int, stderr: int) -> None:
    """The engine's stream (raw with a TTY, multiplexed without) → our stdout and stderr."""
    demuxer = None if tty else FrameDemuxer()
    while chunk := await reader.read(_CHUNK):
        if demuxer is None:
            _write_all(stdout, chunk)
            continue
        for stream, data in demuxer.feed(chunk):
            _write_all(stderr if stream == _STDERR else stdout, data)


async def _copy_input(fd: int, writer: asyncio.StreamWriter) -> None:
    """Our stdin → the command, then half-close so the command sees the end of its input.

    The reader callback itself reads, once per readiness, and stands down until the chunk is
    sent: a read from a stale readiness would block the whole loop (stdin stays blocking, as
    the shell that shares it expects), and the output would wait for the next keystroke.
    """
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def on_readable() -> None:
        loop.remove_reader(fd)
        chunks.put_nowait(_read(fd))

    try:
        loop.add_reader(fd, on_readable)
        watched = True
    except (OSError, ValueError):
        # a regular file or /dev/null cannot be polled (EPERM); reading it never blocks
        watched = False
    try:
        while True:
            chunk = await chunks.get() if watched else _read(fd)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
            if watched:
                loop.add_reader(fd, on_readable)
        if writer.can_write_eof():
            writer.write_eof()
    except ConnectionError:
        pass  # the command ended first
    finally:
        if watched:
            loop.remove_reader(fd)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, _CHUNK)
    except OSError:
        return b""  # closed stdin (EBADF) or a terminal that went away (EIO)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # someone made our stdout non-blocking: wait until it drains
            select.select([], [fd], [])
