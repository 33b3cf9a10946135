"""``enfoads worker``: one Celery worker process per GPU, running the studio's jobs.

The process owns one GPU (``CUDA_VISIBLE_DEVICES`` is set before torch is imported) and its
own VRAM manager; it runs one job at a time (``-P solo``: no fork after CUDA). Each job is
claimed in the database with a lease: a redelivered job whose worker died is taken over (its
partial assets removed first, so one set is stored); one that a live worker holds, or that
ended, is dropped. Events go to the engine over a Redis channel.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from enfoads.core import loops

log = logging.getLogger(__name__)


class HandlerTable:
    """Collects the job handlers the capabilities register (this process runs no queue)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def register(self, kind: str, handler: Any, *, queue: str = "images") -> None:
        self.handlers[kind] = handler

    def kinds(self) -> list[str]:
        return sorted(self.handlers)

    def start(self) -> None:
        pass

    def shutdown(self, timeout: float = 10.0) -> None:
        pass


class Worker:
    """The studio's pipelines in a worker process, and ``run(job_id)`` for the Celery task."""

    def __init__(self, settings: Any):
        import redis

        from enfoads.core.engine import new_owner_id
        from enfoads.core.jobs import JobStore
        from enfoads.core.studio import Studio
        from enfoads.workers.app import events_channel

        self.settings = settings
        self.table = HandlerTable()
        self.studio = Studio(settings, jobs=self.table)  # pipelines + VRAM manager, no queue
        self.store = JobStore(self.studio.sessions, self.studio.bus, self.studio.clock)
        self.owner = new_owner_id()
        self._redis = redis.Redis.from_url(settings.redis_url)
        self._channel = events_channel(settings)
        self.studio.subscribe(self._forward)
        self._stop = threading.Event()
        loops.every(
            lambda: self.settings.lease_s / 3,
            lambda: self.store.heartbeat(self.owner),
            self._stop,
            "enfoads-worker-lease",
            "could not renew the job lease",
        )

    def _forward(self, event: Any) -> None:
        try:
            self._redis.publish(
                self._channel,
                json.dumps({"name": event.name, "payload": event.payload}, default=str),
            )
        except Exception:  # progress is best effort; the database has the truth
            log.warning("could not publish %s", event.name, exc_info=True)

    def run(self, job_id: str) -> str:
        from enfoads.core.i18n import t
        from enfoads.core.jobs import DbCancelToken, execute

        lang = self.studio.settings.language
        job, took_over = self.store.claim(
            job_id, self.owner, self.settings.lease_s, t("stage.queued", lang)
        )
        if job is None:
            return "skipped"  # finished, cancelled, or a live worker runs it
        if took_over:  # a worker died mid-job: what it stored of it goes, one set stays
            for asset in self.studio.assets.list(job_id=job_id, limit=500).items:
                self.studio.assets.delete(asset.id)
        done = execute(
            self.store,
            job,
            self.table.handlers.get(job.kind),
            DbCancelToken(self.store, job_id),
            self.owner,
            lang,
            self.studio.job_timeout(job.kind),
        )
        return done.state.value if done is not None else "lost"

    def close(self) -> None:
        self._stop.set()
        self.studio.close()


def main(gpu: int | None, queues: str, loglevel: str = "INFO") -> int:
    """Run one worker in the foreground (``enfoads worker``)."""
    if gpu is not None:  # before torch is imported anywhere in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    from enfoads.core.settings import load_settings
    from enfoads.workers.app import TASK, make_celery

    settings = load_settings()
    settings.ensure_dirs()
    settings.apply_cache_env()
    app = make_celery(settings)
    worker = Worker(settings)
    caps = worker.studio.capabilities
    # "all": every queue a registered job kind declares (its JobSpec's ``queue``)
    queues = ",".join(caps.queues()) if queues == "all" else queues
    if caps.queue_for("generate_image") in queues.split(","):  # its placements, from the cache
        worker.studio.warm_start()

    @app.task(name=TASK, bind=True)
    def run_job(_task: Any, job_id: str) -> str:
        return worker.run(job_id)

    name = f"gpu{gpu if gpu is not None else 'cpu'}-{os.getpid()}@%h"
    try:
        app.worker_main(
            [
                "worker",
                "-P",
                "solo",
                "-c",
                "1",
                "-Q",
                queues,
                "-n",
                name,
                "--loglevel",
                loglevel,
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        worker.close()
    return 0
