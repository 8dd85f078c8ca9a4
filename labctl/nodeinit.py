"""``python -m labctl.nodeinit``: the process tree of a lab node (under tini).

It starts the node's components and restarts any that exit, like systemd units on a
kubeadm node: on the control plane the API server (and, with later issues, the
controllers and scheduler), and on every node the node agent. Each component's output
goes to the container's log with its name in front, so ``docker logs <node>`` (or
``labctl logs``) reads like a journal.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import urllib.parse
from pathlib import Path

from .client.rest import Credentials
from .clusterconfig import MIN_SERVICE_ACCOUNT_TOKEN_SECONDS, NodeConfig
from .clusterconfig import NODE_CONFIG_PATH as CONFIG_PATH

log = logging.getLogger("labctl.nodeinit")
STATE_DIR = Path("/var/lib/labctl")
RESTART_BACKOFF_MAX = 10.0


def components(cfg: NodeConfig) -> dict[str, list[str]]:
    """Component name -> command line, in start order."""
    py = sys.executable
    out: dict[str, list[str]] = {}
    if cfg.role == "control-plane":
        out["kube-apiserver"] = [
            py, "-m", "labctl.apiserver", "--data-dir", str(STATE_DIR / "apiserver"),
            "--listen", "0.0.0.0:6443", "--advertise-address", cfg.internal_ip,
            "--external-url", f"https://{cfg.internal_ip}:6443", "--config", str(CONFIG_PATH),
        ]
        token_seconds = cfg.cluster.service_account_token_seconds
        if token_seconds < MIN_SERVICE_ACCOUNT_TOKEN_SECONDS:  # a lab testing token rotation: say so
            out["kube-apiserver"] += ["--service-account-min-token-seconds", str(token_seconds)]
        out["kube-controller-manager"] = [
            py, "-m", "labctl.controllers", "--kubeconfig", str(STATE_DIR / "apiserver" / "admin.kubeconfig"),
            "--config", str(CONFIG_PATH),
        ]
    out["labctl-agent"] = [py, "-m", "labctl.agent", "--config", str(CONFIG_PATH)]
    return out


def api_server_address(cfg: NodeConfig) -> tuple[str, int]:
    """Where this node's components reach the API server (from its kubeconfig)."""
    url = urllib.parse.urlsplit(Credentials.from_kubeconfig(cfg.kubeconfig).server)
    return url.hostname or "127.0.0.1", url.port or 6443


async def wait_for_api_server(address: tuple[str, int], stopping: asyncio.Event) -> None:
    """Like a systemd ``After=``: wait until the API server accepts connections."""
    while not stopping.is_set():
        try:
            _, writer = await asyncio.open_connection(*address)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)


async def supervise(name: str, argv: list[str], stopping: asyncio.Event,
                    after: tuple[str, int] | None = None) -> None:
    if after is not None:
        await wait_for_api_server(after, stopping)
    backoff = 0.5
    while not stopping.is_set():
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        log.info("started %s (pid %d)", name, proc.pid)
        reader = asyncio.create_task(_prefix_output(name, proc.stdout))
        waiter = asyncio.create_task(proc.wait())
        stop = asyncio.create_task(stopping.wait())
        await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
        if stopping.is_set() and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
        await reader
        stop.cancel()
        if stopping.is_set():
            return
        log.warning("%s exited with code %s; restarting in %.1fs", name, proc.returncode, backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, RESTART_BACKOFF_MAX)


async def _prefix_output(name: str, stream: asyncio.StreamReader | None) -> None:
    if stream is None:
        return
    async for line in stream:
        sys.stdout.write(f"[{name}] {line.decode(errors='replace')}")
        sys.stdout.flush()


async def main_async() -> None:
    cfg = NodeConfig.load()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    api = api_server_address(cfg)
    # the controller manager has nothing to do before the API server listens; starting it
    # later leaves the CPU to the API server and the node agents, which `labctl up` waits for
    await asyncio.gather(*(supervise(name, argv, stopping, api if name == "kube-controller-manager" else None)
                           for name, argv in components(cfg).items()))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[nodeinit] %(asctime)s %(message)s", stream=sys.stdout)
    asyncio.run(main_async())
    return 0


if __name__ == "__main__":
    sys.exit(main())
