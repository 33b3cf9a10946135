"""Socket.IO: the studio's events pushed to clients as they happen.

``job_update``, ``asset_added``, ``asset_updated``, ``asset_deleted`` and ``gpu_status`` carry
the same dicts the widgets read. A client gets every event, or only one job's after ``join_job``. The bus calls
from worker threads; events are handed to the server's event loop in the order they come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import socketio

from enfoads.core.events import Event
from enfoads.server.access import Access

log = logging.getLogger(__name__)
ALL = "all"


def allowed_origin(origins: list[str]) -> Callable[[str | None, dict[str, Any]], bool]:
    """The configured origins, plus the server's own (a page it serves, or a non-browser
    client that sends its URL as Origin). ``*`` allows every origin."""

    def check(origin: str | None, environ: dict[str, Any]) -> bool:
        if "*" in origins or origin is None:
            return True
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin == own or origin in origins

    return check


def create_sio(access: Callable[[], Access], cors_origins: list[str]) -> socketio.AsyncServer:
    """The handshake follows the HTTP rule: the token in ``auth`` (or an Authorization
    header), required unless the server is local-open and the Host is local."""
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=allowed_origin(cors_origins))

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        rule = access()
        host = environ.get("HTTP_HOST")
        proxied = any(k == "HTTP_FORWARDED" or k.startswith("HTTP_X_FORWARDED_") for k in environ)
        origin = environ.get("HTTP_ORIGIN")
        if proxied or (origin and origin not in (f"http://{host}", f"https://{host}")):
            host = None  # as for HTTP (guard._token_host): a proxy or another page needs the token
        if rule.required(host):
            presented = auth.get("token") if isinstance(auth, dict) else None
            if presented is None:
                header = environ.get("HTTP_AUTHORIZATION", "")
                presented = header[7:].strip() if header.lower().startswith("bearer ") else None
            token = presented if isinstance(presented, str) else None
            if not rule.allows(token, host):
                raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        await sio.enter_room(sid, ALL)

    @sio.event
    async def join_job(sid: str, job_id: Any) -> dict[str, Any]:
        """Only this job's ``job_update`` events from now on."""
        if not isinstance(job_id, str) or not job_id:
            return {"ok": False, "message": "join_job needs a job id"}
        await sio.leave_room(sid, ALL)
        await sio.enter_room(sid, f"job:{job_id}")
        return {"ok": True, "job_id": job_id}

    return sio


class EventBridge:
    """Forwards bus events (from any thread) to Socket.IO on the server's loop."""

    def __init__(self, sio: socketio.AsyncServer, access: Callable[[], Access] | None = None):
        self.sio = sio
        self.access = access
        self.loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Event] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(
        self, subscribe: Callable[[Callable[[Event], None]], Callable[[], None]]
    ) -> Callable[[], None]:
        self.loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = self.loop.create_task(self._pump())
        unsubscribe = subscribe(self._on_event)

        def stop() -> None:
            unsubscribe()
            if self._task is not None:
                self._task.cancel()

        return stop

    def _on_event(self, event: Event) -> None:
        loop, queue = self.loop, self._queue
        if loop is not None and queue is not None and not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, event)  # keeps the order of events

    async def _pump(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            payload = event.payload
            if self.access is not None:  # clients get signed media URLs
                payload = self.access().sign_urls(payload)
            try:
                await self.sio.emit(event.name, payload, room=ALL)
                if event.name == "job_update":
                    await self.sio.emit(event.name, payload, room=f"job:{payload['id']}")
            except Exception:  # one failed emit must not stop the others
                log.exception("could not emit %s", event.name)
