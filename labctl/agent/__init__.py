"""The node agent: what runs in every lab node (the kubelet and kube-proxy roles)."""
