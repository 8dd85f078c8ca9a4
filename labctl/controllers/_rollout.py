"""The arithmetic of a Deployment rollout, ported from Kubernetes' deployment controller.

Everything here is a pure function of Deployment and ReplicaSet dicts (the shapes the API
returns), so the numbers a student reads in ``kubectl rollout status`` and ``kubectl get
rs`` are unit-tested against the Go code's behaviour without a cluster:

* the pod-template-hash (``controller.ComputeHash``) and ReplicaSet naming;
* maxSurge / maxUnavailable resolution (``ResolveFenceposts``: surge rounds up,
  unavailable rounds down, both 0 → unavailable 1);
* how far the new ReplicaSet may grow and the old ones shrink in one step
  (``NewRSNewReplicas``, ``cleanupUnhealthyReplicas``, ``scaleDownOldReplicaSetsForRollingUpdate``);
* proportional scaling of every active ReplicaSet when a Deployment is resized mid-rollout
  (``scale``, ``GetProportion``);
* revisions, the annotations copied to ReplicaSets, status, conditions, the progress deadline.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import math
from collections.abc import Iterable

import orjson

from ..kube.intstr import resolve_fenceposts
from ..kube.meta import parse_time, timestamp

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
#: deployment annotations never copied to its ReplicaSets (``annotationsToSkip``)
ANNOTATIONS_TO_SKIP = frozenset({LAST_APPLIED_ANNOTATION, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
                                 DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, ROLLBACK_TO_ANNOTATION})
MAX_REV_HISTORY_LENGTH_IN_CHARS = 2000
MAX_INT32 = 2**31 - 1

# condition reasons (deploymentutil)
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "FailedRSCreate"

# -- hashing -----------------------------------------------------------------------------

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode_string(s: str) -> str:
    """``rand.SafeEncodeString``: digits mapped onto an alphabet without vowels."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in s)


def compute_hash(template: dict, collision_count: int | None = None) -> str:
    """The pod-template-hash: FNV-32a of the template, plus collisionCount, safe-encoded.

    Kubernetes feeds the hasher ``spew``'s dump of the Go struct; we feed it the template's
    canonical JSON (sorted keys, empty values dropped) — same algorithm, different input
    bytes, so the value differs from a real cluster's for the same template (documented).
    """
    hasher_input = orjson.dumps(_prune(template), option=orjson.OPT_SORT_KEYS)
    h = fnv32a(hasher_input)
    if collision_count is not None:
        h = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0", h)
    return safe_encode_string(str(h))


