"""labctl's service proxy: kube-proxy's iptables mode, rule for rule.

The node agent feeds Service and EndpointSlice events into a :class:`Proxier`; the proxier
tracks the changes, builds the whole ``*filter``/``*nat`` ruleset with the pure
:func:`build_ruleset` and applies it with one ``iptables-restore --noflush`` per burst.
"""

from labctl.proxy.proxier import Proxier
from labctl.proxy.rules import NodeConfig, build_ruleset

__all__ = ["NodeConfig", "Proxier", "build_ruleset"]
