"""The pure rule builder: policies + pods + namespaces in, this node's ``*filter`` restore text out.

The layout, written to be read next to kube-proxy's (``docs/networkpolicy.md`` walks a packet
through it)::

    FORWARD (first rule) -> LABCTL-NETPOL
      RELATED,ESTABLISHED                      -> RETURN  (replies of allowed connections)
      -s <local pod isolated for egress>       -> LABCTL-POD-EGRESS-<hash>
      -d <local pod isolated for ingress>      -> LABCTL-POD-INGRESS-<hash>

    LABCTL-POD-{INGRESS,EGRESS}-<hash>  one per isolated local pod and direction
      the pod itself (through its own Service) -> RETURN  (a pod cannot block access to itself)
      clear the "allowed" mark (0x10000)
      -> LABCTL-RULE-<hash>             one jump per rule of every policy selecting the pod
      mark set                          -> RETURN   (some rule allowed it: on to the next check)
      otherwise                         -> DROP

    LABCTL-RULE-<hash>                  one per policy rule: peers x ports, each line commented
      [-s|-d peer] [-p proto --dport N[:M]] -> MARK --set-xmark 0x10000/0x10000

Only pods on this node get chains: each node enforces ingress and egress for its own pods
in its FORWARD chain, which sees pod-to-pod traffic after kube-proxy's DNAT (a Service's
ClusterIP is already the backend pod's IP there) and bridged traffic between pods of one
node (``net.bridge.bridge-nf-call-iptables=1``). A rule chain is shared by every pod its
policy selects, except that a named port in an ingress rule is resolved per destination
pod (``-d <pod> --dport <its port>``); in an egress rule it is resolved per peer pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from labctl.proxy.chains import chain_hash

from .model import EGRESS, INGRESS, Peer, PodInfo, Policy, Port, Rule

NETPOL_CHAIN = "LABCTL-NETPOL"
POD_INGRESS_PREFIX = "LABCTL-POD-INGRESS-"
POD_EGRESS_PREFIX = "LABCTL-POD-EGRESS-"
RULE_PREFIX = "LABCTL-RULE-"
#: chains a sync owns: it may flush and delete any chain with one of these prefixes
CHAIN_PREFIXES = (NETPOL_CHAIN, "LABCTL-POD-", RULE_PREFIX)
#: the packet mark bit a rule chain sets when it allows a packet (kube-proxy uses 0x4000 and 0x8000)
ALLOWED_MARK = "0x10000"
FORWARD_JUMP_ARGS = '-m comment --comment "labctl network policies" -j ' + NETPOL_CHAIN
_MAX_COMMENT = 256  # the xt_comment limit


def pod_chain(direction: str, pod: PodInfo) -> str:
    """``LABCTL-POD-INGRESS-<8>``/``LABCTL-POD-EGRESS-<8>``: iptables allows 28 characters."""
    prefix = POD_INGRESS_PREFIX if direction == INGRESS else POD_EGRESS_PREFIX
    return prefix + chain_hash(f"{pod.key}/{pod.ip}", 8)


def rule_chain(policy: Policy, direction: str, index: int) -> str:
    """``LABCTL-RULE-<16>``, hashed from ``namespace/name/direction/index``."""
    return _rule_chain(f"{policy.key}/{direction}/{index}")


@lru_cache(maxsize=1 << 16)
def _rule_chain(key: str) -> str:
    return RULE_PREFIX + chain_hash(key)


def rule_title(policy: Policy, direction: str, index: int) -> str:
    """``policy demo/allow-web ingress rule 0``: how every comment names a rule."""
    return f"policy {policy.key} {direction.lower()} rule {index}"


@dataclass
class Ruleset:
    """The restore text, and every chain of ours with its rules as the kernel has them after it."""

    text: str
    rules: dict[str, list[str]] = field(default_factory=dict)
    isolated: dict[str, list[str]] = field(default_factory=dict)  # pod key -> directions

    @property
    def chains(self) -> set[str]:
        return set(self.rules)


def _c(text: str) -> str:
    text = text.replace('"', "'")
    return f'-m comment --comment "{text[:_MAX_COMMENT]}"'


def _port_match(protocol: str, port: int | str | None, end_port: int | None) -> str:
    match = f"-p {protocol.lower()}"
    if port is None:
        return match
    return f"{match} --dport {port}:{end_port}" if end_port is not None else f"{match} --dport {port}"


def _mark(parts: Sequence[str], comment: str) -> str:
    return " ".join([*(p for p in parts if p), _c(comment), f"-j MARK --set-xmark {ALLOWED_MARK}/{ALLOWED_MARK}"])


class _Builder:
    """One pass over the policies; the state of a build (policies by namespace, peers resolved once)."""

    def __init__(self, policies: Iterable[Policy], pods: Iterable[PodInfo],
                 namespaces: Mapping[str, Mapping[str, str]], node_name: str) -> None:
        self.pods = sorted(pods, key=lambda p: p.key)
        self.local = [p for p in self.pods if p.node == node_name]
        self.namespaces = namespaces
        self.by_namespace: dict[str, list[Policy]] = {}
        for policy in sorted(policies, key=lambda p: p.key):
            self.by_namespace.setdefault(policy.namespace, []).append(policy)
        self.chains: dict[str, list[str]] = {}
        #: rule chain -> (policy, direction, rule index, the local pods it guards)
        self.rule_targets: dict[str, tuple[Policy, str, int, list[PodInfo]]] = {}
        self._selected: dict[tuple[str, Peer], list[PodInfo]] = {}  # policies share peers: resolve each once

    def build(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        top = [f"-A {NETPOL_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED "
               f"{_c('replies and related packets of allowed connections')} -j RETURN"]
        isolated: dict[str, list[str]] = {}
        selecting_pod = {pod.key: [p for p in self.by_namespace.get(pod.namespace, ()) if p.pods.matches(pod.labels)]
                         for pod in self.local}
        for direction, flag in ((EGRESS, "-s"), (INGRESS, "-d")):
            for pod in self.local:
                selecting = [p for p in selecting_pod[pod.key] if direction in p.types]
                if not selecting:
                    continue
                isolated.setdefault(pod.key, []).append(direction)
                chain = pod_chain(direction, pod)
                names = ",".join(p.key for p in selecting)
                top.append(f"-A {NETPOL_CHAIN} {flag} {pod.ip}/32 "
                           f"{_c(f'pod {pod.key} is isolated for {direction.lower()} by {names}')} -j {chain}")
                self.chains[chain] = self._pod_chain(chain, pod, direction, selecting)
        self.chains = {NETPOL_CHAIN: top, **self.chains}
        for chain, (policy, direction, index, targets) in self.rule_targets.items():
            self.chains[chain] = [f"-A {chain} {line}" for line in
                                  self._rule_lines(policy, direction, index, policy.rules(direction)[index], targets)]
        return self.chains, isolated

    def _pod_chain(self, chain: str, pod: PodInfo, direction: str, selecting: list[Policy]) -> list[str]:
        peer_flag = "-s" if direction == INGRESS else "-d"
        lines = [f"-A {chain} {peer_flag} {pod.ip}/32 {_c(f'pod {pod.key} may always reach itself')} -j RETURN",
                 f"-A {chain} {_c(f'pod {pod.key} {direction.lower()}: no rule has allowed this packet yet')} "
                 f"-j MARK --set-xmark 0x0/{ALLOWED_MARK}"]
        for policy in selecting:
            for index in range(len(policy.rules(direction))):
                target = rule_chain(policy, direction, index)
                self.rule_targets.setdefault(target, (policy, direction, index, []))[3].append(pod)
                lines.append(f"-A {chain} {_c(rule_title(policy, direction, index))} -j {target}")
        lines.append(f"-A {chain} -m mark --mark {ALLOWED_MARK}/{ALLOWED_MARK} "
                     f"{_c(f'pod {pod.key} {direction.lower()} allowed by a rule')} -j RETURN")
        names = ",".join(p.key for p in selecting)
        lines.append(f"-A {chain} {_c(f'pod {pod.key} {direction.lower()}: no rule of {names} allows this: drop')} "
                     f"-j DROP")
        return lines

    def _rule_lines(self, policy: Policy, direction: str, index: int, rule: Rule, targets: list[PodInfo]) -> list[str]:
        """Peers x ports of one rule, one MARK line each, the comment naming the peer and the port."""
        title = rule_title(policy, direction, index)
        flag, word = ("-s", "from") if direction == INGRESS else ("-d", "to")
        ports: Sequence[Port | None] = rule.ports or (None,)
        peers: Sequence[Peer | None] = rule.peers or (None,)
        lines: list[str] = []
        for peer in peers:
            what = f"{word} {peer.describe(policy.namespace)}" if peer else f"{word} anywhere"
            addresses = self._addresses(policy, peer)
            for port in ports:
                port_text = f", port {port.text}" if port else ""
                if port is not None and isinstance(port.port, str):
                    lines += self._named_port_lines(policy, direction, peer, port, targets, f"{title}: {what}")
                    continue
                match = _port_match(port.protocol, port.port, port.end_port) if port else ""
                for address, who in addresses:
                    source = f"{flag} {address}" if address else ""
                    lines.append(_mark([source, match], f"{title}: {what}{who}{port_text}"))
        return lines

    def _addresses(self, policy: Policy, peer: Peer | None) -> list[tuple[str, str]]:
        """(address to match, which pod it is) for a peer; ``("", "")`` for everyone."""
        if peer is None:
            return [("", "")]
        if peer.ip_block is not None:
            return [(str(net), "") for net in peer.ip_block.networks()]
        return [(f"{pod.ip}/32", f" ({pod.key})") for pod in self._selected_by(policy, peer)]

    def _selected_by(self, policy: Policy, peer: Peer) -> list[PodInfo]:
        """The pods a selector peer stands for (in the policy's namespace unless it has a namespaceSelector)."""
        key = (policy.namespace if peer.namespaces is None else "", peer)
        if key not in self._selected:
            self._selected[key] = [pod for pod in self.pods if peer.selects(pod, policy.namespace, self.namespaces)]
        return self._selected[key]

    def _named_port_lines(self, policy: Policy, direction: str, peer: Peer | None, port: Port,
                          targets: list[PodInfo], text: str) -> list[str]:
        """A named port means a number per pod: the destination pod's container port of that name."""
        name, lines = str(port.port), []
        if direction == INGRESS:
            addresses = self._addresses(policy, peer)
            for pod in targets:
                number = pod.named_ports.get((name, port.protocol))
                if number is None:
                    continue
                for address, who in addresses:
                    source = f"-s {address}" if address else ""
                    lines.append(_mark([source, f"-d {pod.ip}/32", _port_match(port.protocol, number, None)],
                                       f"{text}{who}, port {port.protocol}/{name} ({number} on {pod.key})"))
            return lines
        for pod in self._destination_pods(policy, peer):
            number = pod.named_ports.get((name, port.protocol))
            if number is not None:
                lines.append(_mark([f"-d {pod.ip}/32", _port_match(port.protocol, number, None)],
                                   f"{text} ({pod.key}), port {port.protocol}/{name} ({number})"))
        return lines

    def _destination_pods(self, policy: Policy, peer: Peer | None) -> list[PodInfo]:
        if peer is None:
            return self.pods
        if peer.ip_block is not None:
            return [pod for pod in self.pods if peer.ip_block.contains(pod.ip)]
        return self._selected_by(policy, peer)


def build_ruleset(policies: Iterable[Policy], pods: Iterable[PodInfo], namespaces: Mapping[str, Mapping[str, str]],
                  node_name: str, existing_chains: Iterable[str] = (),
                  forward_rules: Sequence[str] | None = None,
                  applied: Mapping[str, list[str]] | None = None) -> Ruleset:
    """The ``*filter`` text for ``iptables-restore --noflush`` on node ``node_name``.

    ``existing_chains`` are the chains of ours now in the kernel: those no longer wanted are
    flushed and deleted. ``forward_rules`` are the kernel's ``-A FORWARD`` lines when known:
    our jump is then moved or inserted to be FORWARD's first rule, ahead of kube-proxy's
    ``KUBE-FORWARD``, which accepts NodePort traffic (masquerade-marked) before any later
    rule could see it. ``None`` leaves FORWARD alone. ``applied`` (the :attr:`Ruleset.rules`
    of the last restore, when the kernel is known to hold them) makes the text rewrite only
    the chains whose rules changed: iptables-nft's ``--noflush`` restore costs grow with
    the lines it is given, and a pod's change touches a few chains.
    """
    chains, isolated = _Builder(policies, pods, namespaces, node_name).build()
    stale = sorted(set(existing_chains) - set(chains))
    write = [name for name, lines in chains.items() if applied is None or applied.get(name) != lines]
    out = ["*filter", *(f":{name} - [0:0]" for name in [*write, *stale])]
    for name in write:
        out += chains[name]
    if forward_rules is not None:
        ours = [r for r in forward_rules if r.endswith(f"-j {NETPOL_CHAIN}")]
        if not forward_rules or forward_rules[0] != f"-A FORWARD {FORWARD_JUMP_ARGS}" or len(ours) != 1:
            out += ["-D" + r[2:] for r in ours]
            out.append(f"-I FORWARD 1 {FORWARD_JUMP_ARGS}")
    out += [f"-X {name}" for name in stale]
    out.append("COMMIT")
    return Ruleset("\n".join(out) + "\n", chains, isolated)


def parse_filter_state(save_text: str) -> tuple[set[str], list[str]]:
    """(our chains, FORWARD's rules) from ``iptables-save -t filter`` text."""
    chains: set[str] = set()
    forward: list[str] = []
    for line in save_text.splitlines():
        if line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES):
            chains.add(line[1:].split(" ", 1)[0])
        elif line.startswith("-A FORWARD "):
            forward.append(line)
    return chains, forward

