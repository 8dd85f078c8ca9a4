"""Creating and deleting a controller's pods (kube's ``PodControl`` and ``slowStartBatch``).

Shared by the ReplicaSet, Job and DaemonSet controllers: pods are made from the owner's
template (:func:`pod_from_template`), created in batches of 1, 2, 4 … that stop at the first
failure (so a quota or a bad template costs one error, not a hundred), and every creation
and deletion is announced to the controller's :class:`~labctl.controllers._ownership.Expectations`
first and recorded as the owner's ``SuccessfulCreate``/``FailedCreate``/``SuccessfulDelete``
event, which ``kubectl describe`` shows (written behind the controller, as client-go's recorder does).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable

from ..client.events import EventRecorder
from ..client.rest import APIClient, APIStatusError, resource_path
from ._ownership import Expectations, owner_reference


def pod_from_template(owner: dict, template: dict | None = None) -> dict:
    """``GetPodFromTemplate``: the template's labels, annotations, finalizers and spec, owned by ``owner``.

    ``template`` defaults to the owner's ``spec.template``.
    """
    if template is None:
        template = (owner.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    meta = {"generateName": f"{owner['metadata']['name']}-", "namespace": owner["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}), "ownerReferences": [owner_reference(owner)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


class PodControl:
    """One controller's pod writes: expectations first, events after."""

    def __init__(self, client: APIClient, recorder: EventRecorder, expectations: Expectations) -> None:
        self.client = client
        self.recorder = recorder
        self.expectations = expectations

    async def create(self, key: str, owner: dict, pods: list[dict]) -> None:
        """``slowStartBatch``: create ``pods`` 1, 2, 4 … at a time; raise at the first failing batch."""
        count = len(pods)
        self.expectations.expect_creations(key, count)
        path = resource_path("pods", owner["metadata"]["namespace"])
        done, batch = 0, 1
        while done < count:
            size = min(batch, count - done)
            results = await asyncio.gather(*(self.client.create(path, pod) for pod in pods[done:done + size]),
                                           return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            for pod in results:
                if not isinstance(pod, BaseException):  # not waited for: the next batch goes at once
                    self.recorder.emit(owner, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
            done += size
            if failures:
                for _ in range(len(failures) + count - done):  # never-started pods are not expected
                    self.expectations.creation_observed(key)
                message = f"Error creating: {failures[0]}"
                await self.recorder.record(owner, "Warning", "FailedCreate", message)
                raise RuntimeError(message)
            batch *= 2

    async def delete(self, key: str, owner: dict, victims: list[dict],
                     on_deleted: Callable[[dict], None] | None = None) -> None:
        """Delete ``victims`` (guarded by uid); a pod already gone counts as deleted."""
        pod_keys = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in victims]
        self.expectations.expect_deletions(key, pod_keys)

        async def delete(pod: dict, pod_key: str) -> None:
            meta = pod["metadata"]
            try:
                await self.client.delete(resource_path("pods", meta["namespace"], meta["name"]),
                                         preconditions={"uid": meta["uid"]})
            except APIStatusError as err:
                self.expectations.deletion_observed(key, pod_key)
                if err.code != 404:
                    await self.recorder.record(owner, "Warning", "FailedDelete", f"Error deleting: {err}")
                    raise
                return
            self.recorder.emit(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")

        results = await asyncio.gather(*(delete(p, k) for p, k in zip(victims, pod_keys)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            kind = owner.get("kind", "")
            raise RuntimeError(f"failed to delete pods of {kind} \"{owner['metadata']['name']}\": {errors[0]}")
