"""ControllerRevisions: the template history of DaemonSets and StatefulSets (``pkg/controller/history``).

Both controllers record their current pod template as a ControllerRevision named
``<owner>-<hash>`` with ``revision`` one above the others (a template rolled back to gets the
top number again) and drop the oldest unused ones beyond ``revisionHistoryLimit``. ``kubectl
rollout history`` lists these, ``kubectl rollout undo`` applies a revision's ``data`` back to
the owner as a patch.
"""

from __future__ import annotations

import copy

from ..client.rest import APIClient, APIStatusError, resource_path
from ..kube.objects import controller_of
from ._ownership import owner_reference

REVISION_HASH_LABEL = "controller-revision-hash"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"


def revision_data(owner: dict) -> dict:
    """``getPatch``: what ``kubectl rollout undo`` applies back to the owner."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_template(revision: dict) -> dict:
    """The pod template a revision recorded (the inverse of :func:`revision_data`)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def owned_revisions(revisions: list[dict], owner: dict) -> list[dict]:
    uid, namespace = owner["metadata"]["uid"], owner["metadata"]["namespace"]
    return [r for r in revisions
            if r["metadata"].get("namespace") == namespace and (controller_of(r) or {}).get("uid") == uid]


def revision_hash(revision: dict) -> str | None:
    return (revision["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL)


async def record_revision(client: APIClient, owned: list[dict], owner: dict, hash_: str,
                          hashes_in_use: set[str]) -> str:
    """``constructHistory`` + ``cleanupHistory``: the owner's template as its newest revision; return its name.

    ``owned`` are the owner's revisions as the informer has them; ``hashes_in_use`` the hashes
    its pods still run (never dropped).
    """
    namespace = owner["metadata"]["namespace"]
    top = max((int(r.get("revision") or 0) for r in owned), default=0)
    current = next((r for r in owned if revision_hash(r) == hash_), None)
    name = f"{owner['metadata']['name']}-{hash_}"
    if current is None:
        labels = {**(((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels", {}),
                  REVISION_HASH_LABEL: hash_}
        meta: dict = {"name": name, "namespace": namespace, "labels": labels,
                      "ownerReferences": [owner_reference(owner)]}
        cause = (owner["metadata"].get("annotations") or {}).get(CHANGE_CAUSE_ANNOTATION)
        if cause is not None:
            meta["annotations"] = {CHANGE_CAUSE_ANNOTATION: cause}
        body = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
                "data": revision_data(owner), "revision": top + 1}
        try:
            await client.create(resource_path("controllerrevisions", namespace), body)
        except APIStatusError as err:
            if err.code != 409:
                raise
    elif int(current.get("revision") or 0) < top:  # rolled back to it: it becomes the newest again
        meta = current["metadata"]
        name = meta["name"]
        await client.patch(resource_path("controllerrevisions", namespace, name),
                           {"revision": top + 1, "metadata": {"resourceVersion": meta["resourceVersion"]}})
    else:
        name = current["metadata"]["name"]
    limit = int((owner.get("spec") or {}).get("revisionHistoryLimit", 10))
    in_use = hashes_in_use | {hash_}
    unused = sorted((r for r in owned if revision_hash(r) not in in_use), key=lambda r: int(r.get("revision") or 0))
    for rev in unused[:max(0, len(unused) - limit)]:
        try:
            await client.delete(resource_path("controllerrevisions", namespace, rev["metadata"]["name"]))
        except APIStatusError as err:
            if err.code != 404:
                raise
    return name
