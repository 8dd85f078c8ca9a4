"""The kubelet role of the node agent: pods as Docker containers on this node.

``Kubelet(client, cfg).run()`` is the whole role; see ``docs/kubelet.md``. Modules:
``runtime`` (sandbox + containers), ``images`` (host copy / alias / pull), ``network``
(CNI + host-gw routes), ``probes``, ``status`` (pure pod status), ``backoff``,
``podworker`` (one pod's sync loop), ``teardown`` and ``gc`` (stopping and orphans),
``kubelet`` (informers and Docker events wiring).
"""

from .kubelet import Kubelet

__all__ = ["Kubelet"]
