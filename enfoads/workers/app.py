"""The Celery app, configured for GPU work, and where each job kind is queued."""

from __future__ import annotations

import hashlib
from typing import Any

TASK = "enfoads.run_job"


def events_channel(settings: Any) -> str:
    """The Redis channel on which this data dir's workers publish their events."""
    digest = hashlib.sha1(str(settings.db_url).encode()).hexdigest()[:12]
    return f"enfoads:events:{digest}"


def make_celery(settings: Any) -> Any:
    """Celery suited to CUDA: one task at a time per process, acknowledged only when done (a
    killed worker's job is redelivered), nothing prefetched that another GPU could run."""
    from celery import Celery

    app = Celery("enfoads", broker=settings.redis_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        task_ignore_result=True,
        task_default_queue="images",
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app
