"""Container lifecycle hooks (``lifecycle.postStart`` / ``lifecycle.preStop``), as the kubelet runs them.

The kubelet's ``handlerRunner``: ``exec`` runs the command inside the container
(through Docker, like an exec probe), ``httpGet`` sends one request from the node to
the pod IP (only a transport error fails it: the kubelet does not look at the status
code of a hook's answer), ``sleep`` waits. ``tcpSocket`` is accepted by the API for
backward compatibility and fails when run, as upstream's runner does. The failure
messages are the kubelet's, so ``kubectl describe`` reads the same.

The *when* lives with the callers: the pod worker runs postStart right after the
start and kills the container if it fails; :func:`stop_container` runs preStop before
the stop signal, inside the grace period.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp

from .context import KubeletContext
from .probes import http_error, resolve_port
from .runtime import ContainerRecord, PodRef

log = logging.getLogger("labctl.kubelet")

#: The kubelet never gives a container less than this after its preStop hook ran
#: (``minimumGracePeriodInSeconds``).
MIN_GRACE_AFTER_PRE_STOP_S = 2


def go_list(items: list) -> str:
    """How Go's ``%v`` prints a ``[]string``: ``[sh -c echo hi]``."""
    return "[" + " ".join(str(i) for i in items) + "]"


def go_quote(text: str) -> str:
    """Go's ``%q``: a double-quoted string with escapes (JSON's rules are close enough)."""
    return json.dumps(text, ensure_ascii=False)


async def run_handler(ctx: KubeletContext, handler: dict, pod: dict, container: dict, record: ContainerRecord,
                      pod_ip: str) -> str:
    """Run one lifecycle handler; '' when it succeeded, else the kubelet's failure message."""
    name, pod_desc = container["name"], PodRef.of(pod).describe()
    if "exec" in handler:
        command = list((handler["exec"] or {}).get("command") or [])
        try:
            code, output = await ctx.blocking(ctx.runtime.exec, record.id, command)
            error = "" if code == 0 else f"command '{' '.join(command)}' exited with {code}: {output}"
        except Exception as err:  # the container is gone, Docker refused the exec
            error, output = str(err), ""
        if not error:
            return ""
        return (f"Exec lifecycle hook ({go_list(command)}) for Container {go_quote(name)} in Pod "
                f"{go_quote(pod_desc)} failed - error: {error}, message: {go_quote(output)}")
    if "httpGet" in handler:
        spec = handler["httpGet"] or {}
        path = spec.get("path") or ""
        error = await _http_get(ctx.http, spec, container, pod_ip)
        if not error:
            return ""
        return (f"HTTP lifecycle hook ({path}) for Container {go_quote(name)} in Pod {go_quote(pod_desc)} "
                f"failed - error: {error}")
    if "sleep" in handler:
        await asyncio.sleep(int((handler["sleep"] or {}).get("seconds", 0)))
        return ""
    return f"Cannot run handler: invalid handler: {handler}"


async def _http_get(session: aiohttp.ClientSession, spec: dict, container: dict, pod_ip: str) -> str:
    """One GET as the kubelet's hook runner sends it; '' unless the request itself failed."""
    try:
        port = resolve_port(spec.get("port", 80), container)
    except ValueError as err:
        return str(err)
    host = spec.get("host") or pod_ip
    if not host:
        return "failed to find networking container"
    path = spec.get("path") or "/"
    url = f"{(spec.get('scheme') or 'HTTP').lower()}://{host}:{port}{path if path.startswith('/') else '/' + path}"
    headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
    try:
        async with session.get(url, headers=headers, ssl=False,
                               timeout=aiohttp.ClientTimeout(total=10)) as resp:
            await resp.read()
        return ""
    except TimeoutError:
        return f'Get "{url}": context deadline exceeded'
    except (aiohttp.ClientError, OSError) as err:
        return http_error(url, host, port, err)


async def stop_container(ctx: KubeletContext, pod: dict | None, container: dict | None, record: ContainerRecord,
                         grace: int, pod_ip: str = "") -> None:
    """The kubelet's ``killContainer``: preStop (bounded by the grace period), then SIGTERM … SIGKILL.

    The hook's time is taken from the grace period, and the container still gets at
    least two seconds after it, as upstream gives.
    """
    hook = ((container or {}).get("lifecycle") or {}).get("preStop")
    if hook and pod is not None and container is not None and record.running and grace > 0:
        started = time.monotonic()
        try:
            message = await asyncio.wait_for(run_handler(ctx, hook, pod, container, record, pod_ip), grace)
        except TimeoutError:
            message = ""  # the grace period is over: the stop below is immediate
            log.info("pod %s: preStop hook of %s did not finish within %ss", PodRef.of(pod).describe(),
                     container["name"], grace)
        if message:
            ctx.event(pod, "Warning", "FailedPreStopHook", message)
        grace = max(MIN_GRACE_AFTER_PRE_STOP_S, grace - int(time.monotonic() - started))
    await ctx.blocking(ctx.runtime.stop, record.id, grace)


def container_spec(pod: dict, name: str) -> dict | None:
    """The spec of container ``name``, init or app."""
    spec = pod.get("spec") or {}
    return next((c for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
                 if c.get("name") == name), None)
