"""The lab's images: what they are, whether they are current, and building what is missing.

Every image is built locally, with no registry: ``labctl/base`` from Debian (a registry pull
when one answers, else debootstrap + ``docker import``), ``labctl/node`` and
``labctl/toolbox`` on top of it, ``labctl/nginx`` (Debian's nginx) and the ingress controller's
``labctl/ingress-nginx`` (nginx plus labctl) too, and the tiny ``labctl/pause`` and ``labctl/web`` from the
host's static busybox. Each image is tagged with a content hash of its inputs
(``labctl/node:3f2a9c1b7d4e``) and with a stable alias (``labctl/node:latest``,
``labctl/web:v1``) that nodes and pods use. A hash tag that is missing means the image is
missing or stale, so ``ensure_images`` rebuilds exactly what changed, in dependency order.

This module never prints: progress goes to a callback, errors are :class:`LabctlImageError`
with a one-line hint first. Callers pass the Docker SDK client (:func:`labctl.engine.sdk.connect`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from labctl.imagebuild import LabctlImageError, LineSink, rootfs, wheelhouse
from labctl.imagebuild.dockerbuild import docker_build
from labctl.kube.meta import parse_time

__all__ = ["IMAGES", "ImageSpec", "ImageStatus", "LabctlImageError", "Progress",
           "build_base_rootfs", "content_hashes", "ensure_images", "image_status", "resolve", "source_root"]

Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: ``step`` describes the current work, ``done``/``total``
count images (``done`` images finished so far)."""

LABEL_IMAGE = "io.labctl.image"
LABEL_HASH = "io.labctl.content-hash"
BUSYBOX = Path(os.environ.get("LABCTL_BUSYBOX", "/bin/busybox"))
build_base_rootfs = rootfs.build_base_rootfs


@dataclass(frozen=True)
class ImageSpec:
    """One lab image: where its build context lives and what else goes into it."""

    key: str                                  # "node", "web:v1": what users and callers name
    repository: str                           # "labctl/web"
    alias: str                                # stable tag: "latest", "v1"
    context: str                              # folder under images/
    depends_on: tuple[str, ...] = ()          # keys built first; their hash feeds ours
    build_args: tuple[tuple[str, str], ...] = ()
    busybox: bool = False                     # copy the host's static busybox into the context
    wheelhouse: bool = False                  # add labctl's wheelhouse (deps/ and labctl/)
    rootfs: bool = False                      # built by build_base_rootfs, not a Dockerfile

    @property
    def alias_ref(self) -> str:
        return f"{self.repository}:{self.alias}"

    def ref(self, content_hash: str) -> str:
        return f"{self.repository}:{content_hash}"


# In dependency order: a spec only depends on specs listed before it.
IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("base", "labctl/base", "latest", "base", rootfs=True),
    ImageSpec("node", "labctl/node", "latest", "node", depends_on=("base",), wheelhouse=True),
    ImageSpec("toolbox", "labctl/toolbox", "latest", "toolbox", depends_on=("base",)),
    ImageSpec("pause", "labctl/pause", "latest", "pause", busybox=True),
    ImageSpec("web:v1", "labctl/web", "v1", "web", build_args=(("VERSION", "v1"),), busybox=True),
    ImageSpec("web:v2", "labctl/web", "v2", "web", build_args=(("VERSION", "v2"),), busybox=True),
    ImageSpec("nginx:v1", "labctl/nginx", "v1", "nginx", depends_on=("base",), build_args=(("VERSION", "v1"),)),
    ImageSpec("nginx:v2", "labctl/nginx", "v2", "nginx", depends_on=("base",), build_args=(("VERSION", "v2"),)),
    ImageSpec("ingress-nginx", "labctl/ingress-nginx", "latest", "ingress-nginx", depends_on=("nginx:v1",),
              wheelhouse=True),
)
_BY_KEY = {spec.key: spec for spec in IMAGES}


@dataclass(frozen=True)
class ImageStatus:
    """What the Docker engine has for one lab image."""

    key: str
    ref: str                  # wanted tag: labctl/node:<hash12>
    alias_ref: str            # labctl/node:latest
    present: bool             # the wanted tag exists: the image is current
    stale: bool               # the alias exists but points at an older build
    size: int | None = None   # bytes, of the current image
    image_id: str | None = None

    @property
    def state(self) -> str:
        return "ok" if self.present else ("stale" if self.stale else "missing")


def source_root() -> Path:
    """Return the labctl checkout that holds ``images/`` (``LABCTL_SOURCE`` overrides)."""
    env = os.environ.get("LABCTL_SOURCE")
    root = Path(env) if env else Path(__file__).resolve().parents[1]
    if not (root / "images").is_dir() or not (root / "pyproject.toml").is_file():
        raise LabctlImageError(
            f"cannot find labctl's images/ directory in {str(root)!r}: install labctl from its "
            "checkout with 'pip install -e' or set LABCTL_SOURCE to the checkout")
    return root


def _build_dir(root: Path) -> Path:
    return Path(os.environ.get("LABCTL_IMAGE_CACHE", root / "images" / ".build"))


