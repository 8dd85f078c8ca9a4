"""The library API the node agent uses (labctl.cni.invoke), run inside a node netns."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from cni_helpers import REPO, Flavour, unique

pytestmark = pytest.mark.root

# invoke execs plugins in the caller's netns, so the caller must sit in the node.
AGENT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from labctl.cni import invoke
from labctl.cni.types import CNIError
req = json.loads(sys.stdin.read())
out = {}
try:
    kw = dict(cni_path=[req["cni_path"]])
    res = invoke.add(req["conf"], req["cid"], req["netns"], **kw)
    out["add"] = res
    invoke.check(req["conf"], req["cid"], req["netns"], res, **kw)
    out["check"] = "ok"
    invoke.delete(req["conf"], req["cid"], req["netns"], **kw)
    invoke.delete(req["conf"], req["cid"], req["netns"], **kw)
    out["delete"] = "ok"
    out["version"] = invoke.version(req["conf"].get("type") or req["conf"]["plugins"][0]["type"], **kw)
except CNIError as err:
    out["error"] = {"code": err.code, "msg": err.msg}
print(json.dumps(out))
"""


def run_agent(labctl: Flavour, conf: dict[str, Any], netns: str) -> dict[str, Any]:
    req = {"conf": conf, "cid": unique("c"), "netns": netns, "cni_path": str(labctl.cni_bin)}
    proc = subprocess.run(["nsenter", f"--net={labctl.node.path}", sys.executable, "-c", AGENT, str(REPO)],
                          input=json.dumps(req), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_add_check_delete_through_library(labctl: Flavour, netns_factory: Any) -> None:
    out = run_agent(labctl, labctl.netconf(), netns_factory().path)
    assert out.get("error") is None, out
    assert out["add"]["ips"][0]["address"].startswith("10.244.1.")
    assert (out["check"], out["delete"]) == ("ok", "ok")
    assert "1.0.0" in out["version"]["supportedVersions"]


def test_conflist_runs_like_libcni(labctl: Flavour, netns_factory: Any) -> None:
    plugin = {k: v for k, v in labctl.netconf().items() if k not in ("cniVersion", "name")}
    conflist = {"cniVersion": "1.0.0", "name": "labctl", "plugins": [plugin]}
    out = run_agent(labctl, conflist, netns_factory().path)
    assert out.get("error") is None, out
    assert out["add"]["interfaces"][2]["name"] == "eth0"


def test_plugin_error_becomes_cnierror(labctl: Flavour, netns_factory: Any) -> None:
    out = run_agent(labctl, labctl.netconf(ipam={"type": "labctl-host-local", "ranges": []}), netns_factory().path)
    assert out["error"]["code"] == 7 and "ranges" in out["error"]["msg"]
    out = run_agent(labctl, labctl.netconf(type="no-such-plugin"), netns_factory().path)
    assert out["error"]["code"] == 7 and "failed to find plugin 'no-such-plugin'" in out["error"]["msg"]
