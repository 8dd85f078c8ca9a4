"""The ``channel.k8s.io`` WebSocket sub-protocol that ``kubectl exec`` speaks (remote command v4/v5).

One WebSocket carries several byte streams. Every binary message starts with one byte,
the channel, followed by that channel's data:

====  ========  =========  ============================================================
byte  channel   direction  payload
====  ========  =========  ============================================================
0     stdin     client →   bytes for the process's stdin
1     stdout    ← server   process output
2     stderr    ← server   process error output (absent with a TTY: it is merged)
3     error     ← server   one ``meta/v1 Status`` JSON at the end: Success, or Failure
                           with reason ``NonZeroExitCode`` and a cause ``ExitCode``
4     resize    client →   ``{"Width": 80, "Height": 24}`` whenever the terminal changes
255   close     client →   (v5 only) ``[255, 0]``: the client closed stdin (half-close)
====  ========  =========  ============================================================

kubectl 1.37 offers only ``v5.channel.k8s.io``; v4 is accepted as well (same frames, no
close signal). The server chooses the first protocol in the client's order that it serves,
as kube-apiserver's ``wsstream`` does, and echoes it in ``Sec-WebSocket-Protocol``.
"""

from __future__ import annotations

import json
from typing import Any

from ..client.streams import V4_PROTOCOL, V5_PROTOCOL  # the channel numbers live there too
from . import errors

SERVED_PROTOCOLS = (V5_PROTOCOL, V4_PROTOCOL)


def requested_protocols(header: str) -> list[str]:
    """The client's ``Sec-WebSocket-Protocol`` list, in its order of preference."""
    return [p.strip() for p in header.split(",") if p.strip()]


def negotiate(requested: list[str]) -> str | None:
    """The first protocol the client asked for that this server serves, or ``None``."""
    return next((p for p in requested if p in SERVED_PROTOCOLS), None)


def no_common_protocol(requested: list[str]) -> errors.APIError:
    return errors.bad_request(f"unable to upgrade: unable to negotiate protocol: client supports "
                              f"{_go_list(requested)}, server supports {_go_list(list(SERVED_PROTOCOLS))}")


def frame(channel: int, data: bytes = b"") -> bytes:
    """One binary message for ``channel``."""
    return bytes((channel,)) + data


def split_frame(message: bytes) -> tuple[int, bytes]:
    """``(channel, payload)`` of a client message; an empty message is channel -1."""
    if not message:
        return -1, b""
    return message[0], message[1:]


def success_status() -> dict[str, Any]:
    """What the error channel carries when the command exited 0 (exactly kube's bytes)."""
    return {"metadata": {}, "status": "Success"}


def exit_code_status(code: int) -> dict[str, Any]:
    """Failure with the exit code where kubectl looks for it, so ``kubectl exec`` exits with it."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: command terminated with exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error_status(message: str) -> dict[str, Any]:
    """A failure that is not the command's own (no container, the engine refused the exec)."""
    return errors.APIError(500, "InternalError", f"Internal error occurred: {message}").status()


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """The last ``(width, height)`` in a resize message (several JSON objects may be concatenated)."""
    decoder = json.JSONDecoder()
    text = payload.decode(errors="replace").strip()
    size = None
    pos = 0
    while pos < len(text):
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        if isinstance(obj, dict) and isinstance(obj.get("Width"), int) and isinstance(obj.get("Height"), int):
            size = (obj["Width"], obj["Height"])
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return size


def _go_list(items: list[str]) -> str:
    """Go's ``%v`` of a string slice: ``[a b]``."""
    return "[" + " ".join(items) + "]"
