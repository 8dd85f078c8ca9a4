"""The changes a student makes from the TUI, each with the command that does the same by hand.

An :class:`Action` names an object (:class:`Ref`) and a verb; :attr:`Action.command` is the
``kubectl``, ``labctl`` or ``docker`` command a student would type, shown before and after
it runs so the UI teaches the CLI. :func:`perform` does it through the API client with the
request kubectl itself sends (a patch of the ``scale`` subresource, a strategic merge patch
of the pod template, kubectl's ``rollout undo``), or through Docker for a node container.
:func:`undo_patch` is pure and unit-tested.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..client.rest import APIClient, resource_path
from ..errors import LabctlError
from ..exercises.relations import revision
from ..kube.meta import timestamp

if TYPE_CHECKING:
    from ..cluster import Lab

__all__ = ["KIND_PLURALS", "Action", "Ref", "perform", "undo_patch"]

Obj = dict[str, Any]

KIND_PLURALS = {"Pod": "pods", "Node": "nodes", "Deployment": "deployments", "ReplicaSet": "replicasets",
                "Service": "services", "Endpoints": "endpoints", "Event": "events"}
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
#: annotations ``kubectl rollout undo`` never copies from a ReplicaSet back to its Deployment
_SKIP_ON_UNDO = {"deployment.kubernetes.io/revision", "deployment.kubernetes.io/revision-history",
                 "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
                 "kubectl.kubernetes.io/last-applied-configuration"}


@dataclass(frozen=True)
class Ref:
    """An object the UI points at: a kind, a name, a namespace (``""`` for nodes)."""

    kind: str
    name: str
    namespace: str = ""

    @property
    def plural(self) -> str:
        return KIND_PLURALS[self.kind]

    @property
    def slug(self) -> str:
        """``deployment/web``, as kubectl names an object."""
        return f"{self.kind.lower()}/{self.name}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def kubectl(*args: str, ref: Ref | None = None) -> str:
    """A kubectl command line; ``-n`` when the object is namespaced (the context may point elsewhere)."""
    namespace = ("-n", ref.namespace) if ref is not None and ref.namespace else ()
    return shlex.join(("kubectl", *args, *namespace))


@dataclass(frozen=True)
class Action:
    """One change: ``verb`` is scale, set-image, rollout-undo, rollout-restart, delete, cordon, uncordon,
    stop-node or start-node; ``value`` is the replicas (scale) or ``container=image`` (set-image)."""

    verb: str
    ref: Ref
    value: str = ""
    lab: str = ""  # the lab's name: its node containers are ``<lab>-<node>``

    @property
    def command(self) -> str:
        ref = self.ref
        if self.verb == "scale":
            return kubectl("scale", ref.slug, f"--replicas={self.value}", ref=ref)
        if self.verb == "set-image":
            return kubectl("set", "image", ref.slug, self.value, ref=ref)
        if self.verb in ("rollout-undo", "rollout-restart"):
            return kubectl("rollout", self.verb.removeprefix("rollout-"), ref.slug, ref=ref)
        if self.verb == "delete":
            return kubectl("delete", ref.kind.lower(), ref.name, ref=ref)
        if self.verb in ("cordon", "uncordon"):
            return kubectl(self.verb, ref.name)
        if self.verb in ("stop-node", "start-node"):
            return shlex.join(("docker", self.verb.removesuffix("-node"), self.container))
        raise ValueError(f"unknown action {self.verb!r}")

    @property
    def container(self) -> str:
        return f"{self.lab}-{self.ref.name}"

    @property
    def destructive(self) -> bool:
        """Asked for confirmation first (k9s asks before a delete, so do we; and before a node stops)."""
        return self.verb in ("delete", "stop-node")


def undo_patch(deployment: Obj, replicasets: list[Obj], to_revision: int = 0) -> list[Obj]:
    """The JSON patch ``kubectl rollout undo`` sends: the template of the ReplicaSet of the previous
    revision (or ``to_revision``), without its ``pod-template-hash`` label, and its annotations."""
    uid = deployment["metadata"]["uid"]
    owned = [rs for rs in replicasets if any(ref.get("uid") == uid and ref.get("controller")
                                             for ref in rs["metadata"].get("ownerReferences") or [])]
    current = revision(deployment)
    if to_revision:
        chosen = next((rs for rs in owned if revision(rs) == to_revision), None)
        if chosen is None:
            raise LabctlError(f"unable to find specified revision {to_revision} in history")
    else:
        older = [rs for rs in owned if 0 < revision(rs) < current]
        if not older:
            raise LabctlError("no rollout history found for deployment "
                              f"{deployment['metadata']['name']!r}: nothing to undo")
        chosen = max(older, key=revision)
    template = dict(chosen["spec"]["template"])
    labels = {k: v for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()
              if k != "pod-template-hash"}
    template["metadata"] = {**(template.get("metadata") or {}), "labels": labels}
    annotations = {k: v for k, v in (deployment["metadata"].get("annotations") or {}).items() if k in _SKIP_ON_UNDO}
    annotations.update({k: v for k, v in (chosen["metadata"].get("annotations") or {}).items()
                        if k not in _SKIP_ON_UNDO})
    return [{"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations}]


async def perform(action: Action, api: APIClient, lab: Lab, replicasets: list[Obj]) -> str:
    """Do ``action``; a sentence saying what was done (``LabctlError``/``APIStatusError`` when refused)."""
    ref = action.ref
    path = resource_path(ref.plural, ref.namespace or None, ref.name)
    if action.verb == "scale":
        await api.patch(path + "/scale", {"spec": {"replicas": int(action.value)}})
        return f"{ref.slug} scaled to {action.value}"
    if action.verb == "set-image":
        container, _, image = action.value.partition("=")
        if not container or not image:
            raise LabctlError(f"{action.value!r} is not CONTAINER=IMAGE")
        await api.patch(path, {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}},
                        "strategic")
        return f"{ref.slug}: {container} now runs {image} (a rollout starts)"
    if action.verb == "rollout-restart":
        stamp = timestamp(dt.datetime.now(dt.UTC))
        await api.patch(path, {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}},
                        "strategic")
        return f"{ref.slug} restarted"
    if action.verb == "rollout-undo":
        deployment = await api.get(path)
        await api.patch(path, undo_patch(deployment, replicasets), "json")
        return f"{ref.slug} rolled back"
    if action.verb == "delete":
        await api.delete(path)
        return f"{ref.kind.lower()} {ref} deleted"
    if action.verb in ("cordon", "uncordon"):
        await api.patch(path, {"spec": {"unschedulable": action.verb == "cordon"}})
        return f"node/{ref.name} {action.verb}ed"
    if action.verb in ("stop-node", "start-node"):
        stop = action.verb == "stop-node"

        def flip() -> None:  # the Docker SDK blocks
            container = lab.docker.containers.get(action.container)
            container.stop() if stop else container.start()

        await asyncio.to_thread(flip)
        return f"node {ref.name}: container {action.container} {'stopped' if stop else 'started'}"
    raise LabctlError(f"unknown action {action.verb!r}")
