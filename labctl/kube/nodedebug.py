"""The pod ``kubectl debug node/NODE`` creates, recognised by the API server and the kubelet alike.

kubectl 1.37 creates ``node-debugger-<node>-<random>`` with the label
``app.kubernetes.io/managed-by: kubectl-debug``, ``nodeName``, ``hostNetwork``/``hostPID``/
``hostIPC`` and a ``hostPath: {path: /}`` volume mounted at ``/host``. labctl gives that
volume the *node's* root filesystem, read-only (``labctl/agent/kubelet/noderoot.py``); any other
pod asking for ``hostPath: /`` is refused at admission, so "the whole machine" is only ever
the node, and only through kubectl's own debugging tool.
"""

from __future__ import annotations

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
