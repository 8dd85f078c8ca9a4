"""Labs: create, open and remove them. The facade is :mod:`.lab`; the rest is how it works.

``plan`` (topology → the exact Docker objects, pure), ``docker`` (those objects, by label),
``create`` and ``bootstrap`` (``up``'s steps), ``kubectl`` (the real kubectl against a lab),
``scratch`` (throwaway labs with unique names).
"""

from .kubectl import Kubectl
from .lab import Lab, LabStatus, Node, NodeInfo, Removed, down, list_labs, up

__all__ = ["Kubectl", "Lab", "LabStatus", "Node", "NodeInfo", "Removed", "down", "list_labs", "up"]
