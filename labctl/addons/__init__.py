"""Cluster add-ons: manifests ``labctl up`` applies once the API server answers.

Each add-on is a multi-document YAML file shipped as package data (``<name>.yaml``), the
way kubeadm ships CoreDNS and kube-proxy. They are plain Kubernetes objects, so a student
can read them, and re-apply or edit them with kubectl. The lab-specific values (the
kube-dns ClusterIP, the cluster domain, the images' tags) are ``${NAME}`` placeholders
filled in from the lab's :class:`~labctl.clusterconfig.ClusterConfig`, so an add-on always
matches the lab's service subnet.
"""

from __future__ import annotations

from importlib import resources
from string import Template
from typing import Any

import yaml

from ..clusterconfig import ClusterConfig

ADDONS = ("kube-dns", "local-path-storage", "ingress-nginx")
#: the add-on a topology switches with ``addons: {<key>: false}``
OPTIONAL_ADDONS = {"ingress": "ingress-nginx"}
#: the images labctl builds; ``labctl up`` passes the exact content-hash tags it built
DEFAULT_NODE_IMAGE = "labctl/node:latest"
DEFAULT_INGRESS_IMAGE = "labctl/ingress-nginx:latest"
#: the ingress controller's Service's node ports (HTTP, HTTPS): the shipped topologies map host
#: ports 8080 and 8443 to them on the control plane
INGRESS_NODE_PORTS = (30080, 30443)


#: libyaml's parser where PyYAML has it: the same objects as ``safe_load_all`` (the same safe
#: constructor) in a tenth of the CPU, 2 ms instead of 17 for the three add-ons, in ``up``'s process
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class AddonError(Exception):
    """An unknown add-on name."""


def addons_for(optional: tuple[str, ...]) -> tuple[str, ...]:
    """The add-ons to install: kube-dns, local-path-storage, and the optional ones a topology's ``addons`` keeps on."""
    return tuple(name for name in ADDONS
                 if name not in OPTIONAL_ADDONS.values() or any(OPTIONAL_ADDONS[k] == name for k in optional))


def load_addon(name: str, cluster: ClusterConfig, image: str = DEFAULT_NODE_IMAGE,
               ingress_image: str = DEFAULT_INGRESS_IMAGE) -> list[dict[str, Any]]:
    """The add-on's objects for a lab with settings ``cluster``, its pods running ``image``
    (the ingress controller's, ``ingress_image``)."""
    if name not in ADDONS:
        raise AddonError(f"failed to load add-on {name!r}: known add-ons are {', '.join(ADDONS)}")
    template = Template(resources.files(__name__).joinpath(f"{name}.yaml").read_text())
    text = template.substitute(NODE_IMAGE=image, DNS_SERVICE_IP=cluster.dns_service_ip,
                               CLUSTER_DOMAIN=cluster.cluster_domain, INGRESS_IMAGE=ingress_image,
                               INGRESS_HTTP_NODE_PORT=INGRESS_NODE_PORTS[0],
                               INGRESS_HTTPS_NODE_PORT=INGRESS_NODE_PORTS[1])
    return [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc]


def render_addon(name: str, cluster: ClusterConfig, image: str = DEFAULT_NODE_IMAGE,
                 ingress_image: str = DEFAULT_INGRESS_IMAGE) -> str:
    """The add-on as one YAML stream, ready for ``kubectl apply -f -``."""
    return yaml.safe_dump_all(load_addon(name, cluster, image, ingress_image), sort_keys=False)
