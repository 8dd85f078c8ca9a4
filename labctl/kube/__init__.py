"""The Kubernetes vocabulary every labctl component shares.

Time and object metadata (``meta``), names and label validation (``validators``,
``labels``), quantities and ``IntOrString`` percentages (``intstr``), the table of served
kinds (``resources``), accessors over objects (``objects``), kubectl's columns for each kind
(``printers``) and the runtime's container labels (``containers``). It depends on nothing
else in labctl, so the API server, the controllers, the node agent, DNS, the CLI, the
exercises, the inspector and the TUI all speak one dialect without importing each other.
"""
