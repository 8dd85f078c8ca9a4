"""What every controller gets: the API client, shared informers, an event recorder, settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..client.events import EventRecorder
from ..client.informer import Informer
from ..client.rest import APIClient


@dataclass
class ControllerSettings:
    """Cluster-wide timings (from the topology's nodeLifecycle section)."""

    node_monitor_grace_seconds: float = 40.0
    pod_eviction_timeout_seconds: float = 300.0
    node_monitor_period_seconds: float = 2.0


@dataclass
class ControllerContext:
    client: APIClient
    settings: ControllerSettings = field(default_factory=ControllerSettings)
    _informers: dict[str, Informer] = field(default_factory=dict)
    _recorders: dict[str, EventRecorder] = field(default_factory=dict)

    def informer(self, plural: str) -> Informer:
        """The shared informer for a resource (one watch per resource for all controllers)."""
        if plural not in self._informers:
            self._informers[plural] = Informer(self.client, plural)
        return self._informers[plural]

    def recorder(self, component: str) -> EventRecorder:
        if component not in self._recorders:
            self._recorders[component] = EventRecorder(self.client, component)
        return self._recorders[component]

    async def run_informers(self) -> None:
        await asyncio.gather(*(inf.run() for inf in self._informers.values()))

    async def wait_for_sync(self) -> None:
        await asyncio.gather(*(inf.synced.wait() for inf in self._informers.values()))
