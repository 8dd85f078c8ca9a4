"""A small asyncio client for the Kubernetes REST API, used by labctl's own components.

The node agent, the controllers and the grader talk to the API server exactly like
kubectl does (HTTPS, the cluster CA, a client certificate or a bearer token, JSON), so
they work against labctl's server and, in principle, a real one. The official Python
client is synchronous and heavy; this one is the few verbs those components need.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from ..kube.resources import resource_for
from ..kubeconfig import current_entries
from .tokenfile import TokenFile


class APIStatusError(Exception):
    """A non-2xx answer, carrying the server's ``Status`` object."""

    def __init__(self, code: int, status: dict) -> None:
        self.code = code
        self.status = status
        self.reason = status.get("reason", "")
        super().__init__(f"{code} {self.reason}: {status.get('message', '')}")


def resource_path(plural: str, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """``/api/v1/namespaces/default/pods/web/status`` from its parts (the group from the table of served kinds)."""
    rt = resource_for(plural)
    base = f"/apis/{rt.api_version}" if rt.group else f"/api/{rt.api_version}"
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


@dataclass
class Credentials:
    server: str
    ca_pem: bytes
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None
    #: a file the token is re-read from when it changes (a pod's projected token, which the
    #: kubelet rotates); ``token`` is then its first content
    token_file: str | None = None

    @classmethod
    def from_kubeconfig(cls, source: Path | str | dict) -> Credentials:
        """The current context's server and user, from a kubeconfig file or its parsed form."""
        config = source if isinstance(source, dict) else yaml.safe_load(Path(source).read_text())
        cluster, user = current_entries(config)

        def data(section: dict, key: str) -> bytes | None:
            if section.get(f"{key}-data"):
                return base64.b64decode(section[f"{key}-data"])
            if section.get(key):
                return Path(section[key]).read_bytes()
            return None

        return cls(cluster["server"], data(cluster, "certificate-authority") or b"",
                   data(user, "client-certificate"), data(user, "client-key"), user.get("token"))

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        if self.cert_pem and self.key_pem:
            # ssl only loads key material from files; a private temp dir keeps it off shared paths
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp) / "c.crt", Path(tmp) / "c.key"
                cert.write_bytes(self.cert_pem)
                key.write_bytes(self.key_pem)
                ctx.load_cert_chain(cert, key)
        return ctx


class APIClient:
    """Async JSON client; one aiohttp session per client, closed with :meth:`close`."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._token_file = (TokenFile(credentials.token_file, credentials.token or "")
                            if credentials.token_file else None)
        static = credentials.token if not self._token_file else None
        headers = {"Authorization": f"Bearer {static}"} if static else {}
        self._session = aiohttp.ClientSession(
            base_url=credentials.server, headers=headers,
            connector=aiohttp.TCPConnector(ssl=credentials.ssl_context(), limit=32),
            json_serialize=lambda o: orjson.dumps(o).decode())

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> APIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _auth(self) -> dict[str, str]:
        """The Authorization header of a rotating token (the session carries a static one)."""
        token = self._token_file.token() if self._token_file else ""
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _refused(self, status: int) -> None:
        if status == 401 and self._token_file:
            self._token_file.invalidate()  # client-go resets its token source on a 401 too

    async def request(self, method: str, path: str, *, body: Any = None, params: dict | None = None,
                      content_type: str = "application/json", timeout: float = 30) -> dict:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type, "Accept": "application/json", **self._auth()}
        async with self._session.request(method, path, data=data, params=params, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            raw = await resp.read()
            payload = orjson.loads(raw) if raw else {}
            if resp.status >= 300:
                self._refused(resp.status)
                raise APIStatusError(resp.status, payload if isinstance(payload, dict) else {})
            return payload

    async def get(self, path: str, **params: str) -> dict:
        return await self.request("GET", path, params=params or None)

    async def create(self, path: str, obj: dict) -> dict:
        return await self.request("POST", path, body=obj)

    async def replace(self, path: str, obj: dict) -> dict:
        return await self.request("PUT", path, body=obj)

    async def patch(self, path: str, patch: Any, patch_type: str = "merge") -> dict:
        ctype = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[patch_type]
        return await self.request("PATCH", path, body=patch, content_type=ctype)

    async def delete(self, path: str, **options: Any) -> dict:
        return await self.request("DELETE", path, body=options or None)

    async def healthy(self) -> bool:
        try:
            async with self._session.get("/healthz", headers=self._auth(),
                                         timeout=aiohttp.ClientTimeout(total=2)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def watch(self, path: str, resource_version: str, timeout_seconds: int = 300,
                    on_open: Callable[[], None] | None = None, **params: str) -> AsyncIterator[dict]:
        """Watch events (``{"type", "object"}``) after ``resource_version``.

        Raises :class:`APIStatusError` with code 410 when the version has expired, so the
        caller relists, as client-go's reflector does. ``on_open`` is called once the server
        accepted the watch (a quiet watch is a healthy one).
        """
        query = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(timeout_seconds), **params}
        async with self._session.get(path, params=query, headers=self._auth(),
                                     timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)) as resp:
            if resp.status >= 300:
                self._refused(resp.status)
                raise APIStatusError(resp.status, orjson.loads(await resp.read() or b"{}"))
            if on_open is not None:
                on_open()
            async for line in resp.content:
                if not line.strip():
                    continue
                event = orjson.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise APIStatusError(int(status.get("code", 500)), status)
                yield event
