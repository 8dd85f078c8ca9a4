"""Raw HTTPS to a test API server with the admin certificate, timed: for bodies kubectl would never send."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    body: bytes
    headers: http.client.HTTPMessage
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def message(self) -> str:
        return self.json().get("message", "")


class RawClient:
    """One keep-alive connection (reopened when the server closed it); not shared between threads."""

    def __init__(self, server) -> None:
        pki = server.data_dir / "pki"
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        url = urlsplit(server.url)
        self.host, self.port = url.hostname, url.port
        self.conn: http.client.HTTPSConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
                headers: dict[str, str] | None = None, timeout: float = 30.0) -> Reply:
        sent = {"Content-Type": content_type, **(headers or {})} if body is not None else dict(headers or {})
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
                self.conn.connect()
            start = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=sent)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
                continue
            return Reply(resp.status, data, resp.headers, time.perf_counter() - start)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
