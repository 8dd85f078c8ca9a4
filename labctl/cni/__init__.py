"""labctl's own CNI plugins (CNI spec 1.0) and the node's pod-CIDR routes.

Two executables, shaped like containernetworking/plugins: ``labctl-bridge``
(:mod:`labctl.cni.bridge`) wires a pod into the node bridge ``cni0`` and
delegates addresses to ``labctl-host-local`` (:mod:`labctl.cni.ipam.plugin`).
The node agent drives them through :mod:`labctl.cni.invoke` exactly as a
container runtime would, and keeps host-gw routes with :mod:`labctl.cni.routes`.

Importing this package must stay cheap: both plugins are a fresh process per
call, so they use only the standard library and iproute2's ``ip`` commands
(:mod:`labctl.cni.iproute`); pyroute2 is for :mod:`labctl.cni.routes` in the
long-running node agent only.
"""
