"""Time to build the lab images: from scratch, a no-op re-check, and a node rebuild after a
labctl code change; plus the image sizes.

    python bench/images_build.py [--from-scratch [--clean-cache]] [--rebuild-base] [--out FILE]

--from-scratch removes every labctl/* image first (it refuses while containers use them) (not the wheelhouse cache under
images/.build; add --clean-cache for a truly cold build). Needs root (debootstrap) and Docker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl import images
from labctl.engine.sdk import connect


def remove_lab_images(client) -> int:
    users = [c.name for c in client.containers.list(all=True)
             if any(t.startswith("labctl/") for t in (c.image.tags if c.image else []))]
    if users:
        sys.exit(f"ERROR: labctl images are in use by {', '.join(sorted(users))}: "
                 "remove those containers (labctl down) before --from-scratch")
    removed = 0
    for image in client.images.list():
        if any(tag.startswith("labctl/") for tag in image.tags):
            client.images.remove(image.id, force=True)
            removed += 1
    return removed


def timed_ensure(client, names=None) -> tuple[float, dict[str, float]]:
    """Run ensure_images; return the total and the seconds spent per built image."""
    per_image: dict[str, float] = {}
    state = {"ref": None, "since": time.monotonic()}

    def progress(step: str, done: int, total: int) -> None:
        if step.startswith("building ") or step == "images ready":
            now = time.monotonic()
            if state["ref"]:
                per_image[state["ref"]] = round(now - state["since"], 1)
            state["ref"], state["since"] = step.removeprefix("building "), now

    started = time.monotonic()
    images.ensure_images(client, names=names, progress=progress)
    return round(time.monotonic() - started, 1), per_image


def node_rebuild_after_code_change(client, root: Path) -> float:
    """Build the node image from a copy of the checkout with one changed labctl file."""
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        copy = Path(tmp)
        shutil.copytree(root / "images", copy / "images", ignore=shutil.ignore_patterns(".build"))
        shutil.copytree(root / "labctl", copy / "labctl",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(root / "pyproject.toml", copy / "pyproject.toml")
        with open(copy / "labctl" / "__init__.py", "a") as f:
            f.write(f"# bench {time.time()}\n")
        os.environ["LABCTL_SOURCE"] = str(copy)
        os.environ["LABCTL_IMAGE_CACHE"] = str(root / "images" / ".build")  # reuse the wheelhouse
        try:
            seconds, _ = timed_ensure(client, ["node"])
        finally:
            del os.environ["LABCTL_SOURCE"], os.environ["LABCTL_IMAGE_CACHE"]
    images.ensure_images(client, ["node"])  # point labctl/node:latest back at the checkout
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-scratch", action="store_true", help="remove labctl/* images first")
    parser.add_argument("--clean-cache", action="store_true", help="also drop the wheelhouse cache")
    parser.add_argument("--rebuild-base", action="store_true",
                        help="time a forced rebuild of labctl/base alone (safe while labs run)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args()

    client = connect()
    root = images.source_root()
    figures: dict[str, object] = {"base_source": os.environ.get("LABCTL_BASE_SOURCE", "auto")}
    if args.from_scratch:
        figures["removed_images"] = remove_lab_images(client)
        if args.clean_cache:
            shutil.rmtree(root / "images" / ".build", ignore_errors=True)
    if args.rebuild_base:
        started = time.monotonic()
        images.ensure_images(client, ["base"], force=True)
        figures["base_forced_rebuild_s"] = round(time.monotonic() - started, 1)
    figures["build_s"], figures["build_per_image_s"] = timed_ensure(client)
    figures["noop_s"], _ = timed_ensure(client)
    figures["node_rebuild_after_code_change_s"] = node_rebuild_after_code_change(client, root)
    figures["sizes_mb"] = {s.alias_ref: round((s.size or 0) / 1e6, 1)
                           for s in images.image_status(client)}

    for key, value in figures.items():
        print(f"{key:36} {value}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
