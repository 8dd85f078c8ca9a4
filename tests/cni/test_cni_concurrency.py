"""Concurrent ADDs (a node starting many pods at once) never share an IP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cni_helpers import Flavour, unique

pytestmark = pytest.mark.root
PODS = 20


def test_concurrent_adds_get_distinct_ips(flavour: Flavour, netns_factory: Any) -> None:
    pods = [(netns_factory(), unique("c")) for _ in range(PODS)]
    with ThreadPoolExecutor(max_workers=PODS) as pool:
        runs = list(pool.map(lambda p: flavour.call("ADD", container_id=p[1], netns=p[0].path), pods))
    assert [r.rc for r in runs] == [0] * PODS, [r.out for r in runs if r.rc]
    ips = [r.out["ips"][0]["address"] for r in runs if r.out]
    assert len(set(ips)) == PODS
    with ThreadPoolExecutor(max_workers=PODS) as pool:
        dels = list(pool.map(lambda p: flavour.call("DEL", container_id=p[1], netns=p[0].path), pods))
    assert [r.rc for r in dels] == [0] * PODS
    assert [p.name for p in (flavour.data_dir / "labctl").iterdir() if p.name[0].isdigit()] == []
