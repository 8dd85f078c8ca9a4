"""The control plane's controllers and scheduler (kube-controller-manager + kube-scheduler roles)."""
