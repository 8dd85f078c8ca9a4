"""PriorityClasses (scheduling.k8s.io/v1) and the ``Priority`` admission plugin that resolves them into pods.

A pod names a class (``spec.priorityClassName``); admission writes the class's value into
``spec.priority`` and its ``preemptionPolicy`` at create, as kube-apiserver's Priority plugin
does, so the scheduler only ever reads integers. A pod without a class gets the globalDefault
class, or priority 0.
"""

from __future__ import annotations

from labctl.apiserver._validate_scheduling import validate_priority_class, validate_priority_class_update
from labctl.apiserver.authz.attributes import forbidden_object
from labctl.apiserver.errors import FieldError
from labctl.apiserver.scope import RequestScope
from labctl.kube.printers import PRIORITYCLASS_TABLE
from labctl.kube.priority import PREEMPT_LOWER_PRIORITY, SYSTEM_PRIORITY_CLASSES, default_priority, of_class

from .base import Obj, Storage, Strategy

GROUP, PLURAL = "scheduling.k8s.io", "priorityclasses"
KEY = f"{GROUP}/{PLURAL}"


class PriorityClassStrategy(Strategy):
    """kube's ``priorityClassStrategy`` plus the Priority plugin's checks of the classes themselves."""

    printer = PRIORITYCLASS_TABLE

    def default(self, obj: Obj) -> None:
        obj.setdefault("value", 0)  # a Go int32: absent decodes as 0
        if not obj.get("preemptionPolicy"):
            obj["preemptionPolicy"] = PREEMPT_LOWER_PRIORITY

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_priority_class(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_priority_class_update(old, new)

    def allocate(self, api: Storage, obj: Obj, old: Obj | None) -> list[FieldError]:
        """Only one class may be the globalDefault (the Priority plugin's admission of classes)."""
        name = obj["metadata"]["name"]
        if obj.get("globalDefault"):
            current = [c for c in api.store.list(KEY) if c.get("globalDefault")]
            other = next((c for c in current if c["metadata"]["name"] != name), None)
            if other is not None and (old is None or not old.get("globalDefault")):
                raise forbidden_object(GROUP, PLURAL, name, f"PriorityClass {other['metadata']['name']} is already "
                                                            "marked as default. Only one default can exist")
        return []

    def check_delete(self, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if name in SYSTEM_PRIORITY_CLASSES:
            raise forbidden_object(GROUP, PLURAL, name, "this is a system priority class and cannot be deleted")


def admit_pod_priority(api: Storage, pod: Obj) -> None:
    """The Priority admission plugin on a pod's create: class name → ``spec.priority`` and ``preemptionPolicy``.

    403 for an unknown class, or for a ``priority``/``preemptionPolicy`` written by hand that
    differs from what the class gives (the integer is the class's to decide).
    """
    spec, name = pod.get("spec"), pod["metadata"].get("name", "")
    if not isinstance(spec, dict):
        return
    class_name = spec.get("priorityClassName")
    if class_name:
        pc = api.store.get((KEY, "", class_name))
        if pc is None:
            raise forbidden_object("", "pods", name, f"no PriorityClass with name {class_name} was found")
        resolved = of_class(pc)
    else:
        resolved = default_priority(api.store.list(KEY))
        if resolved.class_name:
            spec["priorityClassName"] = resolved.class_name
    if spec.get("priority") is not None and spec["priority"] != resolved.value:
        raise forbidden_object("", "pods", name, f"the integer value of priority ({spec['priority']}) must not be "
                               f"provided in pod spec; priority admission controller computed {resolved.value} from "
                               "the given PriorityClass name")
    if spec.get("preemptionPolicy") and spec["preemptionPolicy"] != resolved.preemption_policy:
        raise forbidden_object("", "pods", name, f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) "
                               "must not be provided in pod spec; priority admission controller computed "
                               f"{resolved.preemption_policy} from the given PriorityClass name")
    spec["priority"] = resolved.value
    spec["preemptionPolicy"] = resolved.preemption_policy


def ensure_system_priority_classes(api: Storage) -> None:
    """The API server's bootstrap hook: ``system-node-critical`` and ``system-cluster-critical`` exist."""
    rt = api.registry.lookup(GROUP, "v1", PLURAL)
    if rt is None:
        return
    for name, fields in SYSTEM_PRIORITY_CLASSES.items():
        if api.store.get((rt.key, "", name)) is None:
            api.create(RequestScope(rt), {"metadata": {"name": name}, "globalDefault": False, **fields})

