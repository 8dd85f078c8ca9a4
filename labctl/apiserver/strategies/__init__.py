"""Each served kind's strategy: the rules the generic REST layer (``rest.py``) asks it for.

One module per family of kinds, one :class:`~labctl.apiserver.strategies.base.Strategy`
subclass per kind, registered here by plural as kube-apiserver registers its REST storage
per resource. A kind in the table (:mod:`labctl.kube.resources`) without a strategy of its
own gets the generic one.
"""

from __future__ import annotations

from labctl.kube.resources import METRICS_GROUP, RESOURCES, ResourceType, resource_for

from .apiextensions import CustomResourceDefinitionStrategy, custom_openapi, custom_strategy
from .autoscaling import HorizontalPodAutoscalerStrategy
from .base import Storage, Strategy
from .batch import CronJobStrategy, JobStrategy
from .config import ConfigMapStrategy, SecretStrategy, ServiceAccountStrategy
from .coordination import EventStrategy, LeaseStrategy
from .namespaces import INITIAL_NAMESPACES, NamespaceStrategy, ensure_default_service_account
from .networking import IngressClassStrategy, IngressStrategy, NetworkPolicyStrategy
from .nodes import NodeStrategy
from .pods import PodStrategy
from .policy import PodDisruptionBudgetStrategy
from .quota import LimitRangeStrategy, ResourceQuotaStrategy
from .rbac import ClusterRoleBindingStrategy, RoleBindingStrategy, RoleStrategy
from .scheduling import PriorityClassStrategy, ensure_system_priority_classes
from .services import EndpointSliceStrategy, EndpointsStrategy, ServiceStrategy
from .storage import PersistentVolumeClaimStrategy, PersistentVolumeStrategy, StorageClassStrategy
from .workloads import (
    ControllerRevisionStrategy,
    DaemonSetStrategy,
    DeploymentStrategy,
    ReplicaSetStrategy,
    StatefulSetStrategy,
)

__all__ = ["INITIAL_NAMESPACES", "Storage", "Strategy", "custom_openapi", "ensure_default_service_account",
           "ensure_system_priority_classes", "strategy_for"]

_KINDS: dict[str, type[Strategy]] = {
    "namespaces": NamespaceStrategy,
    "nodes": NodeStrategy,
    "pods": PodStrategy,
    "services": ServiceStrategy,
    "endpoints": EndpointsStrategy,
    "events": EventStrategy,
    "configmaps": ConfigMapStrategy,
    "secrets": SecretStrategy,
    "serviceaccounts": ServiceAccountStrategy,
    "replicasets": ReplicaSetStrategy,
    "deployments": DeploymentStrategy,
    "daemonsets": DaemonSetStrategy,
    "statefulsets": StatefulSetStrategy,
    "controllerrevisions": ControllerRevisionStrategy,
    "jobs": JobStrategy,
    "cronjobs": CronJobStrategy,
    "leases": LeaseStrategy,
    "endpointslices": EndpointSliceStrategy,
    "networkpolicies": NetworkPolicyStrategy,
    "poddisruptionbudgets": PodDisruptionBudgetStrategy,
    "horizontalpodautoscalers": HorizontalPodAutoscalerStrategy,
    "ingresses": IngressStrategy,
    "ingressclasses": IngressClassStrategy,
    "priorityclasses": PriorityClassStrategy,
    "storageclasses": StorageClassStrategy,
    "persistentvolumes": PersistentVolumeStrategy,
    "persistentvolumeclaims": PersistentVolumeClaimStrategy,
    "limitranges": LimitRangeStrategy,
    "resourcequotas": ResourceQuotaStrategy,
    "roles": RoleStrategy,
    "clusterroles": RoleStrategy,
    "rolebindings": RoleBindingStrategy,
    "clusterrolebindings": ClusterRoleBindingStrategy,
    "customresourcedefinitions": CustomResourceDefinitionStrategy,
}
#: a view (events.k8s.io/v1 events) is stored, validated and printed as the resource it shows;
#: metrics.k8s.io's kinds are computed, never stored: no strategy (resourcemetrics.py serves them)
_STRATEGIES: dict[str, Strategy] = {rt.key: _KINDS.get(rt.plural, Strategy)(rt) for rt in RESOURCES
                                    if not rt.view_of and rt.group != METRICS_GROUP}


def strategy_for(resource: ResourceType | str) -> Strategy:
    """The strategy of a served resource, given as its ResourceType or its plural (``"pods"``).

    A custom resource's strategy comes from its CustomResourceDefinition while that is served.
    """
    rt = resource_for(resource) if isinstance(resource, str) else resource
    strategy = _STRATEGIES.get(rt.key) or custom_strategy(rt)
    return strategy if strategy is not None else Strategy(rt)
