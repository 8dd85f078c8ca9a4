"""host-local style IPAM: a separate plugin that hands out the node's podCIDR addresses."""
