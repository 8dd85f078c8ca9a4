"""Time limits on the API server's connections, so a client cannot hold one without using it.

kube-apiserver's HTTP server (Go's net/http) bounds the TLS handshake and the reading of
a request's headers (``ReadHeaderTimeout``, 32 s) and closes a keep-alive connection idle
for 90 s. aiohttp has only the idle timer, and it starts it once per connection, so a
client that trickles a request's headers keeps the connection for the whole idle
timeout (an hour by default). This module adds the missing limits:

- the TLS handshake must finish within ``handshake_timeout`` (asyncio's own timer);
- a request's headers must be complete within ``header_timeout`` of the connection
  opening, or of the request's first byte on an idle keep-alive connection;
- a connection that has not authenticated (no client certificate, no request with
  valid credentials yet) must send its next request within ``header_timeout`` of its
  last answer, and at most ``max_unauthenticated`` such connections wait at once: the
  oldest is closed for a new one, so a flood cannot take the file descriptors that
  authenticated clients need;
- an idle keep-alive connection is closed after ``idle_timeout`` (aiohttp's timer).

A request in progress is never timed out here: watches, ``kubectl logs -f`` and
``exec`` streams of authenticated users stay open as long as they run.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass

from aiohttp import web

from .users import ALL_AUTHENTICATED

log = logging.getLogger("labctl.apiserver")

#: a busy server logs the unauthenticated-connection cap at most this often
CAP_WARNING_INTERVAL = 60.0


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits, in seconds; shorter than kube-apiserver's 32 s as a lab's clients share its host or bridge."""

    handshake_timeout: float = 10.0
    header_timeout: float = 10.0
    idle_timeout: float = 90.0  # kube-apiserver's IdleTimeout, longer than clients' own keep-alive
    max_unauthenticated: int = 256


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's per-connection protocol with a deadline for request headers.

    It reads two attributes of aiohttp's ``RequestHandler`` (there since before 3.9, checked in 3.14):
    ``_waiter``, the future its loop parks on while it waits for a complete request, and
    ``_messages``, the parsed requests not yet handled.
    """

    __slots__ = ("_deadline", "_guard", "authenticated")

    def __init__(self, guard: ConnectionGuard, manager: web.Server, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._deadline: asyncio.TimerHandle | None = None
        self.authenticated = False

    @property
    def waiting_for_request(self) -> bool:
        """Idle between requests or still reading one's headers (not handling a request)."""
        return self._waiter is not None and not self._waiter.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # as with Go's ReadHeaderTimeout, the first request's headers are due from the start
        self.expect_request_within(self._guard.limits.header_timeout)
        self._guard.connection_made(self, transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_deadline()
        self._guard.connection_lost(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:
            self._cancel_deadline()  # a request's headers are complete
        elif self.waiting_for_request and self._deadline is None:
            self.expect_request_within(self._guard.limits.header_timeout)  # its first bytes

    def expect_request_within(self, seconds: float) -> None:
        """Close the connection unless a request's headers are complete within ``seconds``."""
        self._cancel_deadline()
        self._deadline = self._loop.call_later(seconds, self._deadline_passed, seconds)

    def mark_authenticated(self) -> None:
        self.authenticated = True
        self._cancel_deadline()

    def drop(self) -> None:
        """Close at once, without TLS's close_notify exchange a stalling client would not answer."""
        transport = self.transport
        self.force_close()
        if transport is not None:
            transport.abort()

    def _deadline_passed(self, seconds: float) -> None:
        self._deadline = None
        if self.transport is None:
            return  # already closing
        if self.waiting_for_request:
            log.debug("closing a connection from %s: no complete request within %.0f s",
                      self.transport.get_extra_info("peername"), seconds)
            self.drop()
        else:
            # an unauthenticated request's answer is still being written: start counting after it
            self.expect_request_within(seconds)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


class ConnectionGuard:
    """The server's connections that have not authenticated yet, and the middleware that learns which have."""

    def __init__(self, limits: ConnectionLimits = ConnectionLimits()) -> None:
        self.limits = limits
        self._unauthenticated: dict[GuardedRequestHandler, None] = {}  # oldest first
        self._warned_at = float("-inf")

    def install(self, app: web.Application) -> None:
        """Put the guard's middleware outside every other, so it sees each request's outcome.

        It reads ``request["user"]``, which the authentication middleware sets; anonymous
        requests (to the public paths) leave the connection unauthenticated.
        """
        app.middlewares.insert(0, self._middleware)

    def unauthenticated_count(self) -> int:
        return len(self._unauthenticated)

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        try:
            return await handler(request)
        finally:
            protocol = request.protocol
            if isinstance(protocol, GuardedRequestHandler) and not protocol.authenticated:
                user = request.get("user")
                if user is not None and ALL_AUTHENTICATED in user.groups:
                    protocol.mark_authenticated()
                    self._unauthenticated.pop(protocol, None)
                else:
                    protocol.expect_request_within(self.limits.header_timeout)

    def connection_made(self, protocol: GuardedRequestHandler, transport: asyncio.BaseTransport) -> None:
        # CERT_OPTIONAL: a certificate is only present once verified against the cluster CA
        if transport.get_extra_info("peercert"):
            protocol.mark_authenticated()
            return
        waiting = [p for p in self._unauthenticated if p.waiting_for_request]
        if len(waiting) >= self.limits.max_unauthenticated:
            self._warn_cap()
            waiting[0].drop()
        self._unauthenticated[protocol] = None

    def connection_lost(self, protocol: GuardedRequestHandler) -> None:
        self._unauthenticated.pop(protocol, None)

    def _warn_cap(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= CAP_WARNING_INTERVAL:
            self._warned_at = now
            log.warning("%d unauthenticated connections wait for a request: closing the oldest for each new one",
                        self.limits.max_unauthenticated)


class GuardedSite(web.BaseSite):
    """A TLS listener whose connections are :class:`GuardedRequestHandler` s (aiohttp's TCPSite with limits)."""

    __slots__ = ("_guard", "_host", "_port")

    def __init__(self, runner: web.BaseRunner, guard: ConnectionGuard, host: str, port: int,
                 ssl_context: ssl.SSLContext, backlog: int = 128) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._guard = guard
        self._host = host
        self._port = port

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        limits = self._guard.limits

        def protocol() -> GuardedRequestHandler:
            return GuardedRequestHandler(self._guard, server, loop=loop, keepalive_timeout=limits.idle_timeout,
                                         access_log=None)

        self._server = await loop.create_server(
            protocol, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            ssl_handshake_timeout=limits.handshake_timeout,
            # a graceful TLS close waits for the peer's close_notify at most this long
            ssl_shutdown_timeout=limits.handshake_timeout)
