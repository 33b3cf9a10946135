"""``enfoads.connect()``: the studio of a data dir, whichever surface asks.

- No engine on the data dir: this process becomes it (models, GPU, queue) and serves its API
  on a loopback port, so other surfaces can attach.
- This process already is the engine (a notebook cell run again): the same studio.
- Another process is the engine (``enfoads serve``, ``enfoads studio``, another kernel): an
  ``AttachedStudio`` over its API, with the same facade and no models of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from enfoads.attached import AttachedStudio
from enfoads.core.engine import EngineBusy, EngineElsewhere, EngineRegistry, EngineUnreachable
from enfoads.core.settings import Settings, load_settings
from enfoads.core.studio import Studio

log = logging.getLogger(__name__)

# The engines this process runs, by data dir: a process-wide fact (like an open port), so a
# re-run notebook cell finds the engine the previous run started instead of building a second.
_ENGINES: dict[Path, Studio] = {}
_LOCK = threading.Lock()


def live_engine(settings: Settings, wait_s: float = 0.0) -> Any:
    """The live engine of the data dir (waiting up to ``wait_s`` for its address), or None."""
    from enfoads.core.assets import utcnow
    from enfoads.core.db import create_engine, make_session_factory

    settings.ensure_dirs()
    db = create_engine(settings.db_url)
    try:
        registry = EngineRegistry(
            make_session_factory(db), "probe", lease_s=settings.lease_s, clock=utcnow
        )
        return registry.wait_for_url(wait_s, time.sleep)
    finally:
        db.dispose()


def attach(settings: Settings, wait_s: float = 30.0) -> AttachedStudio | None:
    """An ``AttachedStudio`` to the live engine, or None when there is none."""
    engine = live_engine(settings, wait_s)
    if engine is None:
        return None
    if not engine.url:
        raise EngineUnreachable(engine, "it has not published its address yet")
    return AttachedStudio(settings, engine)


def connect(
    settings: Settings | None = None,
    *,
    serve: bool = True,
    wait_s: float = 30.0,
    warm: bool = True,
) -> Studio | AttachedStudio:
    """The studio of the data dir (see the module docstring). ``serve=False`` starts an
    engine without its loopback API (nothing else can then attach); ``warm=False``: no warm
    start (``Studio.warm_start``) for an engine that only lives for one command."""
    settings = settings or load_settings()
    with _LOCK:
        own = _ENGINES.get(settings.data_dir)
        if own is not None and not own.closed:
            return own
        for _attempt in range(3):
            attached = attach(settings, wait_s)
            if attached is not None:
                return attached
            studio = make_studio(settings)
            try:
                studio.start()
            except EngineElsewhere:  # another machine's session on this (Drive) folder: say so
                studio.close()
                raise
            except EngineBusy:  # another process became the engine meanwhile
                studio.close()
                continue
            if serve:
                serve_engine_api(studio)
            if warm:
                studio.warm_start()
            _ENGINES[settings.data_dir] = studio
            return studio
        raise RuntimeError("could not become or attach to the engine of " + str(settings.data_dir))


def make_studio(settings: Settings) -> Studio:
    """The engine's ``Studio`` with the job backend ``ENFOADS_QUEUE`` names: threads of this
    process (``local``), or Celery workers on other processes (``celery``), built here so the
    core imports no queue implementation."""
    if settings.queue == "celery":
        from enfoads.workers.backend import CeleryJobQueue

        return Studio(
            settings,
            job_backend=lambda studio: CeleryJobQueue(
                studio.job_store(), settings, lang=lambda: studio.settings.language
            ),
        )
    return Studio(settings)


def serve_engine_api(studio: Studio) -> Any:
    """Serve ``studio``'s API on a free loopback port for the surfaces that attach to it, and
    record the address; stopped when the studio closes."""
    from enfoads.server.launch import start_in_thread

    handle = start_in_thread(studio, host="127.0.0.1", port=0, token=studio.settings.server_token)
    studio.on_close(handle.stop)
    studio.publish_api(handle.url)
    return handle
