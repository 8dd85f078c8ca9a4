"""Requests from the host, as a student's browser or curl sends them: for the lab tests of
NodePorts and Ingresses (and a rollout behind them that must lose no request)."""

from __future__ import annotations

import http.client
import threading
import time

__all__ = ["HostClient", "http_get"]


def http_get(host: str, port: int, timeout: float = 5.0, path: str = "/", host_header: str | None = None) -> str:
    """One request on a new connection (a new conntrack entry, so a new backend draw); the body
    of a 200, else AssertionError. ``host_header`` is the ``Host:`` an Ingress rule matches."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host_header} if host_header else {})
        resp = conn.getresponse()
        body = resp.read().decode()
        if resp.status != 200:
            raise AssertionError(f"HTTP {resp.status} from {host}:{port}: {body}")
        return body.strip()
    finally:
        conn.close()


class HostClient(threading.Thread):
    """``rate`` requests per second, each on a new connection, until stopped: (start time, answer | error, ok).

    Open loop, as a crowd of browsers: a request starts on time even while earlier ones are still
    waiting for their answer, so a slow answer (a busy machine, an extra proxy hop) does not lower
    the rate the test asks for. ``results`` are in the order the answers came; :meth:`in_order`
    sorts them by start time.
    """

    def __init__(self, host: str, port: int, rate: float = 25.0, host_header: str | None = None) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.rate, self.host_header = host, port, rate, host_header
        self.results: list[tuple[float, str, bool]] = []
        self.stopping = threading.Event()
        self.started = time.monotonic()  # reset when the thread starts: results' times count from it
        self._lock = threading.Lock()

    def _one(self, at: float) -> None:
        try:
            result = (at, http_get(self.host, self.port, host_header=self.host_header), True)
        except Exception as err:
            result = (at, repr(err), False)
        with self._lock:
            self.results.append(result)

    def now(self) -> float:
        """Seconds since the first request, on the results' clock."""
        return time.monotonic() - self.started

    def run(self) -> None:
        self.started = start = time.monotonic()
        i, requests = 0, []
        while not self.stopping.is_set():
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            i += 1
            request = threading.Thread(target=self._one, args=(time.monotonic() - start,), daemon=True)
            request.start()
            requests.append(request)
        for request in requests:
            request.join(10)

    def in_order(self) -> list[tuple[float, str, bool]]:
        with self._lock:
            return sorted(self.results)
