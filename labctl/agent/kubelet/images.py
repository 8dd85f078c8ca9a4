"""Which Docker image a container runs: the host's copy, a lab alias, or a pull.

``imagePullPolicy`` keeps the kubelet's meaning where the lab can: ``IfNotPresent`` uses
the host's copy; ``Never`` never pulls (an absent image is ``ErrImageNeverPull``); ``Always``
would ask the registry every time, which an offline lab cannot, so it runs the local copy
and says so in the ``Pulled`` event (an absent image is pulled as usual).

The lab is usually offline, so the kubelet's ``IfNotPresent`` logic grows one step:
an image that is neither on the host nor pullable may be mapped by the topology's
``images.aliases`` (``nginx:1.14.2`` → ``labctl/web:v1``). The substitution is never
silent: the pod's events say which alias was used, and a failed pull names the image
and the offline alternatives, so a student knows what to change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import docker.errors

from ...kube.images import normalize_image

#: A pull that cannot reach a registry should fail fast: the pod shows ErrImagePull
#: instead of hanging in ContainerCreating.
PULL_TIMEOUT_S = 20
DOCKER_URL = "unix:///var/run/docker.sock"


class ImagePullError(Exception):
    """The image is not on the host, has no alias and could not be pulled."""


class ImageNeverPullError(ImagePullError):
    """``imagePullPolicy: Never`` and the image is not on the host (``ErrImageNeverPull``)."""


@dataclass(frozen=True)
class ResolvedImage:
    """The image to create the container from and how it was found."""

    requested: str      # the pod spec's image, e.g. "nginx:1.14.2"
    run: str            # what Docker runs, e.g. "labctl/web:v1"
    image_id: str       # Docker's sha256 id of ``run``
    how: str            # "present" | "alias" | "pulled"
    pull_seconds: float = 0.0


def split_tag(image: str) -> tuple[str, str]:
    """``("nginx", "1.14.2")`` from ``nginx:1.14.2``; a registry port is not a tag."""
    name, _, digest = image.partition("@")
    if digest:
        return name, ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, ""


def alias_for(image: str, aliases: dict[str, str]) -> str | None:
    """The lab's alias for ``image``, matched exactly after Docker's normalisation.

    ``nginx``, ``nginx:latest`` and ``docker.io/library/nginx:latest`` are the same image, so
    they share an alias; another tag never borrows it (a mistyped ``nginx:1.161`` must fail to
    pull, as in Kubernetes' rollout lesson). The topology stores its keys normalised.
    """
    return aliases.get(normalize_image(image))


def with_default_tag(image: str) -> str:
    """``busybox`` → ``busybox:latest``, as Docker reads it."""
    name, tag = split_tag(image)
    return image if tag or "@" in image else f"{name}:latest"


def alias_message(requested: str, alias: str) -> str:
    return (f'Container image "{requested}" is not on this machine; '
            f'using the lab\'s image alias "{alias}"')


def always_message(requested: str, run: str) -> str:
    """The ``Pulled`` event of ``imagePullPolicy: Always`` on an image the lab has: it cannot be
    pulled again (no registry), so the local copy runs — said, not hidden."""
    using = f'the local copy of "{requested}"' if run == requested else f'the lab\'s image alias "{run}"'
    return (f'Container image "{requested}" has imagePullPolicy Always, but the lab has no registry to pull '
            f"from: using {using}")


def offline_message(image: str, aliases: dict[str, str], error: str) -> str:
    """The ErrImagePull message: the image, the reason, and what a student can use instead."""
    listed = ", ".join(f"{k} → {v}" for k, v in sorted(aliases.items())) or "none"
    return (f'failed to pull image "{image}": {error}. The lab may be offline: use an image that is on the '
            f"host (`labctl images list`) or one of the lab's image aliases ({listed})")


class ImageResolver:
    """Finds or fetches images through the host's Docker engine (blocking: call from a thread)."""

    def __init__(self, client: docker.DockerClient, aliases: dict[str, str],
                 pull: Callable[[str], None] | None = None, docker_url: str = DOCKER_URL) -> None:
        self.api = client.api
        self.docker_url = docker_url
        self.aliases = dict(aliases)
        self._pull = pull or self._docker_pull

    def local_id(self, image: str) -> str | None:
        try:
            return self.api.inspect_image(image)["Id"]
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as err:
            if getattr(err, "status_code", 0) == 404:
                return None
            raise

    def find(self, image: str) -> ResolvedImage | None:
        """The host's copy of ``image``, else its alias when the alias is on the host, else None."""
        image_id = self.local_id(image)
        if image_id:
            return ResolvedImage(image, image, image_id, "present")
        alias = alias_for(image, self.aliases)
        if alias:
            alias_id = self.local_id(alias)
            if alias_id:
                return ResolvedImage(image, alias, alias_id, "alias")
        return None

    def pull(self, image: str, pull_policy: str = "IfNotPresent") -> ResolvedImage:
        """Pull ``image`` (unless the policy is ``Never``); raise :class:`ImagePullError` with the offline hint."""
        if pull_policy == "Never":
            raise ImageNeverPullError(f'Container image "{image}" is not present with pull policy of Never')
        started = time.monotonic()
        try:
            self._pull(with_default_tag(image))
        except Exception as err:
            raise ImagePullError(offline_message(image, self.aliases, _short_error(err))) from err
        image_id = self.local_id(image)
        if not image_id:
            raise ImagePullError(offline_message(image, self.aliases, "the pull left no image"))
        return ResolvedImage(image, image, image_id, "pulled", time.monotonic() - started)

    def _docker_pull(self, image: str) -> None:
        name, tag = split_tag(image)
        # a separate low-level client with a short timeout: the shared one waits minutes
        api = docker.APIClient(base_url=self.docker_url, timeout=PULL_TIMEOUT_S)
        try:
            for line in api.pull(name, tag=tag or "latest", stream=True, decode=True):
                if "error" in line:
                    raise ImagePullError(str(line["error"]))
        finally:
            api.close()


def _short_error(err: Exception) -> str:
    text = getattr(err, "explanation", None) or str(err)
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else type(err).__name__
