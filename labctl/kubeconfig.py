"""Writing kubeconfig files for the real kubectl.

labctl writes one context per lab, ``labctl-<name>``, with the cluster CA and an admin
client certificate embedded, and merges it into the user's kubeconfig (``$KUBECONFIG``'s
first file, else ``~/.kube/config``) without disturbing other contexts — the way kind does.

Every read-modify-write of a kubeconfig holds a host-wide lock, so two
``labctl up`` at once keep both contexts; the new content is written to a temporary file
created 0600 (it holds a private key) and renamed over the old one, so a reader sees the old
file or the new one, never half of one.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

import yaml

from .filelock import locked

#: one host-wide lock for every kubeconfig merge: they take milliseconds, and a lock file per
#: kubeconfig path would pile up in /run/lock
KUBECONFIG_LOCK = "kubeconfig"


def context_name(cluster: str) -> str:
    return f"labctl-{cluster}"


def build_kubeconfig(cluster: str, server: str, ca_pem: bytes, client_cert_pem: bytes,
                     client_key_pem: bytes) -> dict:
    """A complete kubeconfig with one cluster, user and context named ``labctl-<cluster>``."""
    name = context_name(cluster)
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": name, "user": {"client-certificate-data": b64(client_cert_pem),
                                          "client-key-data": b64(client_key_pem)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def current_entries(config: dict) -> tuple[dict, dict]:
    """The current context's ``cluster`` and ``user`` sections (the first context's when none is
    current), as the API client and a node's supervisor read them."""
    context_name = config.get("current-context") or config["contexts"][0]["name"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    return cluster, user


def default_path() -> Path:
    """The file kubectl reads first: ``$KUBECONFIG``'s first entry or ``~/.kube/config``."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first) if first else Path.home() / ".kube" / "config"


def write_kubeconfig(path: Path, config: dict) -> None:
    """Replace the file at ``path`` (following a symlink) with ``config``, mode 0600, atomically.

    The temporary file has a unique name and is created 0600 (``mkstemp``): a fixed name
    raced with another writer, and a file made with the umask's 0644 showed the key to
    every user until its mode was fixed.
    """
    target = path.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(yaml.safe_dump(config, sort_keys=False))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise



def _load(path: Path) -> dict:
    if not path.exists() or not path.read_text().strip():
        return {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [],
                "contexts": [], "current-context": ""}
    data = yaml.safe_load(path.read_text()) or {}
    for section in ("clusters", "users", "contexts"):
        data[section] = data.get(section) or []
    return data


def merge_kubeconfig(path: Path, config: dict, set_current: bool = True) -> None:
    """Add or replace the entries of ``config`` in the kubeconfig at ``path``."""
    with locked(KUBECONFIG_LOCK):
        existing = _load(path)
        for section in ("clusters", "users", "contexts"):
            names = {entry["name"] for entry in config[section]}
            existing[section] = [e for e in existing[section] if e.get("name") not in names] + config[section]
        if set_current:
            existing["current-context"] = config["current-context"]
        write_kubeconfig(path, existing)


def remove_context(path: Path, cluster: str) -> bool:
    """Remove ``labctl-<cluster>`` entries; return whether anything was removed."""
    if not path.exists():
        return False
    with locked(KUBECONFIG_LOCK):
        existing = _load(path)
        name = context_name(cluster)
        removed = False
        for section in ("clusters", "users", "contexts"):
            kept = [e for e in existing[section] if e.get("name") != name]
            removed |= len(kept) != len(existing[section])
            existing[section] = kept
        if existing.get("current-context") == name:
            existing["current-context"] = ""
        if removed:
            write_kubeconfig(path, existing)
    return removed
