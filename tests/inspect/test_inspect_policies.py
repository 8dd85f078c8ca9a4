"""labctl's NetworkPolicy chains read back (``labctl net``): the isolated pods, their policies' rules."""

from __future__ import annotations

from labctl.apiserver.defaults import default_network_policy
from labctl.inspect.policies import isolated_pods
from labctl.inspect.ruleset import parse_ruleset
from labctl.netpol.model import pod_info, policy_info
from labctl.netpol.rules import build_ruleset


def _pod(ns: str, name: str, ip: str, node: str, **labels: str):
    return pod_info({"metadata": {"namespace": ns, "name": name, "labels": labels}, "spec": {"nodeName": node},
                     "status": {"podIP": ip}})


def _policy(ns: str, name: str, **spec):
    obj = {"metadata": {"namespace": ns, "name": name}, "spec": spec}
    default_network_policy(obj)
    return policy_info(obj)


def test_isolated_pods_and_what_their_rules_allow():
    pods = [_pod("x", "a", "10.244.1.2", "worker", app="web"), _pod("x", "b", "10.244.2.2", "worker2", app="client")]
    policies = [_policy("x", "web", podSelector={"matchLabels": {"app": "web"}}, policyTypes=["Ingress", "Egress"],
                        ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"port": 80}]},
                                 {"from": [{"podSelector": {"matchLabels": {"app": "nobody"}}}]}])]
    text = build_ruleset(policies, pods, {"x": {}}, "worker").text
    saved = "\n".join(line for line in text.splitlines() if not line.startswith(("-I ", "-X "))) + "\n"
    egress, ingress = isolated_pods(parse_ruleset(saved))
    assert (egress.pod, egress.ip, egress.direction, egress.policies, egress.rules) == (
        "x/a", "10.244.1.2", "egress", ("x/web",), ())  # default-denied: no egress rule
    assert (ingress.direction, ingress.chain.startswith("LABCTL-POD-INGRESS-")) == ("ingress", True)
    first, second = ingress.rules
    assert (first.policy, first.direction, first.index) == ("x/web", "ingress", 0)
    assert first.allows == ("from pods app=client in x (x/b), port TCP/80",)
    assert (second.index, second.allows) == (1, ())
    assert isolated_pods(parse_ruleset(build_ruleset(policies, pods, {"x": {}}, "worker2").text)) == []
