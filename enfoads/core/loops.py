"""The one background loop the studio's leases and watchers use: a step every ``interval``
seconds on a daemon thread until ``stop`` is set, a failing step logged and retried next
round (a locked database or a restarting Redis must not end a lease)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def every(
    interval: Callable[[], float] | float,
    step: Callable[[], None],
    stop: threading.Event,
    name: str,
    failed: str,
) -> threading.Thread:
    """Start ``step`` every ``interval`` seconds (read each round: a setting may change) on a
    daemon thread ``name``; ``failed``: what the log says when a step raises."""
    wait = interval if callable(interval) else (lambda: interval)

    def loop() -> None:
        while not stop.wait(wait()):
            try:
                step()
            except Exception:
                log.exception(failed)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
