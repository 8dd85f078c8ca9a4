"""The ingress controller: Ingresses served by a real nginx, as ingress-nginx serves them.

``python -m labctl.ingress`` runs in the ``ingress-nginx-controller`` pod of the add-on (image
``labctl/ingress-nginx``: Debian's nginx plus labctl). It starts nginx, watches Ingresses,
IngressClasses, Services, EndpointSlices and Secrets, renders ``nginx.conf`` (:mod:`.render`,
pure) and runs ``nginx -s reload`` when the text changed (:mod:`.controller`), and writes the
Ingresses' ``status.loadBalancer``. docs/ingress.md shows a rendered configuration.
"""
