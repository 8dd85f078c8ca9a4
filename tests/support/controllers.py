"""Run labctl controllers in-process against a real API server (tests and benchmarks).

They run on their own event loop in a thread, exactly as the controller manager runs them
(shared informers, wait for the caches, then ``run()``), so a test can drive the API with
kubectl or a client meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from labctl.client.rest import APIClient, Credentials
from labctl.controllers.base import Controller
from labctl.controllers.context import ControllerContext

ControllerFactory = Callable[[ControllerContext], Controller]


class ControllersThread:
    """``with ControllersThread(kubeconfig, [Scheduler]) as c:`` runs the controllers until the block ends."""

    def __init__(self, kubeconfig: Path, factories: list[ControllerFactory]) -> None:
        self.kubeconfig = kubeconfig
        self.factories = factories
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.error: BaseException | None = None

    async def _main(self) -> None:
        self.loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        client = APIClient(Credentials.from_kubeconfig(self.kubeconfig))
        try:
            ctx = ControllerContext(client)
            controllers = [factory(ctx) for factory in self.factories]
            tasks = [asyncio.create_task(ctx.run_informers())]
            await ctx.wait_for_sync()
            tasks += [asyncio.create_task(c.run()) for c in controllers]
            self._ready.set()
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        except BaseException as err:
            self.error = err
        finally:
            self._ready.set()
            await client.close()

    def __enter__(self) -> ControllersThread:
        self._thread.start()
        if not self._ready.wait(30) or self.error:
            raise RuntimeError(f"failed to start the controllers: {self.error}")
        return self

    def __exit__(self, *exc) -> None:
        if self.loop and self._stop:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
