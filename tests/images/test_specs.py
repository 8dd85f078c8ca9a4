"""Pure tests of the image table, name resolution and content hashing (no Docker)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labctl import images
from labctl.imagebuild import wheelhouse

ROOT = Path(__file__).resolve().parents[2]


def test_every_image_depends_only_on_earlier_ones():
    seen: set[str] = set()
    for spec in images.IMAGES:
        assert set(spec.depends_on) <= seen, spec.key
        assert (ROOT / "images" / spec.context).is_dir(), spec.context
        seen.add(spec.key)


@pytest.mark.parametrize("names, expected", [
    (["node"], ["base", "node"]),
    (["web"], ["web:v1", "web:v2"]),
    (["labctl/web:v2", "toolbox"], ["base", "toolbox", "web:v2"]),
    (["nginx"], ["base", "nginx:v1", "nginx:v2"]),
    (["ingress-nginx"], ["base", "nginx:v1", "ingress-nginx"]),
    (None, [s.key for s in images.IMAGES]),
])
def test_resolve_adds_dependencies_in_build_order(names, expected):
    assert [s.key for s in images.resolve(names)] == expected


def test_resolve_unknown_name_lists_the_choices():
    with pytest.raises(images.LabctlImageError, match=r"unknown image 'redis': choose from base, node"):
        images.resolve(["redis"])


def _fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    shutil.copytree(ROOT / "images", root / "images", ignore=shutil.ignore_patterns(".build"))
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "labctl").mkdir()
    (root / "labctl" / "__init__.py").write_text("__version__ = '0'\n")
    return root


def test_content_hash_follows_inputs_and_dependencies(tmp_path):
    root = _fake_root(tmp_path)
    before = images.content_hashes(root)
    assert images.content_hashes(root) == before, "hashing must be deterministic"
    assert before["web:v1"] != before["web:v2"], "build args are inputs"

    (root / "labctl" / "__init__.py").write_text("__version__ = '1'\n")
    after_code = images.content_hashes(root)
    changed = {k for k in before if before[k] != after_code[k]}
    assert changed == {"node", "ingress-nginx"}, "a labctl code change only makes the images with labctl stale"

    with open(root / "images" / "base" / "packages.txt", "a") as f:
        f.write("strace\n")
    after_base = images.content_hashes(root)
    changed = {k for k in before if after_code[k] != after_base[k]}
    assert changed == {"base", "node", "toolbox", "nginx:v1", "nginx:v2", "ingress-nginx"}, "a new base makes its dependants stale"


def test_pycache_does_not_change_the_node_hash(tmp_path):
    root = _fake_root(tmp_path)
    before = images.content_hashes(root)
    (root / "labctl" / "__pycache__").mkdir()
    (root / "labctl" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"x")
    assert images.content_hashes(root) == before


def test_wheelhouse_targets_the_node_python_not_the_host():
    args = wheelhouse.node_platform_args()
    platforms = args[1::2]
    assert platforms[0].startswith("manylinux_2_36_"), "bookworm's glibc first"
    assert any(p.startswith("manylinux2014_") for p in platforms), "most wheels use the legacy tag"
    key = wheelhouse.dependency_key(["a>=1", "b"])
    assert key == wheelhouse.dependency_key(["b", "a>=1"]), "order of requirements is irrelevant"
    assert key != wheelhouse.dependency_key(["a>=2", "b"])


def test_source_root_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_SOURCE", str(tmp_path))
    with pytest.raises(images.LabctlImageError, match="set LABCTL_SOURCE to the checkout"):
        images.source_root()


def test_missing_debootstrap_says_which_package_to_install(tmp_path, monkeypatch):
    from labctl.imagebuild import rootfs

    monkeypatch.setattr(rootfs.shutil, "which", lambda name, path=None: None)
    with pytest.raises(images.LabctlImageError, match=r"run 'apt-get install debootstrap'$"):
        rootfs.build_base_rootfs(object(), "labctl/base:x", ROOT / "images" / "base", tmp_path,
                                 labels={}, log=lambda line: None, source="debootstrap")
    assert rootfs.read_packages(ROOT / "images" / "base")[:2] == ["ca-certificates", "python3"]


class _Image:
    def __init__(self, image_id: str, tags: list[str], created: str) -> None:
        self.id, self.tags, self.attrs = image_id, tags, {"Created": created}

    def tag(self, repository: str, tag: str) -> None:
        self.tags.append(f"{repository}:{tag}")


class _Images:
    """The two calls of the Docker SDK's image collection that re-pointing an alias makes."""

    def __init__(self, *images: _Image) -> None:
        self.all, self.removed = list(images), []

    def get(self, ref: str) -> _Image:
        return next(i for i in self.all if ref in i.tags)

    def remove(self, ref: str, noprune: bool = False) -> None:
        self.removed.append(ref)


@pytest.mark.parametrize(("built", "dropped"), [("2026-12-05T10:00:00.123456789Z", True),
                                                ("2099-01-01T00:00:00Z", False)], ids=["a-day-old", "recent"])
def test_a_new_build_drops_the_previous_hash_tag_only_once_it_is_a_day_old(monkeypatch, built, dropped):
    """Two checkouts on one machine build different images; neither may drop the other's fresh one."""
    spec = images.resolve(["node"])[-1]
    old = _Image("old", [spec.alias_ref, spec.ref("a" * 12)], built)
    new = _Image("new", [spec.ref("b" * 12)], "2026-12-07T09:00:00Z")
    client = type("Client", (), {"images": _Images(old, new)})()
    monkeypatch.setattr(images, "_get_image", lambda c, ref: c.images.get(ref))
    images._point_alias(client, spec, spec.ref("b" * 12))
    assert spec.alias_ref in new.tags
    assert client.images.removed == ([spec.ref("a" * 12)] if dropped else [])