def _prune(value):
    """Drop None/empty maps and lists: apimachinery's semantic equality treats them as absent."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def template_without_hash(template: dict) -> dict:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return _prune(t)


def equal_ignore_hash(t1: dict, t2: dict) -> bool:
    """``EqualIgnoreHash``: templates equal once the pod-template-hash label is ignored."""
    return template_without_hash(t1) == template_without_hash(t2)


# -- accessors ---------------------------------------------------------------------------


def spec_replicas(obj: dict | None) -> int:
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status_of(obj: dict | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def mutable_annotations(obj: dict) -> dict:
    """The object's annotations map, created if absent, so that writes land on the object.

    Not named ``annotations``: that would shadow ``from __future__ import annotations``.
    """
    return obj.setdefault("metadata", {}).setdefault("annotations", {}) if obj else {}


def created(obj: dict) -> dt.datetime:
    return parse_time(obj["metadata"].get("creationTimestamp")) or dt.datetime.min.replace(tzinfo=dt.UTC)


def by_creation(rss: list[dict], newest_first: bool = False) -> list[dict]:
    """``ReplicaSetsByCreationTimestamp`` (name breaks ties)."""
    return sorted(rss, key=lambda r: (created(r), r["metadata"]["name"]), reverse=newest_first)


def active(rss: Iterable[dict | None]) -> list[dict]:
    """``FilterActiveReplicaSets``: those with spec.replicas > 0."""
    return [r for r in rss if r is not None and spec_replicas(r) > 0]


def sum_spec(rss: Iterable[dict | None]) -> int:
    return sum(spec_replicas(r) for r in rss if r is not None)


def sum_status(rss: Iterable[dict | None], field: str) -> int:
    return sum(status_of(r, field) for r in rss if r is not None)


def is_rolling(deploy: dict) -> bool:
    return ((deploy.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def has_progress_deadline(deploy: dict) -> bool:
    value = (deploy.get("spec") or {}).get("progressDeadlineSeconds")
    return value is not None and int(value) != MAX_INT32


# -- maxSurge / maxUnavailable -----------------------------------------------------------


def _rolling_params(deploy: dict) -> tuple[int | str | None, int | str | None]:
    rolling = ((deploy.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return rolling.get("maxSurge"), rolling.get("maxUnavailable")


def max_surge(deploy: dict) -> int:
    if not is_rolling(deploy):
        return 0
    return resolve_fenceposts(*_rolling_params(deploy), spec_replicas(deploy))[0]


def max_unavailable(deploy: dict) -> int:
    replicas = spec_replicas(deploy)
    if not is_rolling(deploy) or replicas == 0:
        return 0
    return min(resolve_fenceposts(*_rolling_params(deploy), replicas)[1], replicas)


# -- one rollout step --------------------------------------------------------------------


def new_rs_new_replicas(deploy: dict, all_rss: list[dict], new_rs: dict) -> int:
    """How many replicas the new ReplicaSet may have now (``NewRSNewReplicas``)."""
    replicas = spec_replicas(deploy)
    if not is_rolling(deploy):
        return replicas
    current = sum_spec(all_rss)
    max_total = replicas + max_surge(deploy)
    if current >= max_total:
        return spec_replicas(new_rs)
    scale_up = min(max_total - current, replicas - spec_replicas(new_rs))
    return spec_replicas(new_rs) + scale_up


def old_rs_scale_down(deploy: dict, new_rs: dict | None, old_rss: list[dict]) -> dict[str, int]:
    """New sizes of old ReplicaSets for one rolling step (``reconcileOldReplicaSets``).

    First unhealthy old replicas go (they do not count as available anyway), then healthy
    ones down to ``replicas - maxUnavailable`` available pods overall, oldest RS first.
    """
    all_rss = [*old_rss, *([new_rs] if new_rs else [])]
    if sum_spec(old_rss) == 0:
        return {}
    min_available = spec_replicas(deploy) - max_unavailable(deploy)
    new_unavailable = spec_replicas(new_rs) - status_of(new_rs, "availableReplicas")
    max_scaled_down = sum_spec(all_rss) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    sizes = {r["metadata"]["name"]: spec_replicas(r) for r in old_rss}
    cleaned = 0
    for rs in by_creation(old_rss):  # cleanupUnhealthyReplicas
        if cleaned >= max_scaled_down:
            break
        name, size, available = rs["metadata"]["name"], spec_replicas(rs), status_of(rs, "availableReplicas")
        if size == 0 or size == available:
            continue
        count = min(max_scaled_down - cleaned, size - available)
        sizes[name] = size - count
        cleaned += count
    # scaleDownOldReplicaSetsForRollingUpdate, on the sizes left by the cleanup
    available_total = sum_status(all_rss, "availableReplicas")
    if available_total > min_available:
        to_scale = available_total - min_available
        scaled = 0
        for rs in by_creation(old_rss):
            if scaled >= to_scale:
                break
            name = rs["metadata"]["name"]
            if sizes[name] == 0:
                continue
            count = min(sizes[name], to_scale - scaled)
            sizes[name] -= count
            scaled += count
    return {name: size for name, size in sizes.items()
            if size != spec_replicas(next(r for r in old_rss if r["metadata"]["name"] == name))}


# -- proportional scaling ----------------------------------------------------------------


def find_active_or_latest(new_rs: dict | None, old_rss: list[dict]) -> dict | None:
    if new_rs is None and not old_rss:
        return None
    olds = by_creation(old_rss, newest_first=True)
    actives = active([*olds, new_rs])
    if not actives:
        return new_rs if new_rs is not None else olds[0]
    if len(actives) == 1:
        return actives[0]
    return None


def _annotation_int(rs: dict, key: str) -> int | None:
    try:
        return int((rs["metadata"].get("annotations") or {})[key])
    except (KeyError, ValueError, TypeError):
        return None


def is_saturated(deploy: dict, rs: dict | None) -> bool:
    if rs is None:
        return False
    replicas = spec_replicas(deploy)
    return (spec_replicas(rs) == replicas and _annotation_int(rs, DESIRED_REPLICAS_ANNOTATION) == replicas
            and status_of(rs, "availableReplicas") == replicas)


def _round_half_away(x: float) -> int:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def rs_fraction(rs: dict, deploy: dict) -> int:
    """``getReplicaSetFraction``: this RS's share of the resize, by its max-replicas annotation."""
    replicas = spec_replicas(deploy)
    if replicas == 0:
        return -spec_replicas(rs)
    deploy_max = replicas + max_surge(deploy)
    before = _annotation_int(rs, MAX_REPLICAS_ANNOTATION)
    if not before:
        before = status_of(deploy, "replicas")
        if before == 0:
            return 0
    return _round_half_away(spec_replicas(rs) * deploy_max / before) - spec_replicas(rs)


