"""Cluster add-ons: manifests ``labctl up`` applies once the API server answers.

Each add-on is a multi-document YAML file shipped as package data (``<name>.yaml``), the
way kubeadm ships CoreDNS and kube-proxy. They are plain Kubernetes objects, so a student
can read them, and re-apply or edit them with kubectl. The lab-specific values (the
kube-dns ClusterIP, the cluster domain, the node image tag) are ``${NAME}`` placeholders
filled in from the lab's :class:`~labctl.clusterconfig.ClusterConfig`, so an add-on always
matches the lab's service subnet.
"""

from __future__ import annotations

from importlib import resources
from string import Template
from typing import Any

import yaml

from ..clusterconfig import ClusterConfig

ADDONS = ("kube-dns",)
#: the node image labctl builds; ``labctl up`` passes the exact content-hash tag it built
DEFAULT_NODE_IMAGE = "labctl/node:latest"


class AddonError(Exception):
    """An unknown add-on name."""


def load_addon(name: str, cluster: ClusterConfig, image: str = DEFAULT_NODE_IMAGE) -> list[dict[str, Any]]:
    """The add-on's objects for a lab with settings ``cluster``, its pods running ``image``."""
    if name not in ADDONS:
        raise AddonError(f"failed to load add-on {name!r}: known add-ons are {', '.join(ADDONS)}")
    template = Template(resources.files(__name__).joinpath(f"{name}.yaml").read_text())
    text = template.substitute(NODE_IMAGE=image, DNS_SERVICE_IP=cluster.dns_service_ip,
                               CLUSTER_DOMAIN=cluster.cluster_domain)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_addon(name: str, cluster: ClusterConfig, image: str = DEFAULT_NODE_IMAGE) -> str:
    """The add-on as one YAML stream, ready for ``kubectl apply -f -``."""
    return yaml.safe_dump_all(load_addon(name, cluster, image), sort_keys=False)
