"""Image references compared the way Docker writes them.

A base module (the standard library only): the topology's image aliases are stored
normalised and the kubelet looks a pod's image up in them, so both must normalise alike;
the kubelet imports this alone rather than the topology parser (its schema, YAML, the
types) that it has no other use for.
"""

from __future__ import annotations


def normalize_image(image: str) -> str:
    """Docker's short form of an image reference: ``docker.io/library/nginx`` → ``nginx:latest``."""
    name, at, digest = image.strip().partition("@")
    first, slash, rest = name.partition("/")
    registry = bool(slash) and ("." in first or ":" in first or first == "localhost")
    if registry and first in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        name, registry = rest, False
    if not registry and name.startswith("library/"):
        name = name[len("library/"):]
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name + at + digest
