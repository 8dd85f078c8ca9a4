"""The real kubectl (v1.37) with NetworkPolicies against labctl's API server process.

What a student types in the NetworkPolicy lesson: apply, get (``netpol``), describe,
explain, edit by apply, delete, and a wrong policy refused with upstream's 422.
Enforcement is the lab's (``tests/netpol/test_netpol_lab.py``).
"""

from __future__ import annotations

import pytest

from labctl.cluster.kubectl import Kubectl

pytestmark = pytest.mark.kubectl

POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-clients
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          team: shop
      podSelector:
        matchLabels:
          role: client
    - ipBlock:
        cidr: 172.17.0.0/16
        except: [172.17.1.0/24]
    ports:
    - port: http
    - port: 8000
      endPort: 8080
"""
DENY_ALL = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
spec:
  podSelector: {}
"""


def test_apply_get_describe_explain_delete(kubectl: Kubectl, tmp_path):
    (tmp_path / "p.yaml").write_text(POLICY)
    (tmp_path / "deny.yaml").write_text(DENY_ALL)
    out = kubectl.run("apply", "-f", str(tmp_path / "p.yaml"), "-f", str(tmp_path / "deny.yaml")).stdout
    assert "networkpolicy.networking.k8s.io/web-from-clients created" in out
    assert "networkpolicy.networking.k8s.io/default-deny created" in out

    header, *rows = kubectl.run("get", "netpol").stdout.splitlines()
    assert header.split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert sorted(r.split()[:2] for r in rows) == [["default-deny", "<none>"], ["web-from-clients", "app=web"]]

    stored = kubectl.json("get", "networkpolicy", "web-from-clients")
    assert stored["spec"]["policyTypes"] == ["Ingress"]
    assert stored["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"},
                                                     {"port": 8000, "endPort": 8080, "protocol": "TCP"}]
    described = kubectl.run("describe", "networkpolicy", "web-from-clients").stdout
    assert "PodSelector:     app=web" in described
    assert "Allowing ingress traffic:" in described and "To Port: http/TCP" in described
    assert "NamespaceSelector: team=shop" in described and "PodSelector: role=client" in described
    assert "IPBlock:" in described and "Except: 172.17.1.0/24" in described
    assert "Not affecting egress traffic" in described

    assert "endPort" in kubectl.run("explain", "networkpolicy.spec.ingress.ports").stdout

    (tmp_path / "p.yaml").write_text(POLICY.replace("app: web", "app: shop"))
    assert "configured" in kubectl.run("apply", "-f", str(tmp_path / "p.yaml")).stdout
    changed = kubectl.json("get", "netpol", "web-from-clients")
    assert changed["spec"]["podSelector"] == {"matchLabels": {"app": "shop"}}
    assert changed["metadata"]["generation"] == 2

    assert 'networkpolicy.networking.k8s.io "default-deny" deleted' in kubectl.run(
        "delete", "netpol", "default-deny").stdout


def test_an_invalid_policy_is_refused_with_field_paths(kubectl: Kubectl, tmp_path):
    bad = POLICY.replace("except: [172.17.1.0/24]", "except: [10.0.0.0/8]").replace("endPort: 8080", "endPort: 7000")
    (tmp_path / "bad.yaml").write_text(bad)
    proc = kubectl.run("apply", "-f", str(tmp_path / "bad.yaml"), check=False)
    assert proc.returncode != 0
    assert 'The NetworkPolicy "web-from-clients" is invalid' in proc.stderr
    assert ('spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: "10.0.0.0/8": '
            "must be a strict subset of `cidr`") in proc.stderr
    assert "spec.ingress[0].ports[1].endPort: Invalid value: 8000: must be greater than or equal to `port`" in proc.stderr
    assert kubectl.run("get", "netpol", "-o", "name").stdout.strip() == ""
