"""The image aliases every topology gets: the tutorials' images, run as lab images.

An offline lab can pull nothing, so the images kubernetes.io's pages and the course use are
mapped to images the lab builds (``labctl images list``): their manifests then run as
copied. A topology's own ``images.aliases`` adds to these, and an entry that names the same
image as one of them (after Docker's normalisation) replaces it; mapping an image to itself
(``busybox: busybox``) turns its alias off. Defined once here so the shipped topologies, a
student's own and the scratch labs cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

TOOLBOX = "labctl/toolbox:latest"  # Debian with curl and dig (no wget): what the busybox pages need

#: public image, as the page writes it → local image
DEFAULT_ALIASES: Mapping[str, str] = MappingProxyType({
    "nginx": "labctl/nginx:v1",
    "nginx:1.14.2": "labctl/nginx:v1",              # the Deployment tutorial
    "nginx:1.16.1": "labctl/nginx:v2",              # ... and its rollout
    "busybox": TOOLBOX,
    # the tags the task pages use (Init Containers, Configure a Security Context, DNS for Services
    # and Pods, Debug Running Pods, Configure a Pod to Use a ConfigMap, Liveness Probes ...)
    "busybox:1.28": TOOLBOX,
    "busybox:1.36": TOOLBOX,
    "registry.k8s.io/busybox": TOOLBOX,
    "registry.k8s.io/busybox:1.27.2": TOOLBOX,
    "gcr.io/google-containers/busybox": TOOLBOX,                # Debug Services
    "radial/busyboxplus:curl": TOOLBOX,                         # Connecting Applications with Services
    "registry.k8s.io/e2e-test-images/jessie-dnsutils:1.3": TOOLBOX,  # Debugging DNS Resolution
    "registry.k8s.io/pause:3.1": "labctl/pause:latest",  # Debug Running Pods: an image with no shell
})
