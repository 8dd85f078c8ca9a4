"""NetworkPolicy in the API server: upstream's defaults, 422 field paths and ``kubectl get`` columns."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from labctl.apiserver.strategies import strategy_for
from labctl.kube.printers import build_table


def policy(**spec) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": "default"}, "spec": spec}


def defaulted(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    strategy_for("networkpolicies").default(obj)
    return obj


def errors(obj: dict) -> list[str]:
    return [str(e) for e in strategy_for("networkpolicies").validate(defaulted(obj))]


@pytest.mark.parametrize("spec, types", [
    ({}, ["Ingress"]),  # the classic default deny of ingress
    ({"ingress": [{}]}, ["Ingress"]),
    ({"egress": [{}]}, ["Ingress", "Egress"]),
    ({"egress": [{}], "policyTypes": ["Egress"]}, ["Egress"]),
])
def test_policy_types_default_from_the_rules(spec, types):
    assert defaulted(policy(**spec))["spec"]["policyTypes"] == types


def test_missing_pod_selector_and_port_protocol_are_defaulted():
    spec = defaulted(policy(ingress=[{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]))["spec"]
    assert spec["podSelector"] == {}
    assert spec["ingress"][0]["ports"] == [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]


def test_a_typical_policy_is_valid():
    assert errors(policy(
        podSelector={"matchLabels": {"app": "web"}},
        ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {}},
                           {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}}],
                  "ports": [{"port": "http"}, {"port": 8000, "endPort": 8080}]}],
        egress=[{"to": [{"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                 "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}])) == []


@pytest.mark.parametrize("spec, expected", [
    ({"ingress": [{"ports": [{"port": 80, "endPort": 79}]}]},
     ["spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`"]),
    ({"ingress": [{"ports": [{"port": "http", "endPort": 90}]}]},
     ["spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"]),
    ({"egress": [{"ports": [{"endPort": 90}]}]},
     ["spec.egress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"]),
    ({"ingress": [{"ports": [{"port": 70000}]}]},
     ["spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    ({"ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]},
     ['spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"']),
    ({"ingress": [{"from": [{}]}]}, ["spec.ingress[0].from[0]: Required value: must specify a peer"]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
     ["spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer"]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/24"]}}]}]},
     ['spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "192.168.0.0/24": must be a strict subset of `cidr`']),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}]},
     ['spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`']),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]},
     ['spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.300/8": '
      'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)']),
    ({"ingress": [{"from": [{"ipBlock": {}}]}]}, ["spec.ingress[0].from[0].ipBlock.cidr: Required value"]),
    ({"policyTypes": ["Ingress", "Sideways"]},
     ['spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"']),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     ["spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
      "'NotIn'"]),
])
def test_invalid_policies_report_upstreams_errors(spec, expected):
    assert errors(policy(**spec)) == expected


def test_get_prints_name_pod_selector_age():
    now = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
    objects = [defaulted(policy(podSelector={"matchLabels": {"app": "web"}})), defaulted(policy())]
    for obj in objects:
        obj["metadata"]["creationTimestamp"] = "2026-12-07T09:59:00Z"
    table = build_table(strategy_for("networkpolicies").printer, objects, now=now)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Pod-Selector", "Age"]
    assert [r["cells"] for r in table["rows"]] == [["p", "app=web", "60s"], ["p", "<none>", "60s"]]
