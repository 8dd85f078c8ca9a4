"""Fixtures for the lab image tests: a Docker client (or a skip) and the built lab images."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from labctl import images
from labctl.engine.sdk import connect
from labctl.errors import LabctlError


@pytest.fixture(scope="session")
def images_docker() -> Any:
    """A Docker SDK client; skips (with the reason) when the engine is unreachable."""
    try:
        return connect()
    except LabctlError as err:
        pytest.skip(f"needs a running Docker engine: {err}")


@pytest.fixture(scope="session")
def lab_images(images_docker: Any) -> list[images.ImageStatus]:
    """Every lab image, built through ensure_images (a cold base build takes ~2 minutes once;
    afterwards the images on the host are the cache)."""
    return images.ensure_images(images_docker)


@pytest.fixture
def run_container(images_docker: Any) -> Iterator[Any]:
    """``run_container(image, **kwargs)`` starts a uniquely named container, removed afterwards."""
    created: list[Any] = []

    def run(image: str, **kwargs: Any) -> Any:
        name = f"labctl-test-images-{uuid.uuid4().hex[:8]}"
        container = images_docker.containers.run(image, name=name, detach=True, **kwargs)
        created.append(container)
        container.reload()
        return container

    yield run
    for container in created:
        try:
            container.remove(force=True)
        except Exception:  # already gone
            pass