def resolve(names: list[str] | None = None) -> list[ImageSpec]:
    """Return the specs for ``names`` plus their dependencies, in build order.

    A name is a key (``web:v1``), a repository (``labctl/web``), a short repository name
    (``web``: both versions) or an alias ref (``labctl/web:v1``). ``None`` means all.
    """
    if names is None:
        return list(IMAGES)
    wanted: set[str] = set()
    for name in names:
        matches = [s.key for s in IMAGES if name in (s.key, s.repository, s.alias_ref,
                                                     s.repository.split("/", 1)[1])]
        if not matches:
            known = ", ".join(s.key for s in IMAGES)
            raise LabctlImageError(f"unknown image {name!r}: choose from {known}")
        wanted.update(matches)
    for spec in reversed(IMAGES):  # dependencies come earlier, so one reverse pass closes the set
        if spec.key in wanted:
            wanted.update(spec.depends_on)
    return [spec for spec in IMAGES if spec.key in wanted]


def _file_entries(paths: list[Path], base: Path) -> bytes:
    """What each of ``paths`` adds to an image's hash: its name, whether it is executable, its bytes' hash."""
    return b"".join(f"{path.relative_to(base)}\0{os.access(path, os.X_OK)}\0".encode()
                    + hashlib.sha256(path.read_bytes()).digest() for path in paths)


def content_hashes(root: Path | None = None) -> dict[str, str]:
    """Return ``{key: hash12}``: a hash of each image's build inputs (and its dependencies').

    Inputs: the files of ``images/<context>``, the build args, the host busybox for busybox
    images, and for the node image labctl's sources and pyproject (what its wheels are built
    from). The base image hashes its package list, not its bytes: debootstrap output is not
    reproducible, and the same packages make the same lab.
    """
    root = root or source_root()
    hashes: dict[str, str] = {}
    wheel_inputs = b""  # labctl's sources, read once for every image that installs its wheel
    for spec in IMAGES:
        digest = hashlib.sha256(f"{spec.key}\0{spec.build_args}\0".encode())
        context = root / "images" / spec.context
        digest.update(_file_entries(sorted(p for p in context.rglob("*") if p.is_file()), context))
        if spec.busybox:
            digest.update(hashlib.sha256(BUSYBOX.read_bytes()).digest() if BUSYBOX.exists() else b"")
        if spec.wheelhouse:
            wheel_inputs = wheel_inputs or (
                _file_entries(wheelhouse.wheel_input_paths(root), root)
                + wheelhouse.dependency_key(wheelhouse.read_dependencies(root)).encode())
            digest.update(wheel_inputs)
        for dep in spec.depends_on:
            digest.update(hashes[dep].encode())
        hashes[spec.key] = digest.hexdigest()[:12]
    return hashes


def _get_image(client: Any, ref: str) -> Any | None:
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def image_status(client: Any, root: Path | None = None, hashes: dict[str, str] | None = None,
                 tags: dict[str, dict] | None = None) -> list[ImageStatus]:
    """Return the status of every lab image, in build order (for ``hashes``, default: the sources
    now; from ``tags`` if given, :func:`_inspect`'s answers)."""
    hashes = hashes or content_hashes(root)
    if tags is None:
        tags = _inspect(client, _refs(hashes))
    result = []
    for spec in IMAGES:
        ref = spec.ref(hashes[spec.key])
        image = tags.get(ref)
        result.append(ImageStatus(
            key=spec.key, ref=ref, alias_ref=spec.alias_ref, present=image is not None,
            stale=image is None and spec.alias_ref in tags,
            size=image.get("Size") if image else None,
            image_id=image["Id"] if image else None))
    return result


def _aliased(tags: dict[str, dict], ref: str, alias_ref: str) -> bool:
    """``ref`` is built and its alias points at it."""
    return ref in tags and (tags.get(alias_ref) or {}).get("Id") == tags[ref]["Id"]


def _refs(hashes: dict[str, str]) -> list[str]:
    """Every lab image's alias ref and content-hash ref (the alias first: see :func:`_inspect`)."""
    return [ref for spec in IMAGES for ref in (spec.alias_ref, spec.ref(hashes[spec.key]))]


def _inspect(client: Any, refs: list[str]) -> dict[str, dict]:
    """``{ref: the engine's inspect of it}`` for those of ``refs`` that exist (one inspect each
    takes milliseconds; listing every image takes the engine half a second on a busy host, 0.7–1.4 s
    at load 30 with 380 images). An image's inspect names all its tags (``RepoTags``), so a ref
    among an earlier answer's tags is not asked for again: an alias that points at its current
    build answers for both, and ``up`` asks 9 times instead of 18."""
    import docker.errors

    wanted = set(refs)
    found: dict[str, dict] = {}
    for ref in refs:
        if ref in found:
            continue
        try:
            image = client.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            continue
        found[ref] = image
        for tag in image.get("RepoTags") or []:
            if tag in wanted:
                found.setdefault(tag, image)
    return found


