"""Cluster add-ons: manifests ``labctl up`` applies once the API server answers.

Each add-on is a multi-document YAML file shipped as package data (``<name>.yaml``), the
way kubeadm ships CoreDNS and kube-proxy. They are plain Kubernetes objects, so a student
can read them, and re-apply or edit them with kubectl.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

ADDONS = ("kube-dns",)
NODE_IMAGE_PLACEHOLDER = "labctl/node:latest"


class AddonError(Exception):
    """An unknown add-on name."""


def load_addon(name: str, image: str | None = None) -> list[dict[str, Any]]:
    """The add-on's objects, with ``labctl/node:latest`` replaced by ``image`` if given
    (``labctl up`` passes the exact node image tag it built)."""
    if name not in ADDONS:
        raise AddonError(f"failed to load add-on {name!r}: known add-ons are {', '.join(ADDONS)}")
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text()
    objects = [doc for doc in yaml.safe_load_all(text) if doc]
    if image:
        for obj in objects:
            for container in _pod_containers(obj):
                if container.get("image") == NODE_IMAGE_PLACEHOLDER:
                    container["image"] = image
    return objects


def render_addon(name: str, image: str | None = None) -> str:
    """The add-on as one YAML stream, ready for ``kubectl apply -f -``."""
    return yaml.safe_dump_all(load_addon(name, image), sort_keys=False)


def _pod_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
