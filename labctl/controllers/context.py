"""What every controller gets: the API client, shared informers, an event recorder, the cluster's settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..client.events import EventRecorder
from ..client.informer import Informer
from ..client.rest import APIClient
from ..clusterconfig import ClusterConfig

#: How often node lifecycle looks at the Leases (kube-controller-manager's --node-monitor-period is 5 s;
#: 2 s makes a stopped node visible sooner in a lab).
NODE_MONITOR_PERIOD_SECONDS = 2.0


@dataclass
class ControllerContext:
    client: APIClient
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    _informers: dict[str, Informer] = field(default_factory=dict)
    _recorders: dict[str, EventRecorder] = field(default_factory=dict)

    def informer(self, plural: str, field_selector: str = "") -> Informer:
        """The shared informer for a resource (one watch per resource and selector for all controllers)."""
        key = f"{plural}?{field_selector}" if field_selector else plural
        if key not in self._informers:
            self._informers[key] = Informer(self.client, plural, field_selector=field_selector)
        return self._informers[key]

    def recorder(self, component: str) -> EventRecorder:
        if component not in self._recorders:
            self._recorders[component] = EventRecorder(self.client, component)
        return self._recorders[component]

    async def run_informers(self) -> None:
        await asyncio.gather(*(inf.run() for inf in self._informers.values()))

    async def wait_for_sync(self) -> None:
        await asyncio.gather(*(inf.synced.wait() for inf in self._informers.values()))
