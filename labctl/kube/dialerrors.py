"""A failed TCP dial, worded as Go's ``net`` package words it: what kube's components print.

Why: the kubelet's probe events, ``kubectl port-forward``'s errors and the API server's
proxies all report a refused or unreachable pod in Go's words (``dial tcp 10.244.1.5:8080:
connect: connection refused``); Python's (``Connect call failed ('10.244.1.5', 8080)``) are
neither Kubernetes' nor what a student finds when searching the message. A request over HTTP
that got no answer is worded by :func:`round_trip_error` (a failed dial, or ``EOF``).
"""

from __future__ import annotations

import os

import aiohttp


def dial_error(host: str, port: int | str, err: BaseException | None, network: str = "tcp") -> str:
    """``dial tcp HOST:PORT: connect: connection refused``; a timeout (or no error) is Go's ``i/o timeout``.

    Go's wording of a connect(2) errno is the C library's, in lower case.
    """
    code = getattr(err, "errno", None)
    if isinstance(err, TimeoutError) or err is None:
        reason = "i/o timeout"
    elif code:
        reason = f"connect: {os.strerror(code).lower()}"
    else:
        reason = str(err) or type(err).__name__
    return f"dial {network} {host}:{port}: {reason}"


def round_trip_error(host: str, port: int | str, err: BaseException) -> str:
    """A request that got no answer, as Go's HTTP transport words it: a failed dial (aiohttp's
    connector error carries the connect(2) error), or ``EOF`` when the server closed the
    connection without answering.

    Why one place: the kubelet's HTTP probes and hooks (behind ``Get "<url>": ``) and the API
    server's proxy (behind ``error trying to reach service: ``) print the same transport error.
    """
    if isinstance(err, aiohttp.ClientConnectorError):
        return dial_error(host, port, err.os_error)
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return "EOF"
    if isinstance(err, (OSError, TimeoutError)):
        return dial_error(host, port, err)
    return str(err)
