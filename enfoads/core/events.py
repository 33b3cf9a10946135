"""A thread-safe in-process event bus.

Events are small dataclasses with a name and a payload; ``to_dict()`` is the one shape that a
widget reads and that the server emits over Socket.IO.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    name: str
    payload: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.name, **self.payload}


def job_update(job_dict: dict[str, Any]) -> Event:
    return Event("job_update", job_dict)


def asset_added(asset_dict: dict[str, Any]) -> Event:
    return Event("asset_added", asset_dict)


def asset_updated(asset_dict: dict[str, Any]) -> Event:
    return Event("asset_updated", asset_dict)


def asset_deleted(asset_id: str) -> Event:
    return Event("asset_deleted", {"id": asset_id})


def gpu_status(status: dict[str, Any]) -> Event:
    return Event("gpu_status", status)


# Not a change but a prompt to look again: events may have been missed (an attached page's
# connection to the engine dropped and came back); whoever shows the studio's state rereads it.
RESYNC = "resync"

Handler = Callable[[Event], None]


class EventBus:
    """Publish/subscribe. Handlers run on the publishing thread; one that raises is logged and
    never stops the others (a broken widget must not break a job)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: list[tuple[str | None, Handler]] = []

    def subscribe(self, handler: Handler, name: str | None = None) -> Callable[[], None]:
        """Call ``handler`` for every event (or only those called ``name``).

        Returns the function that unsubscribes it.
        """
        entry = (name, handler)
        with self._lock:
            self._handlers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._handlers:
                    self._handlers.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            handlers = [h for n, h in self._handlers if n is None or n == event.name]
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # a subscriber's bug must not reach the publisher
                log.exception("event handler %r failed on %s", handler, event.name)
