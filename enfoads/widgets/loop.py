"""Every widget change on the kernel's own thread.

Jobs report from worker threads, and the engine's events reach an attached page from its
Socket.IO thread. A widget changed from such a thread may never refresh in Colab
(colabtools#3373: the value changes in the kernel, the page keeps the old one until something
else sends the widget's state). So panels never handle an event where it arrives: they hand
it to the kernel's event loop (ipykernel's ``kernel.io_loop``, whose ``add_callback`` is safe
from any thread), which runs it on the thread that runs the cells, in the order the events
came. Outside a kernel (a plain script or a test) there is no loop and no page to refresh:
handlers run where the event arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from enfoads.core.events import RESYNC


def kernel_loop() -> Any | None:
    """The running kernel's IOLoop, or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    return getattr(kernel, "io_loop", None)


class KernelThread:
    """Runs calls on the kernel's thread: at once when already there, else through its loop."""

    def __init__(self, loop: Any | None = None):
        self.loop = loop if loop is not None else kernel_loop()
        self.thread = threading.current_thread()  # panels are built by a cell, on that thread

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.loop is None or threading.current_thread() is self.thread:
            fn(*args)
        else:
            self.loop.add_callback(fn, *args)


def subscribe(
    studio: Any, handler: Callable[[Any], None], name: str | None = None
) -> Callable[[], None]:
    """``studio.subscribe`` for panels: ``handler`` runs on the kernel's thread. Returns the
    unsubscribe function (whoever subscribes unsubscribes: the panel's ``close()``)."""
    on_kernel = KernelThread()
    return studio.subscribe(lambda event: on_kernel.call(handler, event), name)


# A burst of events (a 24-image job sends hundreds of progress updates, each image an
# ``asset_added``) becomes one refresh per this many seconds at most: a refresh reads the
# studio once and changes only the widgets that differ, so an open page keeps up with any
# burst instead of queueing one database read and widget rebuild per event.
REFRESH_EVERY_S = 0.3


class Coalescer:
    """Runs ``refresh`` on the kernel's thread once per burst of events: the first event
    schedules it ``delay`` seconds later, the ones after it until then ride along, and one
    that comes while it runs schedules the next. A refresh reads the current state, so the
    last event is never missed. Outside a kernel (no loop) it runs at once."""

    def __init__(
        self, refresh: Callable[[], None], delay: float = REFRESH_EVERY_S, loop: Any | None = None
    ):
        self.refresh = refresh
        self.delay = delay
        self.kernel = KernelThread(loop)
        self._lock = threading.Lock()
        self._scheduled = False
        self.closed = False

    def poke(self, _event: Any = None) -> None:
        loop = self.kernel.loop
        if loop is None:
            if not self.closed:
                self.refresh()
            return
        with self._lock:
            if self._scheduled or self.closed:
                return
            self._scheduled = True
        loop.add_callback(lambda: loop.call_later(self.delay, self._flush))

    def _flush(self) -> None:
        with self._lock:
            self._scheduled = False
            if self.closed:
                return
        self.refresh()

    def close(self) -> None:
        self.closed = True


def subscribe_refresh(
    studio: Any,
    refresh: Callable[[], None],
    names: Iterable[str],
    delay: float = REFRESH_EVERY_S,
) -> list[Callable[[], None]]:
    """``refresh`` once per burst of the events ``names`` (and after a reconnect), on the
    kernel's thread; the unsubscribe functions, for the panel's ``_unsubscribe``."""
    coalescer = Coalescer(refresh, delay)
    stops = [studio.subscribe(coalescer.poke, name) for name in (*names, RESYNC)]
    return [coalescer.close, *stops]