def proportion(rs: dict, deploy: dict, to_add: int, added: int) -> int:
    if spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = rs_fraction(rs, deploy)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _size_order(newer_first: bool):
    def cmp(a: dict, b: dict) -> int:
        if spec_replicas(a) != spec_replicas(b):
            return -1 if spec_replicas(a) > spec_replicas(b) else 1
        ca, cb = created(a), created(b)
        if ca == cb:
            na, nb = a["metadata"]["name"], b["metadata"]["name"]
            return -1 if na < nb else (1 if na > nb else 0)
        if newer_first:
            return -1 if ca > cb else 1
        return -1 if ca < cb else 1
    return functools.cmp_to_key(cmp)


def proportional_sizes(deploy: dict, new_rs: dict | None, old_rss: list[dict]) -> dict[str, int]:
    """New sizes for every ReplicaSet when the Deployment was resized (``DeploymentController.scale``).

    Returns ``{name: size}`` for the ReplicaSets that should be set (possibly to their
    current size, when only the annotations need refreshing).
    """
    replicas = spec_replicas(deploy)
    target = find_active_or_latest(new_rs, old_rss)
    if target is not None:
        return {} if spec_replicas(target) == replicas else {target["metadata"]["name"]: replicas}
    if is_saturated(deploy, new_rs):
        return {r["metadata"]["name"]: 0 for r in active(old_rss)}
    if not is_rolling(deploy):
        return {}
    all_rss = active([*old_rss, new_rs])
    allowed = replicas + max_surge(deploy) if replicas > 0 else 0
    to_add = allowed - sum_spec(all_rss)
    if to_add > 0:
        all_rss.sort(key=_size_order(newer_first=True))
    elif to_add < 0:
        all_rss.sort(key=_size_order(newer_first=False))
    added = 0
    sizes: dict[str, int] = {}
    for rs in all_rss:
        if to_add != 0:
            p = proportion(rs, deploy, to_add, added)
            sizes[rs["metadata"]["name"]] = spec_replicas(rs) + p
            added += p
        else:
            sizes[rs["metadata"]["name"]] = spec_replicas(rs)
    if all_rss and to_add != 0:
        first = all_rss[0]["metadata"]["name"]
        sizes[first] = max(sizes[first] + to_add - added, 0)
    return sizes


def is_scaling_event(deploy: dict, rss: list[dict | None]) -> bool:
    """An active RS whose desired-replicas annotation differs from spec.replicas: a resize."""
    for rs in active(rss):
        desired = _annotation_int(rs, DESIRED_REPLICAS_ANNOTATION)
        if desired is not None and desired != spec_replicas(deploy):
            return True
    return False


# -- revisions and annotations -----------------------------------------------------------


def revision(rs: dict) -> int:
    return _annotation_int(rs, REVISION_ANNOTATION) or 0


def max_revision(rss: list[dict]) -> int:
    return max((revision(r) for r in rss), default=0)


def find_new_rs(deploy: dict, rss: list[dict]) -> dict | None:
    """The oldest ReplicaSet whose template equals the Deployment's (``FindNewReplicaSet``)."""
    template = (deploy.get("spec") or {}).get("template") or {}
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def replicas_annotations_need_update(rs: dict, desired: int, max_replicas: int) -> bool:
    ann = rs["metadata"].get("annotations") or {}
    return ann.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or ann.get(MAX_REPLICAS_ANNOTATION) != str(max_replicas)


