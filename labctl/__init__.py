"""labctl: learn Kubernetes networking by touching it."""

__version__ = "0.1.0"
