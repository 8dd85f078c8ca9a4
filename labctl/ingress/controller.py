"""The controller loop: caches → :func:`.render.render` → files → ``nginx -s reload``; Ingress status.

Every change of a watched object marks the configuration dirty; the loop renders the whole file
again (a few milliseconds) and touches nginx only when the text or a certificate changed: it
writes the certificates, checks the new file with ``nginx -t`` (a file nginx refuses is logged
and the running configuration kept), moves it into place and runs ``nginx -s reload``, which
starts new workers on the new file while the old ones finish the requests they hold. So a
rollout behind an Ingress loses no request: a pod leaves the upstream when it leaves the
EndpointSlice, and a connection to a pod already gone is retried on another
(``proxy_next_upstream``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from labctl.client.informer import FuncHandler, Informer
from labctl.client.rest import APIClient, APIStatusError, resource_path
from labctl.kube.objects import DEFAULT_INGRESS_CLASS_ANNOTATION

from .render import CONTROLLER_NAME, TLS_DIR, Rendered, Snapshot, render

log = logging.getLogger("labctl.ingress")

WATCHED = ("ingresses", "ingressclasses", "services", "endpointslices", "secrets")
#: changes closer together than this are rendered once (a rollout moves many endpoints at once)
SETTLE_SECONDS = 0.05


@dataclass(frozen=True)
class ControllerOptions:
    class_name: str = "nginx"
    conf: Path = Path("/etc/nginx/labctl/nginx.conf")
    tls_dir: Path = Path(TLS_DIR)
    nginx: str = "nginx"
    #: what ``status.loadBalancer.ingress`` says: the IP of the node running the controller
    publish_ip: str = ""


async def _nginx(nginx: str, conf: Path, *args: str) -> tuple[int, str]:
    """Run an nginx command (``-t``, ``-s reload``) on ``conf``; its exit code and output."""
    proc = await asyncio.create_subprocess_exec(nginx, "-c", str(conf), *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace").strip()


class IngressController:
    """Keeps nginx's configuration equal to the Ingresses of one class."""

    def __init__(self, client: APIClient, opts: ControllerOptions) -> None:
        self.client, self.opts = client, opts
        self.informers = {plural: Informer(client, plural) for plural in WATCHED}
        self.dirty = asyncio.Event()
        mark = FuncHandler(on_add=lambda _: self.dirty.set(), on_update=lambda _o, _n: self.dirty.set(),
                           on_delete=lambda _: self.dirty.set())
        for informer in self.informers.values():
            informer.add_handler(mark)
        self.applied: Rendered | None = None
        self.reloads = 0

    def snapshot(self) -> Snapshot:
        """The caches, with our class's default flag (an IngressClass of our controller and name)."""
        ours = self.informers["ingressclasses"].get("", self.opts.class_name)
        default = bool(ours and (ours.get("spec") or {}).get("controller") == CONTROLLER_NAME and
                       ((ours["metadata"].get("annotations") or {}).get(DEFAULT_INGRESS_CLASS_ANNOTATION) == "true"))
        return Snapshot(class_name=self.opts.class_name, default_class=default,
                        ingresses=self.informers["ingresses"].list(), services=self.informers["services"].cache,
                        endpoint_slices=self.informers["endpointslices"].list(),
                        secrets=self.informers["secrets"].cache)

    def write_first(self) -> None:
        """The configuration nginx starts with, from the synced caches."""
        rendered = render(self.snapshot())
        self._write_certificates(rendered)
        self.opts.conf.parent.mkdir(parents=True, exist_ok=True)
        self.opts.conf.write_text(rendered.config)
        self.applied = rendered

    def _write_certificates(self, rendered: Rendered) -> None:
        self.opts.tls_dir.mkdir(parents=True, exist_ok=True)
        for name, pem in rendered.certificates.items():
            path = self.opts.tls_dir / name
            if not path.exists() or path.read_bytes() != pem:
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(pem)
                os.chmod(tmp, 0o600)
                tmp.replace(path)

    async def sync(self) -> bool:
        """Render; if anything changed, check, install and reload. True when nginx was reloaded."""
        rendered = render(self.snapshot())
        for warning in rendered.warnings:
            if not self.applied or warning not in self.applied.warnings:
                log.warning("%s", warning)
        if self.applied and rendered.config == self.applied.config and \
                rendered.certificates == self.applied.certificates:
            self.applied = rendered
            return False
        self._write_certificates(rendered)
        candidate = self.opts.conf.with_suffix(".new")
        candidate.write_text(rendered.config)
        code, out = await _nginx(self.opts.nginx, candidate, "-t", "-q")
        if code != 0:
            log.error("nginx refused the new configuration, keeping the running one: %s", out)
            self.applied = rendered
            return False
        candidate.replace(self.opts.conf)
        code, out = await _nginx(self.opts.nginx, self.opts.conf, "-s", "reload")
        if code != 0:
            log.error("nginx -s reload failed: %s", out)
            return False
        self.reloads += 1
        self.applied = rendered
        log.info("nginx reloaded (%d): %d ingress(es), %d upstream(s)", self.reloads, len(rendered.served),
                 rendered.config.count("    upstream "))
        return True

    async def publish_status(self) -> None:
        """``status.loadBalancer.ingress: [{ip: <node IP>}]`` on every Ingress we serve (``kubectl get`` ADDRESS)."""
        if not self.opts.publish_ip or not self.applied:
            return
        wanted = {"ingress": [{"ip": self.opts.publish_ip}]}
        for namespace, name in self.applied.served:
            ingress = self.informers["ingresses"].get(namespace, name)
            if ingress is None or (ingress.get("status") or {}).get("loadBalancer") == wanted:
                continue
            try:
                await self.client.patch(resource_path("ingresses", namespace, name, "status"),
                                         {"status": {"loadBalancer": wanted}})
                log.info("ingress %s/%s: status.loadBalancer %s", namespace, name, self.opts.publish_ip)
            except APIStatusError as err:
                if err.code != 404:
                    log.warning("ingress %s/%s: status not written: %s", namespace, name, err)

    async def run(self, started: asyncio.Event, stop: asyncio.Event) -> None:
        """List and watch; once every cache is synced write the first file and set ``started``; then loop."""
        tasks = [asyncio.create_task(i.run()) for i in self.informers.values()]
        try:
            await asyncio.gather(*(i.synced.wait() for i in self.informers.values()))
            self.write_first()
            started.set()
            while not stop.is_set():
                await self.publish_status()
                self.dirty.clear()
                waiter = asyncio.create_task(self.dirty.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if stop.is_set():
                    break
                await asyncio.sleep(SETTLE_SECONDS)
                await self.sync()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
