"""labctl's cluster DNS server: the kube-dns Service's backend (``python -m labctl.dns``).

``records`` turns cached Services/Endpoints into answers (pure); ``server`` speaks DNS over
UDP and TCP with dnslib, forwards other names upstream and keeps the caches with informers.
"""