def set_replicas_annotations(rs: dict, desired: int, max_replicas: int) -> bool:
    if not replicas_annotations_need_update(rs, desired, max_replicas):
        return False
    ann = mutable_annotations(rs)
    ann[DESIRED_REPLICAS_ANNOTATION] = str(desired)
    ann[MAX_REPLICAS_ANNOTATION] = str(max_replicas)
    return True


def set_new_rs_annotations(deploy: dict, rs: dict, new_revision: int, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the deployment's annotations (change-cause among
    them), bump the revision, keep the revisions a rolled-back-to RS had before."""
    changed = False
    ann = mutable_annotations(rs)
    for key, value in (deploy["metadata"].get("annotations") or {}).items():
        if key in ANNOTATIONS_TO_SKIP or ann.get(key) == value:
            continue
        ann[key] = value
        changed = True
    old_text = ann.get(REVISION_ANNOTATION, "")
    try:
        old = int(old_text) if old_text else 0
    except ValueError:
        return False
    if old < new_revision:
        ann[REVISION_ANNOTATION] = str(new_revision)
        changed = True
        if old_text:
            history = ann.get(REVISION_HISTORY_ANNOTATION, "")
            revisions = [r for r in history.split(",") if r] + [old_text]
            while len(",".join(revisions)) > MAX_REV_HISTORY_LENGTH_IN_CHARS and len(revisions) > 1:
                revisions.pop(0)
            ann[REVISION_HISTORY_ANNOTATION] = ",".join(revisions)
    if not exists and set_replicas_annotations(rs, spec_replicas(deploy), spec_replicas(deploy) + max_surge(deploy)):
        changed = True
    return changed


def set_deployment_revision(deploy: dict, rev: str) -> bool:
    ann = mutable_annotations(deploy)
    if ann.get(REVISION_ANNOTATION) == rev:
        return False
    ann[REVISION_ANNOTATION] = rev
    return True


def new_rs_object(deploy: dict, collision_count: int | None) -> dict:
    """The new ReplicaSet for the Deployment's template: ``<deploy>-<hash>``, hash in labels and selector."""
    spec = deploy["spec"]
    pod_hash = compute_hash(spec["template"], collision_count)
    template = copy.deepcopy(spec["template"])
    labels = {**((template.setdefault("metadata", {})).get("labels") or {}), POD_TEMPLATE_HASH_LABEL: pod_hash}
    template["metadata"]["labels"] = labels
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), POD_TEMPLATE_HASH_LABEL: pod_hash}
    meta = deploy["metadata"]
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{meta['name']}-{pod_hash}", "namespace": meta["namespace"], "labels": dict(labels),
                     "annotations": {},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                          "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"replicas": 0, "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                 "selector": selector, "template": template},
    }


def rollback_history_order(rss: list[dict]) -> list[dict]:
    """``ReplicaSetsByRevision``: oldest revision first (creation time breaks ties)."""
    return sorted(rss, key=lambda r: (revision(r), created(r), r["metadata"]["name"]))


