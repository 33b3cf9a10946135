"""The dashboard's page kernels: one per open Voila page, shut down once its page is gone.

A page that closes normally tells Voila (its ``beforeunload`` beacon) and its kernel stops at
once. A page that goes without saying so (a phone that killed the tab, a laptop that slept, a
browser driven by a script) leaves its kernel behind, and jupyter_server's culler never takes
it while the engine keeps sending events: every widget update counts as activity. So the
culler here also looks at the page's connection: a kernel whose page has not been connected
for ``cull_idle_timeout`` seconds goes, however busy its widgets are.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

# A page that closes while a message to it is in flight: tornado's writer task ends with one
# of these, and asyncio would print it as "Task exception was never retrieved" with a
# traceback in the terminal of `make studio`. Nothing is wrong: the page is gone.
PAGE_GONE = ("WebSocketClosedError", "StreamClosedError")


def quiet_closed_pages(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: a closed page's write is dropped silently, anything
    else goes to asyncio's own handler."""
    if type(context.get("exception")).__name__ in PAGE_GONE:
        return
    loop.default_exception_handler(context)


class PageKernelManager(AsyncMappingKernelManager):
    """``AsyncMappingKernelManager`` whose culler also ends kernels left without a page."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._connected: set[str] = set()  # kernels whose page has connected once
        self._alone_since: dict[str, float] = {}

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:
        loop = asyncio.get_running_loop()  # Voila's loop, before any page connects
        if loop.get_exception_handler() is None:
            loop.set_exception_handler(quiet_closed_pages)
        return await super().start_kernel(*args, **kwargs)

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        if self._kernel_connections.get(kernel_id, 0):
            self._connected.add(kernel_id)
            self._alone_since.pop(kernel_id, None)
        elif kernel_id in self._connected:  # its page came, and went
            now = time.monotonic()
            since = self._alone_since.setdefault(kernel_id, now)
            if now - since > self.cull_idle_timeout:
                self.log.info("Shutting down kernel %s: its page is gone", kernel_id)
                await self.shutdown_kernel(kernel_id)
                return
        # a page still loading (Voila runs the notebook before the page connects) is left to
        # the usual rule: culled only once idle that long
        await super().cull_kernel_if_idle(kernel_id)

    async def shutdown_kernel(self, kernel_id: str, *args, **kwargs):  # type: ignore[override]
        self._forget(kernel_id)  # however it ends (the page's beacon, a cull, Voila stopping)
        return await super().shutdown_kernel(kernel_id, *args, **kwargs)

    def _forget(self, kernel_id: str) -> None:
        self._connected.discard(kernel_id)
        self._alone_since.pop(kernel_id, None)
