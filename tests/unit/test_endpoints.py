"""Endpoints subsets, LoadBalancer IP choice and the announcing node (pure logic, no cluster)."""

from __future__ import annotations

from labctl.agent.lbannounce import announced_ips, announcer_for, eligible_nodes, gratuitous_arp_frame
from labctl.clusterconfig import load_balancer_pool
from labctl.controllers.endpoints import build_subsets, desired_labels, endpoints_relevant, find_port
from labctl.controllers.loadbalancer import choose_ip, parse_pool


def svc(ports=None, selector=None, name="web", **spec) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"selector": selector or {"app": "web"}, "clusterIP": "10.96.0.20",
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": 8080,
                                                                "protocol": "TCP"}], **spec}}


def pod(name: str, ip: str, ready: bool = True, node: str = "worker", ports=None, **meta) -> dict:
    containers = [{"name": "app", "ports": ports or [{"name": "http", "containerPort": 8080}]}]
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": {"app": "web"}, **meta},
            "spec": {"nodeName": node, "containers": containers},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def ips(subset: dict, key: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(key, [])]


def test_ready_and_not_ready_pods_are_split_and_sorted():
    subsets = build_subsets(svc(), [pod("b", "10.244.1.10"), pod("a", "10.244.2.9"), pod("c", "10.244.1.7", ready=False)])
    assert len(subsets) == 1
    assert ips(subsets[0]) == ["10.244.1.10", "10.244.2.9"]
    assert ips(subsets[0], "notReadyAddresses") == ["10.244.1.7"]
    assert subsets[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    first = subsets[0]["addresses"][0]
    assert first["nodeName"] == "worker"
    assert first["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}


def test_terminating_pods_leave_at_once_and_pods_without_ip_or_finished_are_skipped():
    terminating = pod("t", "10.244.1.5", deletionTimestamp="2026-11-30T12:00:00Z")
    no_ip = pod("n", "")
    done = pod("d", "10.244.1.6")
    done["status"]["phase"] = "Succeeded"
    subsets = build_subsets(svc(), [terminating, no_ip, done, pod("ok", "10.244.1.8")])
    assert [(ips(s), ips(s, "notReadyAddresses")) for s in subsets] == [(["10.244.1.8"], [])]


def test_publish_not_ready_addresses_puts_every_pod_under_addresses():
    subsets = build_subsets(svc(publishNotReadyAddresses=True),
                            [pod("a", "10.244.1.2", ready=False), pod("b", "10.244.1.3")])
    assert ips(subsets[0]) == ["10.244.1.2", "10.244.1.3"]
    assert "notReadyAddresses" not in subsets[0]


def test_named_target_port_resolves_per_pod_and_groups_subsets_by_port():
    service = svc(ports=[{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    a = pod("a", "10.244.1.2", ports=[{"name": "http", "containerPort": 8080}])
    b = pod("b", "10.244.1.3", ports=[{"name": "http", "containerPort": 9090}])
    c = pod("c", "10.244.1.4", ports=[{"name": "other", "containerPort": 80}])  # no "http": left out
    subsets = build_subsets(service, [a, b, c])
    assert [(ips(s), s["ports"][0]["port"]) for s in subsets] == [(["10.244.1.2"], 8080), (["10.244.1.3"], 9090)]
    assert all(s["ports"][0]["name"] == "web" for s in subsets)


def test_find_port_numeric_default_and_protocol():
    assert find_port(pod("a", "1.1.1.1"), {"port": 80, "targetPort": 8080}) == 8080
    assert find_port(pod("a", "1.1.1.1"), {"port": 80}) == 80
    udp = {"port": 53, "targetPort": "http", "protocol": "UDP"}
    assert find_port(pod("a", "1.1.1.1"), udp) is None  # the named port is TCP


def test_multi_port_service_lists_every_port_in_one_subset():
    service = svc(ports=[{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                         {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP"}])
    subsets = build_subsets(service, [pod("a", "10.244.1.2")])
    assert [p["name"] for p in subsets[0]["ports"]] == ["http", "metrics"]


def test_headless_service_labels_and_hostname():
    service = svc(clusterIP="None")
    assert desired_labels(service) == {"app": "web", "service.kubernetes.io/headless": ""}
    p = pod("a", "10.244.1.2")
    p["spec"].update(hostname="db-0", subdomain="web")
    assert build_subsets(service, [p])[0]["addresses"][0]["hostname"] == "db-0"


def test_no_pods_means_no_subsets():
    assert build_subsets(svc(), []) == []


def test_status_only_changes_do_not_matter_but_readiness_does():
    a = pod("a", "10.244.1.2")
    b = pod("a", "10.244.1.2")
    b["status"]["containerStatuses"] = [{"restartCount": 3}]
    assert endpoints_relevant(a) == endpoints_relevant(b)
    assert endpoints_relevant(a) != endpoints_relevant(pod("a", "10.244.1.2", ready=False))


# -- LoadBalancer IPs -------------------------------------------------------------------------
def lb(name: str, ip: str | None = None, requested: str | None = None) -> dict:
    s = svc(name=name, type="LoadBalancer")
    if requested:
        s["spec"]["loadBalancerIP"] = requested
    if ip:
        s["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
    return s


def test_pool_is_the_top_of_the_lab_subnet():
    pool = load_balancer_pool("172.30.3.2")
    assert pool[0] == "172.30.3.200" and pool[-1] == "172.30.3.250" and len(pool) == 51
    assert parse_pool("10.0.0.5-10.0.0.7") == ["10.0.0.5", "10.0.0.6", "10.0.0.7"]
    assert parse_pool("10.0.0.0/30") == ["10.0.0.1", "10.0.0.2"]


def test_choose_ip_keeps_requested_and_lowest_free():
    pool = load_balancer_pool("172.30.0.2")
    assert choose_ip(lb("a"), pool, {}) == ("172.30.0.200", "")
    assert choose_ip(lb("b"), pool, {"172.30.0.200": "default/a"}) == ("172.30.0.201", "")
    assert choose_ip(lb("a", ip="172.30.0.210"), pool, {"172.30.0.200": "default/x"}) == ("172.30.0.210", "")
    assert choose_ip(lb("c", requested="172.30.0.240"), pool, {}) == ("172.30.0.240", "")
    ip, why = choose_ip(lb("c", requested="172.30.0.240"), pool, {"172.30.0.240": "default/a"})
    assert ip is None and "already used by service default/a" in why
    ip, why = choose_ip(lb("d", requested="10.1.1.1"), pool, {})
    assert ip is None and "not in the pool" in why
    ip, why = choose_ip(lb("e"), ["172.30.0.200"], {"172.30.0.200": "default/a"})
    assert ip is None and "no available IP" in why


# -- the announcing node ----------------------------------------------------------------------
POOL = load_balancer_pool("172.30.0.2")


def node(name: str, ready: bool = True, control_plane: bool = False) -> dict:
    labels = {"node-role.kubernetes.io/control-plane": ""} if control_plane else {}
    return {"metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_eligible_nodes_prefer_ready_workers():
    nodes = [node("control-plane", control_plane=True), node("worker"), node("worker2", ready=False)]
    assert eligible_nodes(nodes) == ["worker"]
    assert eligible_nodes([node("control-plane", control_plane=True), node("worker", ready=False)]) == ["control-plane"]


def test_announcer_is_deterministic_and_moves_only_for_a_leaving_node():
    ips_ = [f"172.30.0.{i}" for i in range(200, 240)]
    three = {ip: announcer_for(ip, ["w1", "w2", "w3"]) for ip in ips_}
    assert set(three.values()) == {"w1", "w2", "w3"}  # spread
    two = {ip: announcer_for(ip, ["w1", "w3"]) for ip in ips_}
    assert all(two[ip] == three[ip] for ip in ips_ if three[ip] != "w2")  # rendezvous: others stay
    assert announcer_for("172.30.0.200", []) is None


def test_each_ip_is_announced_by_exactly_one_node_and_local_policy_needs_an_endpoint():
    nodes = [node("worker"), node("worker2")]
    services = [lb(f"s{i}", ip=f"172.30.0.{200 + i}") for i in range(6)]
    per_node = [announced_ips(n, services, nodes, {}, POOL) for n in ("worker", "worker2")]
    assert per_node[0] | per_node[1] == {f"172.30.0.{200 + i}" for i in range(6)} and not per_node[0] & per_node[1]
    local = lb("local", ip="172.30.0.250")
    local["spec"]["externalTrafficPolicy"] = "Local"
    eps = {("default", "local"): [{"endpoints": [
        {"addresses": ["10.244.2.3"], "nodeName": "worker2", "conditions": {"ready": True}},
        {"addresses": ["10.244.1.3"], "nodeName": "worker", "conditions": {"ready": False, "terminating": True}}]}]}
    assert "172.30.0.250" in announced_ips("worker2", [local], nodes, eps, POOL)
    assert not announced_ips("worker", [local], nodes, eps, POOL)
    assert not announced_ips("worker2", [local], nodes, {}, POOL)


def test_gratuitous_arp_frame_layout():
    frame = gratuitous_arp_frame(bytes.fromhex("0242ac1e0002"), "172.30.0.200")
    assert len(frame) == 42 and frame[:6] == b"\xff" * 6 and frame[12:14] == b"\x08\x06"
    assert frame[28:32] == frame[38:42] == bytes([172, 30, 0, 200])  # sender IP == target IP


# -- EndpointSlices ---------------------------------------------------------------------------
def test_slices_keep_terminating_pods_flagged_and_group_by_port_set():
    from labctl.controllers.endpointslice import desired_slices, endpoints_from_pods

    terminating = pod("t", "10.244.1.5", deletionTimestamp="2026-11-30T12:00:00Z")
    other_port = pod("o", "10.244.1.6", ports=[{"name": "http", "containerPort": 9090}])
    service = svc(ports=[{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    slices = desired_slices(service, endpoints_from_pods(service, [pod("a", "10.244.1.2"), terminating, other_port]),
                            "endpointslice-controller.k8s.io")
    assert [[e["addresses"][0] for e in s["endpoints"]] for s in slices] == [["10.244.1.2", "10.244.1.5"], ["10.244.1.6"]]
    conditions = {e["addresses"][0]: e["conditions"] for s in slices for e in s["endpoints"]}
    assert conditions["10.244.1.5"] == {"ready": False, "serving": True, "terminating": True}
    assert conditions["10.244.1.2"] == {"ready": True, "serving": True, "terminating": False}
    assert slices[0]["labels"]["kubernetes.io/service-name"] == "web"
    assert "service.kubernetes.io/headless" not in slices[0]["labels"]
    # a headless Service's slices say so: the node proxies do not watch them
    headless = desired_slices(svc(clusterIP="None"), {}, "endpointslice-controller.k8s.io")
    assert headless[0]["labels"]["service.kubernetes.io/headless"] == ""


def test_publish_not_ready_addresses_makes_slice_endpoints_ready_even_while_terminating():
    from labctl.controllers.endpointslice import endpoints_from_pods

    service = svc(publishNotReadyAddresses=True)
    terminating = pod("t", "10.244.1.5", deletionTimestamp="2026-11-30T12:00:00Z")
    ((_ports, (ep,)),) = endpoints_from_pods(service, [terminating]).values()
    assert ep["conditions"] == {"ready": True, "serving": True, "terminating": True}


def test_selected_service_without_pods_gets_one_empty_slice_and_mirroring_copies_endpoints():
    from labctl.controllers.endpointslice import desired_slices, endpoints_from_endpoints

    assert [s["endpoints"] for s in desired_slices(svc(), {}, "x")] == [[]]
    eps = {"subsets": [{"addresses": [{"ip": "192.0.2.1"}], "notReadyAddresses": [{"ip": "192.0.2.2"}],
                        "ports": [{"port": 5432}]}]}
    (only,) = desired_slices(svc(selector={}), endpoints_from_endpoints(eps), "endpointslicemirroring-controller.k8s.io")
    assert [(e["addresses"], e["conditions"]["ready"]) for e in only["endpoints"]] == [
        (["192.0.2.1"], True), (["192.0.2.2"], False)]
    assert only["ports"] == [{"name": "", "port": 5432, "protocol": "TCP"}]
