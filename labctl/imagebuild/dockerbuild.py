"""``docker build`` through the SDK, with its output streamed as progress and kept for errors.

Shared by the image table (:mod:`labctl.images`) and the base image's registry path
(:mod:`.rootfs`), so it lives below both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labctl.imagebuild import LabctlImageError, LineSink, tail


def docker_build(client: Any, context: Path, ref: str, *, dockerfile: str = "Dockerfile",
                 build_args: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                 log: LineSink = lambda line: None) -> str:
    """``docker build`` ``context`` as ``ref``, streaming ``Step …`` lines to ``log``; return the id."""
    output: list[str] = []
    try:
        stream = client.api.build(path=str(context), dockerfile=dockerfile, tag=ref,
                                  buildargs=build_args or {}, labels=labels or {}, rm=True,
                                  forcerm=True, decode=True)
        for chunk in stream:
            if "error" in chunk:
                raise LabctlImageError(f"failed to build {ref!r}: {chunk['error'].strip()}\n"
                                       + tail("".join(output)))
            text = chunk.get("stream", "")
            output.append(text)
            if text.startswith("Step "):
                log(text.strip())
    except LabctlImageError:
        raise
    except Exception as err:  # docker.errors.APIError, connection errors
        raise LabctlImageError(f"failed to build {ref!r}: {err}") from err
    return client.images.get(ref).id
