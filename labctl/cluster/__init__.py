"""Labs: create, open and remove them. The facade is :mod:`.lab`; the rest is how it works.

``plan`` (topology → the exact Docker objects, pure), ``docker`` (those objects, by label),
``preflight`` (the checks against the host before anything is made), ``create`` and
``bootstrap`` (``up``'s steps), ``cancel`` (stopping ``up`` at a safe point), ``kubectl`` (the
real kubectl against a lab), ``scratch`` (throwaway labs with unique names).
"""

from .cancel import Cancellation, Cancelled
from .kubectl import Kubectl
from .lab import Lab, LabStatus, Node, NodeInfo, Removed, down, list_labs, up

__all__ = ["Cancellation", "Cancelled", "Kubectl", "Lab", "LabStatus", "Node", "NodeInfo", "Removed", "down",
           "list_labs", "up"]
