"""The pod ``kubectl debug node/NODE`` creates, recognised by the API server and the kubelet alike.

kubectl 1.37 creates ``node-debugger-<node>-<random>`` with the label
``app.kubernetes.io/managed-by: kubectl-debug``, ``nodeName``, ``hostNetwork``/``hostPID``/
``hostIPC`` and a ``hostPath: {path: /}`` volume mounted at ``/host``. labctl gives that
volume the *node's* root filesystem, read-only, and ``hostPID``/``hostIPC`` the node
container's namespaces (``labctl/agent/kubelet/noderoot.py``); any other pod asking for them
is refused at admission, so "the whole machine" is only ever the node, and only through
kubectl's own debugging tool. (``hostNetwork`` is the kubelet's, for every pod: the node's.)
"""

from __future__ import annotations

import copy
from typing import Any

#: the label kubectl debug puts on the pods it creates
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_KUBECTL_DEBUG = "kubectl-debug"
NAME_PREFIX = "node-debugger-"


def is_node_root(volume: Any) -> bool:
    """Whether a pod volume is ``hostPath: /`` (the machine's root on a real node)."""
    path = ((volume.get("hostPath") or {}) if isinstance(volume, dict) else {}).get("path")
    return isinstance(path, str) and path != "" and path.strip("/") == ""


def is_node_debugger(pod: dict) -> bool:
    """Whether ``pod`` has the shape of ``kubectl debug node/NODE``'s pod."""
    meta = pod.get("metadata") or {}
    return ((meta.get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_KUBECTL_DEBUG
            and str(meta.get("name", "")).startswith(NAME_PREFIX) and bool((pod.get("spec") or {}).get("nodeName")))


def without_node_grants(spec: Any) -> Any:
    """The node debugger's spec less what it is granted (the node's PID/IPC namespaces and root), for admission."""
    if not isinstance(spec, dict):
        return spec
    out = copy.deepcopy(spec)
    for key in ("hostPID", "hostIPC"):
        if out.get(key) is True:
            del out[key]
    roots = {v.get("name") for v in out.get("volumes") or [] if is_node_root(v)}
    if roots:
        out["volumes"] = [v for v in out["volumes"] if not is_node_root(v)]
        for container in out.get("containers") or []:
            if isinstance(container, dict) and container.get("volumeMounts"):
                container["volumeMounts"] = [m for m in container["volumeMounts"]
                                             if not (isinstance(m, dict) and m.get("name") in roots)]
    return out