@contextmanager
def _build_lock(build_dir: Path, report: Progress) -> Iterator[None]:
    """Serialize builds across processes (the CLI and a test run may both ensure images)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report("waiting for another labctl process that is building images", 0, 0)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_images(client: Any, names: list[str] | None = None, force: bool = False,
                  progress: Progress | None = None) -> list[ImageStatus]:
    """Build the lab images (``names`` and their dependencies; all by default) that are missing
    or stale, in dependency order; with ``force`` rebuild them anyway. Return their status.

    Current images are only (re)tagged with their alias, so a second call is a fast no-op.
    """
    report = progress or (lambda step, done, total: None)
    root = source_root()
    specs = resolve(names)
    wanted = {s.key for s in specs}
    if not force:
        # the common case (every `labctl up`): all built and aliased, seen in one listing,
        # so no waiting for the build lock that another process's build may hold
        hashes = content_hashes(root)
        tags = _inspect(client, _refs(hashes))
        if all(_aliased(tags, spec.ref(hashes[spec.key]), spec.alias_ref) for spec in specs):
            return [status for status in image_status(client, root, hashes, tags) if status.key in wanted]
    with _build_lock(_build_dir(root), report):
        hashes = content_hashes(root)
        todo = [s for s in specs if force or _get_image(client, s.ref(hashes[s.key])) is None]
        for done, spec in enumerate(todo):
            ref = spec.ref(hashes[spec.key])
            report(f"building {ref}", done, len(todo))
            _build_one(client, spec, hashes, root, log=partial(_report_line, report, ref, done, len(todo)))
        for spec in specs:
            _point_alias(client, spec, spec.ref(hashes[spec.key]))
        report("images ready", len(todo), len(todo))
    # the hashes this call built from: sources edited meanwhile must not name unbuilt tags
    return [status for status in image_status(client, root, hashes) if status.key in wanted]


def _report_line(report: Progress, ref: str, done: int, total: int, line: str) -> None:
    report(f"{ref}: {line}", done, total)


def _build_one(client: Any, spec: ImageSpec, hashes: dict[str, str], root: Path,
               log: LineSink) -> None:
    ref = spec.ref(hashes[spec.key])
    labels = {LABEL_IMAGE: spec.key, LABEL_HASH: hashes[spec.key]}
    build_dir = _build_dir(root)
    if spec.rootfs:
        source = os.environ.get("LABCTL_BASE_SOURCE", "auto")
        build_base_rootfs(client, ref, root / "images" / spec.context, build_dir, labels=labels,
                          log=log, source=source)
        return
    context = _prepare_context(spec, root, build_dir, log)
    build_args = dict(spec.build_args)
    if spec.depends_on:
        build_args["BASE"] = _BY_KEY[spec.depends_on[0]].ref(hashes[spec.depends_on[0]])
    docker_build(client, context, ref, build_args=build_args, labels=labels, log=log)


def _prepare_context(spec: ImageSpec, root: Path, build_dir: Path, log: LineSink) -> Path:
    """Assemble ``images/.build/context-<name>``: the image folder plus busybox/wheels."""
    context = build_dir / f"context-{spec.key.replace(':', '-')}"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(root / "images" / spec.context, context)
    if spec.busybox:
        if not BUSYBOX.is_file():
            raise LabctlImageError(f"failed to build {spec.key!r}: no static busybox at "
                                   f"{str(BUSYBOX)!r}: run 'apt-get install busybox-static'")
        shutil.copy2(BUSYBOX, context / "busybox")
    if spec.wheelhouse:
        deps = wheelhouse.ensure_dependency_wheels(root, build_dir / "wheelhouse", log)
        # Hard links keep the context cheap; the Docker layer cache keys on file contents.
        shutil.copytree(deps, context / "deps", copy_function=os.link)
        log("building the labctl wheel")
        wheelhouse.build_labctl_wheel(root, build_dir / "wheelhouse", context / "labctl", log)
    return context


#: a previous build's hash tag is dropped only once it is this old: two checkouts of labctl on
#: one machine (a student's clone and a teacher's, or a developer's worktrees) each build their own
#: images, and dropping the other's newer tag broke its next ``labctl up`` (``404 … containers/create``)
KEEP_PREVIOUS_BUILDS = 24 * 3600


def _point_alias(client: Any, spec: ImageSpec, ref: str) -> None:
    """Tag ``ref`` with the spec's alias and drop the previous build's hash tag, if unused and a day old."""
    image = client.images.get(ref)
    old = _get_image(client, spec.alias_ref)
    if old is not None and old.id == image.id:
        return
    repository, tag = spec.alias_ref.rsplit(":", 1)
    image.tag(repository, tag)
    if old is None or time.time() - _created(old) < KEEP_PREVIOUS_BUILDS:
        return
    for old_ref in old.tags:
        if old_ref.startswith(f"{spec.repository}:") and old_ref != spec.alias_ref:
            try:  # a running pod may still use the old build: then it stays until the next call
                client.images.remove(old_ref, noprune=False)
            except Exception:
                pass


def _created(image: Any) -> float:
    """When Docker built ``image`` (seconds since the epoch)."""
    built = parse_time(image.attrs["Created"])
    return built.timestamp() if built else 0.0
