"""Helpers behind :mod:`labctl.images`: the base root filesystem, the node wheelhouse, docker build.

They live apart from the image table so each stays small: ``rootfs`` knows Debian
(registry pull or debootstrap + ``docker import``), ``wheelhouse`` knows pip,
``dockerbuild`` streams a build's output. None of them imports :mod:`labctl.images`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import LabctlError


class LabctlImageError(LabctlError):
    """A lab image could not be built or inspected; the message says what to do next."""


LineSink = Callable[[str], None]
"""Receives one line of build output (debootstrap, pip, docker build) for progress display."""


def tail(text: str, lines: int = 15) -> str:
    """Return the last ``lines`` non-empty lines of ``text``, for error messages."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
