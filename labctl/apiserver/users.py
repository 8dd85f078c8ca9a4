"""Who is asking: kube's ``user.Info`` and the users and groups Kubernetes gives a meaning.

Authentication (``server.py``: client certificates, static tokens, ServiceAccount tokens)
turns a request into a :class:`User`; authorization (:mod:`labctl.apiserver.authz`) decides
on that user alone. The names are kube's to the letter because RBAC bindings name them:
``kubectl create clusterrolebinding … --group=system:authenticated`` must mean here what it
means on a real cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: members are cluster-admin whatever RBAC says (the admin kubeconfig's certificate is O=system:masters)
SYSTEM_PRIVILEGED_GROUP = "system:masters"
#: every authenticated user is in it, added by the authenticator (kube's group adder)
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
#: node identities: user ``system:node:<name>`` in group ``system:nodes`` (the Node authorizer's)
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"

@dataclass(frozen=True)
class User:
    """kube's ``user.Info``: a name, a uid, groups and extra attributes (e.g. the pod a token is bound to)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        """What authorization depends on (RBAC subjects are names and groups): the cache key."""
        return (self.name, self.groups)


def authenticated(name: str, groups: tuple[str, ...] = (), uid: str = "",
                  extra: Mapping[str, tuple[str, ...]] | None = None) -> User:
    """An authenticated user: ``system:authenticated`` is added to its groups, as kube's authenticator does."""
    if ALL_AUTHENTICATED not in groups:
        groups = (*groups, ALL_AUTHENTICATED)
    return User(name, groups, uid, extra or {})


ANONYMOUS_USER = User(ANONYMOUS, (ALL_UNAUTHENTICATED,))


def service_account_username(namespace: str, name: str) -> str:
    """``serviceaccount.MakeUsername``: ``system:serviceaccount:<namespace>:<name>``."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> tuple[str, ...]:
    """``serviceaccount.MakeGroupNames``: every service account's groups, then its namespace's."""
    return (ALL_SERVICE_ACCOUNTS_GROUP, f"{ALL_SERVICE_ACCOUNTS_GROUP}:{namespace}")


def split_service_account(username: str) -> tuple[str, str] | None:
    """``serviceaccount.SplitUsername``: (namespace, name) of a service-account user name, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def node_name(user: User) -> str | None:
    """The Node a user speaks for (kube's ``NodeIdentity``): ``system:node:<name>`` in ``system:nodes``.

    ``""`` for a member of the group whose name has no node in it (kube denies it); None
    for everyone else.
    """
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
        return None
    return user.name[len(NODE_USER_PREFIX):]
