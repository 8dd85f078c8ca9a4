"""The scheduler's cache: nodes and the pods bound to them, including pods it has only *assumed*.

kube-scheduler does not wait for the API server before scheduling the next pod: once it has
chosen a node it "assumes" the pod there (adds its requests to the node) and binds in the
background. Without this, a burst of 50 pods would all be placed against the same stale
picture and land on one node. When the informer later shows the pod with ``spec.nodeName``,
the assumption is simply replaced by the real pod (same key); a failed binding forgets it.
"""

from __future__ import annotations

from ._scheduling import NodeInfo, PodInfo

TERMINAL_PHASES = ("Succeeded", "Failed")


def pod_key(pod: dict) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def occupies_node(pod: dict) -> bool:
    """A bound pod takes room until it has terminated (a terminating pod still does, as in kube)."""
    return bool((pod.get("spec") or {}).get("nodeName")) and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES


class SchedulerCache:
    """Per-node aggregates kept in step with informer events and the scheduler's own assumptions."""

    def __init__(self) -> None:
        self._nodes: dict[str, dict] = {}
        self._infos: dict[str, NodeInfo] = {}
        self._placed: dict[str, tuple[str, PodInfo]] = {}  # pod key -> (node name, pod as counted)
        self.assumed: set[str] = set()

    # -- nodes -------------------------------------------------------------------------
    def set_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        self._nodes[name] = node
        if name in self._infos:
            self._infos[name].set_node(node)
        else:
            info = self._infos[name] = NodeInfo(node)
            for key, (node_name, pod) in self._placed.items():
                if node_name == name:
                    info.add_pod(key, pod)

    def remove_node(self, name: str) -> None:
        self._nodes.pop(name, None)
        self._infos.pop(name, None)

    def node_infos(self) -> list[NodeInfo]:
        return [self._infos[name] for name in sorted(self._infos)]

    def node_info(self, name: str) -> NodeInfo | None:
        return self._infos.get(name)

    # -- pods --------------------------------------------------------------------------
    def update_pod(self, pod: dict) -> None:
        """Account for a pod as the informer sees it now (bound, unbound, terminated)."""
        key = pod_key(pod)
        if occupies_node(pod):
            self._place(key, pod["spec"]["nodeName"], pod)
            self.assumed.discard(key)  # confirmed by the API server
        elif key not in self.assumed:
            self._unplace(key)

    def remove_pod(self, pod: dict) -> None:
        key = pod_key(pod)
        self.assumed.discard(key)
        self._unplace(key)

    def assume(self, pod: dict, node_name: str) -> None:
        """Count ``pod`` on ``node_name`` before the binding is confirmed."""
        key = pod_key(pod)
        self.assumed.add(key)
        self._place(key, node_name, pod)

    def forget(self, pod: dict) -> None:
        """Drop an assumption whose binding failed."""
        key = pod_key(pod)
        if key in self.assumed:
            self.assumed.discard(key)
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def _place(self, key: str, node_name: str, pod: dict) -> None:
        self._unplace(key)
        pi = PodInfo.of(pod)
        self._placed[key] = (node_name, pi)
        if info := self._infos.get(node_name):
            info.add_pod(key, pi)

    def _unplace(self, key: str) -> None:
        placed = self._placed.pop(key, None)
        if placed and (info := self._infos.get(placed[0])):
            info.add_pod(key, placed[1], sign=-1)
