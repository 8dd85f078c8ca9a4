"""``ip -j -d link``, ``ip -j addr``, ``bridge -j link`` and the IPAM files → the bridge, its veths, their pods.

A veth is tied to its pod exactly, without guessing: labctl's CNI plugin names the host end
``"veth" + sha256(containerID + ifname)[:8]`` (:func:`labctl.cni.bridge.host_veth_name`) and
the IPAM plugin writes ``<dataDir>/<network>/<IP>`` holding ``<containerID>\\n<ifname>``, so
each reservation names both the IP and the veth of one sandbox; the sandbox's Docker labels
(``io.kubernetes.pod.namespace``/``name``, as dockershim set them) name the pod.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ..cni.bridge import host_veth_name
from .model import Address, Bridge, Interface, PodRef, Veth

__all__ = ["Reservation", "SandboxLabels", "parse_bridge", "parse_interfaces", "parse_reservations", "pods_of"]


@dataclass(frozen=True)
class Reservation:
    """One IPAM file: ``ip`` is held by interface ``ifname`` of sandbox ``container_id``."""

    ip: str
    container_id: str
    ifname: str


@dataclass(frozen=True)
class SandboxLabels:
    """What a pod sandbox container's Docker labels say (:mod:`labctl.kube.containers`)."""

    container_id: str
    namespace: str
    name: str
    uid: str


def parse_interfaces(links_json: str, addrs_json: str) -> list[Interface]:
    """Links (``ip -j -d link show``) with their addresses (``ip -j addr show``), by ifindex."""
    addrs = {a["ifindex"]: a.get("addr_info") or [] for a in json.loads(addrs_json or "[]")}
    out = []
    for link in json.loads(links_json or "[]"):
        info = link.get("linkinfo") or {}
        kind = info.get("info_kind") or ("loopback" if link.get("link_type") == "loopback" else "")
        addresses = tuple(Address(a["local"], int(a.get("prefixlen", 32)), a.get("label", ""))
                          for a in addrs.get(link["ifindex"], []) if a.get("family") == "inet")
        out.append(Interface(link["ifname"], link["ifindex"], kind, link.get("address", ""),
                             link.get("operstate", ""), addresses, link.get("master", "")))
    return out


def parse_reservations(text: str) -> list[Reservation]:
    """``grep -H '' <dataDir>/*/<IP>`` output: ``path:line``, two lines (container ID, ifname) per IP."""
    lines: dict[str, list[str]] = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if sep:
            lines.setdefault(path.rsplit("/", 1)[-1], []).append(value.strip())
    return [Reservation(ip, values[0], values[1] if len(values) > 1 else "eth0")
            for ip, values in lines.items() if values and values[0]]


def pods_of(reservations: list[Reservation], sandboxes: Mapping[str, SandboxLabels], node: str) -> list[PodRef]:
    """The pods a node's IPAM reservations belong to (reservations of vanished sandboxes are left out)."""
    out = []
    for r in reservations:
        labels = sandboxes.get(r.container_id)
        if labels is not None:
            out.append(PodRef(labels.namespace, labels.name, r.ip, node, r.container_id, labels.uid))
    return out


def parse_bridge(name: str, interfaces: list[Interface], bridge_json: str, links_json: str,
                 pods: list[PodRef], reservations: list[Reservation]) -> Bridge | None:
    """The bridge ``name`` with its ports (``bridge -j link show``), each tied to its pod through the veth name."""
    bridge = next((i for i in interfaces if i.name == name), None)
    if bridge is None:
        return None
    hairpin = {link["ifname"]: bool(((link.get("linkinfo") or {}).get("info_slave_data") or {}).get("hairpin"))
               for link in json.loads(links_json or "[]")}
    by_sandbox = {p.sandbox: p for p in pods}
    veth_pods = {host_veth_name(r.container_id, r.ifname): by_sandbox.get(r.container_id) for r in reservations}
    by_name = {i.name: i for i in interfaces}
    ports = []
    for port in json.loads(bridge_json or "[]"):
        if port.get("master") != name:
            continue
        ifname = port["ifname"]
        iface = by_name.get(ifname)
        ports.append(Veth(ifname, port.get("ifindex", iface.index if iface else 0), iface.mac if iface else "",
                          port.get("state", ""), hairpin.get(ifname, False), veth_pods.get(ifname)))
    return Bridge(bridge.name, bridge.mac, bridge.addresses, tuple(ports))
