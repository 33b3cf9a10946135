"""The engine's job queue when jobs run on Celery workers (``ENFOADS_QUEUE=celery``).

Submitting records the job in the database, then sends its id to the capability's queue;
workers claim it there with a lease. Cancel is a flag in the job's row (a solo worker cannot
be interrupted by Celery's revoke); the workers' events come back over a Redis channel onto
this process's bus, so widgets and Socket.IO clients see a remote job move.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from enfoads.core import events, loops
from enfoads.core.errors import NotFound
from enfoads.core.jobs import Handler, Job, JobState, JobStore, StoredQueue, wait_for
from enfoads.workers.app import TASK, events_channel, make_celery

log = logging.getLogger(__name__)


class CeleryJobQueue(StoredQueue):
    """``JobBackend`` over Celery + Redis (see the module docstring)."""

    def __init__(self, store: JobStore, settings: Any, *, lang: Any = "es"):
        self.store = store
        self.settings = settings
        self._lang = lang  # a language, or a function that reads the live settings
        self.app = make_celery(settings)
        self._kinds: set[str] = set()
        self._queues: dict[str, str] = {}  # each kind's queue, from its JobSpec
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def register(self, kind: str, handler: Handler, *, queue: str = "images") -> None:
        self._kinds.add(kind)  # the handlers run in the workers
        self._queues[kind] = queue

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def submit(self, kind: str, params: dict[str, Any], *, retry_of: str | None = None) -> Job:
        if kind not in self._kinds:
            raise NotFound("job kind", kind)
        job = self.store.create(kind, params, retry_of)
        self._send(job)
        return job

    def _send(self, job: Job) -> None:
        self.app.send_task(TASK, args=[job.id], queue=self._queues.get(job.kind, "images"))

    def _cancel_running(self, job_id: str) -> None:
        self.store.request_cancel(job_id)  # a solo worker reads it between steps

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        with self._lock:
            done = self._done.setdefault(job_id, threading.Event())
        return wait_for(lambda: self.store.get(job_id), done, timeout)

    def start(self) -> None:
        """Listen to the workers' events; send again what is queued in the database (a message
        lost with a Redis that restarted without its data; a duplicate is dropped by the
        claim)."""
        if self._listener is not None:
            return
        for job in self.store.reclaim_expired(self.settings.lease_s, self.lang):
            log.info("job %s: its worker is gone", job.id)
        for job in self.store.list(state=JobState.QUEUED.value, limit=500):
            self._send(job)
        self._stop.clear()
        self._listener = threading.Thread(
            target=self._listen, name="enfoads-worker-events", daemon=True
        )
        self._listener.start()
        loops.every(
            lambda: self.settings.lease_s / 3,
            self._watch,
            self._stop,
            "enfoads-worker-watch",
            "could not check the workers' leases",
        )

    def _watch(self) -> None:
        """A worker killed mid-job: once its lease runs out, say so on the job and send it
        again, so another worker takes it over now instead of when Redis redelivers it (its
        visibility timeout is hours: longer than the longest job)."""
        from enfoads.core.i18n import t

        for job in self.store.release_lost(
            self.settings.lease_s, t("stage.worker_lost", self.lang)
        ):
            log.warning("job %s: its worker went silent; sent again", job.id)
            self._send(job)

    def _listen(self) -> None:
        import redis

        channel = events_channel(self.settings)
        while not self._stop.is_set():
            try:
                client = redis.Redis.from_url(self.settings.redis_url)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message and message.get("type") == "message":
                        self._relay(json.loads(message["data"]))
                pubsub.close()
                client.close()
            except Exception:  # Redis restarting: listen again shortly
                log.warning("lost the workers' event channel; reconnecting", exc_info=True)
                self._stop.wait(1.0)

    def _relay(self, data: dict[str, Any]) -> None:
        event = events.Event(str(data.get("name")), dict(data.get("payload") or {}))
        if event.name == "job_update" and event.payload.get("state") in (
            "completed",
            "failed",
            "cancelled",
        ):
            with self._lock:
                waiter = self._done.get(event.payload.get("id", ""))
            if waiter is not None:
                waiter.set()
        self.store.bus.publish(event)

    def shutdown(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout)
            self._listener = None