def rss_to_clean_up(deploy: dict, old_rss: list[dict]) -> list[dict]:
    """Old ReplicaSets beyond revisionHistoryLimit that are empty and settled (``cleanupDeployment``)."""
    limit = (deploy.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [r for r in old_rss if not r["metadata"].get("deletionTimestamp")]
    diff = len(alive) - int(limit)
    out = []
    for rs in rollback_history_order(alive)[:max(diff, 0)]:
        if (status_of(rs, "replicas") != 0 or spec_replicas(rs) != 0
                or int(rs["metadata"].get("generation") or 0) > status_of(rs, "observedGeneration")):
            continue
        out.append(rs)
    return out


# -- status and conditions ---------------------------------------------------------------


def new_condition(typ: str, status: str, reason: str, message: str, now: dt.datetime) -> dict:
    t = timestamp(now)
    return {"type": typ, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def get_condition(status: dict, typ: str) -> dict | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == typ:
            return cond
    return None


def set_condition(status: dict, cond: dict) -> None:
    """``SetDeploymentCondition``: same status and reason → no change; same status → keep transition time."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: dict, typ: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != typ]


def calculate_status(deploy: dict, all_rss: list[dict], new_rs: dict | None, now: dt.datetime) -> dict:
    """``calculateStatus``: counts from the ReplicaSets' statuses, Available from maxUnavailable."""
    available = sum_status(all_rss, "availableReplicas")
    old = deploy.get("status") or {}
    status = {
        "observedGeneration": int(deploy["metadata"].get("generation") or 0),
        "replicas": sum_status(all_rss, "replicas"),
        "updatedReplicas": status_of(new_rs, "replicas"),
        "readyReplicas": sum_status(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(sum_spec(all_rss) - available, 0),
        "conditions": [dict(c) for c in old.get("conditions") or []],
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if available >= spec_replicas(deploy) - max_unavailable(deploy):
        set_condition(status, new_condition("Available", "True", "MinimumReplicasAvailable",
                                            "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition("Available", "False", "MinimumReplicasUnavailable",
                                            "Deployment does not have minimum availability.", now))
    return status


def deployment_complete(deploy: dict, status: dict) -> bool:
    replicas = spec_replicas(deploy)
    return (int(status.get("updatedReplicas") or 0) == replicas and int(status.get("replicas") or 0) == replicas
            and int(status.get("availableReplicas") or 0) == replicas
            and int(status.get("observedGeneration") or 0) >= int(deploy["metadata"].get("generation") or 0))


def deployment_progressing(deploy: dict, new: dict) -> bool:
    old = deploy.get("status") or {}
    g = lambda s, k: int(s.get(k) or 0)  # noqa: E731
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(deploy: dict, status: dict, now: dt.datetime) -> bool:
    if not has_progress_deadline(deploy):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    deadline = dt.timedelta(seconds=int(deploy["spec"]["progressDeadlineSeconds"]))
    return since is not None and since + deadline < now


def rollout_status(deploy: dict, all_rss: list[dict], new_rs: dict | None, now: dt.datetime) -> dict:
    """``syncRolloutStatus``'s new status: counts plus the Progressing condition."""
    status = calculate_status(deploy, all_rss, new_rs, now)
    if not has_progress_deadline(deploy):
        remove_condition(status, "Progressing")
    current = get_condition(deploy.get("status") or {}, "Progressing")
    complete = (status["replicas"] == status["updatedReplicas"] and current is not None
                and current.get("reason") == NEW_RS_AVAILABLE)
    name = deploy["metadata"]["name"]
    subject = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs else f'Deployment "{name}"'
    if has_progress_deadline(deploy) and not complete:
        if deployment_complete(deploy, status):
            set_condition(status, new_condition("Progressing", "True", NEW_RS_AVAILABLE,
                                                f"{subject} has successfully progressed.", now))
        elif deployment_progressing(deploy, status):
            cond = new_condition("Progressing", "True", RS_UPDATED, f"{subject} is progressing.", now)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, "Progressing")
            set_condition(status, cond)
        elif deployment_timed_out(deploy, status, now):
            set_condition(status, new_condition("Progressing", "False", TIMED_OUT,
                                                f"{subject} has timed out progressing.", now))
    return status


def requeue_after(deploy: dict, status: dict, now: dt.datetime) -> float | None:
    """Seconds until the progress deadline should be checked again (``requeueStuckDeployment``)."""
    cond = get_condition(deploy.get("status") or {}, "Progressing")
    if not has_progress_deadline(deploy) or cond is None:
        return None
    if deployment_complete(deploy, status) or cond.get("reason") == TIMED_OUT:
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    after = (since + dt.timedelta(seconds=int(deploy["spec"]["progressDeadlineSeconds"])) - now).total_seconds()
    return 0.0 if after < 1 else after + 1


def paused_condition(deploy: dict, now: dt.datetime) -> dict | None:
    """The Progressing condition to record for a pause/resume (``checkPausedConditions``), or None."""
    if not has_progress_deadline(deploy):
        return None
    cond = get_condition(deploy.get("status") or {}, "Progressing")
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return None
    paused_exists = cond is not None and cond.get("reason") == PAUSED
    if (deploy.get("spec") or {}).get("paused") and not paused_exists:
        return new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused", now)
    if not (deploy.get("spec") or {}).get("paused") and paused_exists:
        return new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed", now)
    return None
