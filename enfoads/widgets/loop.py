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
from collections.abc import Callable
from typing import Any


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
