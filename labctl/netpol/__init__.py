"""labctl's NetworkPolicy enforcement: policies become filter rules in every node's iptables.

The node agent feeds NetworkPolicy, Pod and Namespace events into a :class:`PolicyEnforcer`;
it keeps typed views of them (:mod:`labctl.netpol.model`), builds this node's rules with the
pure :func:`build_ruleset` (:mod:`labctl.netpol.rules`, the layout is documented there and in
``docs/networkpolicy.md``) and applies them with one ``iptables-restore --noflush`` per burst,
reusing the service proxy's runner and iptables wrapper.
"""

from labctl.netpol.enforcer import PolicyEnforcer
from labctl.netpol.rules import build_ruleset

__all__ = ["PolicyEnforcer", "build_ruleset"]
