"""Authorization: RBAC, the Node authorizer, impersonation and the review APIs.

Modules, in the order a request meets them:

* ``filter`` — the aiohttp middleware: impersonation headers, then a decision for every
  request, then the node restriction; denied requests get kube's 403;
* ``attributes`` — the request as the authorizers see it (kube's ``RequestInfoFactory``)
  and the 403's wording;
* ``authorizer`` — ``system:masters``, then ``node``, then ``rbac``; follows the store's
  RBAC changes (cache invalidation, ``aggregation``) and runs ``bootstrap`` at start;
* ``rbac`` / ``rules`` — RBAC's rule resolution and matching;
* ``node`` — the Node authorizer and NodeRestriction for ``system:node:<name>``;
* ``escalation`` — nobody grants more than they hold (called by the RBAC kinds' strategies);
* ``reviews`` — SelfSubjectAccessReview and friends, SelfSubjectReview.

This package imports no submodule here: the RBAC strategies import ``escalation`` while
the REST layer is still being imported.
"""
