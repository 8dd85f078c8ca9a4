"""Startup, readiness and liveness probes, run from the node as the kubelet runs them.

httpGet and tcpSocket connect from the node's network namespace to the pod IP (so a
probe goes over ``cni0`` exactly like the kubelet's); exec runs the command inside
the container through Docker. One asyncio task per (container instance, probe kind)
counts consecutive successes/failures against ``successThreshold`` /
``failureThreshold`` and reports only *changes* to the pod worker. A startup probe
ends with its first verdict: once it passed it is not run again (the pod worker then
starts liveness and readiness), and once it failed the container is killed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from ...kube.dialerrors import dial_error, round_trip_error

log = logging.getLogger("labctl.kubelet")

HTTP_OK = range(200, 400)


@dataclass
class ProbeResult:
    ok: bool
    message: str = ""


def probe_settings(probe: dict) -> tuple[float, float, float, int, int]:
    """(initialDelay, period, timeout, successThreshold, failureThreshold) with Kubernetes defaults."""
    return (float(probe.get("initialDelaySeconds", 0)), float(probe.get("periodSeconds", 10) or 10),
            float(probe.get("timeoutSeconds", 1) or 1), int(probe.get("successThreshold", 1) or 1),
            int(probe.get("failureThreshold", 3) or 3))


def resolve_port(port: int | str, container: dict) -> int:
    """A numeric port, or a named one looked up in the container's ``ports``."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for item in container.get("ports") or []:
        if item.get("name") == port:
            return int(item["containerPort"])
    raise ValueError(f"port {port!r} is not a named port of container {container.get('name')!r}")


def http_error(url: str, host: str, port: int, err: BaseException) -> str:
    """A failed GET as Go's HTTP client words it: ``Get "<url>": dial tcp …`` or ``Get "<url>": EOF``."""
    return f'Get "{url}": {round_trip_error(host, port, err)}'


async def http_probe(session: aiohttp.ClientSession, pod_ip: str, spec: dict, container: dict,
                     timeout: float) -> ProbeResult:
    host = spec.get("host") or pod_ip
    scheme = (spec.get("scheme") or "HTTP").lower()
    path = spec.get("path") or "/"
    port = resolve_port(spec.get("port", 80), container)
    url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
    headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
    try:
        async with session.get(url, headers=headers, ssl=False, allow_redirects=True,
                               timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status in HTTP_OK:
                return ProbeResult(True)
            return ProbeResult(False, f"HTTP probe failed with statuscode: {resp.status}")
    except TimeoutError:
        return ProbeResult(False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)')
    except (aiohttp.ClientError, OSError) as err:
        return ProbeResult(False, http_error(url, host, port, err))


async def tcp_probe(pod_ip: str, spec: dict, container: dict, timeout: float) -> ProbeResult:
    host = spec.get("host") or pod_ip
    port = resolve_port(spec.get("port", 0), container)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.close()
        return ProbeResult(True)
    except (TimeoutError, OSError) as err:
        return ProbeResult(False, dial_error(host, port, err))


ExecFn = Callable[[list[str]], Awaitable[tuple[int, str]]]


async def run_probe(probe: dict, pod_ip: str, container: dict, session: aiohttp.ClientSession,
                    exec_fn: ExecFn) -> ProbeResult:
    """One attempt of ``probe`` (httpGet, tcpSocket or exec)."""
    timeout = probe_settings(probe)[2]
    try:
        if "httpGet" in probe:
            return await http_probe(session, pod_ip, probe["httpGet"], container, timeout)
        if "tcpSocket" in probe:
            return await tcp_probe(pod_ip, probe["tcpSocket"], container, timeout)
        if "exec" in probe:
            code, output = await asyncio.wait_for(exec_fn(list(probe["exec"].get("command") or [])), timeout + 5)
            if code == 0:
                return ProbeResult(True)
            return ProbeResult(False, output.strip()[:200] or f"command exited with {code}")
    except (TimeoutError, ValueError) as err:
        return ProbeResult(False, f"probe failed: {err or 'timeout'}")
    return ProbeResult(False, "probe has no handler (httpGet, tcpSocket or exec)")


OnChange = Callable[[bool, str], None]


def next_tick(anchor: float, period: float, now: float, *, inclusive: bool = False) -> float:
    """The prober worker's next tick after ``now`` (at or after it when ``inclusive``).

    Upstream's worker (``prober/worker.go``) is made when the kubelet first syncs the pod
    (``AddPod``), before its containers exist, and probes on a ticker of ``periodSeconds``
    from then on, across container restarts; ``UpdatePodStatus`` also runs it at once when a
    container is running without a result yet. So a readiness probe that fails because the
    server is still starting passes on the pod's tick grid, not a whole period after the
    container started: the grid started while the sandbox and container were being made.
    """
    ticks = (now - anchor) / period
    return anchor + period * (math.ceil(ticks) if inclusive else math.floor(ticks) + 1)


async def probe_loop(kind: str, probe: dict, pod_ip: str, container: dict, session: aiohttp.ClientSession,
                     exec_fn: ExecFn, on_change: OnChange, on_failure_attempt: OnChange, anchor: float) -> None:
    """Probe forever (until cancelled); call ``on_change(ok, message)`` when the verdict flips.

    Readiness and startup start as failed (not ready, not started until a probe
    succeeds); liveness starts as passed. ``on_failure_attempt`` sees each failed
    attempt (for the ``Unhealthy`` event). A startup probe returns after its verdict.
    The first probe runs at once (after ``initialDelaySeconds``: at the first tick past it),
    the next ones on the tick grid from ``anchor`` (the ``time.monotonic()`` of the pod's
    first sync: :func:`next_tick`).
    """
    initial_delay, period, _, success_threshold, failure_threshold = probe_settings(probe)
    verdict = kind == "liveness"
    successes = failures = 0

    async def next_probe(inclusive: bool = False) -> None:
        now = time.monotonic()
        await asyncio.sleep(max(0.0, next_tick(anchor, period, now, inclusive=inclusive) - now))

    if initial_delay:
        await asyncio.sleep(initial_delay)
        await next_probe(inclusive=True)
    while True:
        result = await run_probe(probe, pod_ip, container, session, exec_fn)
        if result.ok:
            successes, failures = successes + 1, 0
            if not verdict and successes >= success_threshold:
                verdict = True
                on_change(True, "")
                if kind == "startup":
                    return
        else:
            successes, failures = 0, failures + 1
            on_failure_attempt(False, result.message)
            if (verdict or kind == "startup") and failures >= failure_threshold:
                verdict = False
                on_change(False, result.message)
                if kind == "startup":
                    return
        await next_probe()
