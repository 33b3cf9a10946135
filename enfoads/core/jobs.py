"""Jobs: every long operation is a job with a state, a progress, a stage and a result.

``queued → running → completed | failed | cancelled``. Every change is written to the database
first and then published as a ``job_update`` event, so the widgets, Socket.IO and a process
started later all see the same record. ``LocalJobQueue`` runs jobs on worker threads in this
process; ``JobBackend`` is the interface a Celery backend implements for remote GPU workers.
"""

from __future__ import annotations

import enum
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from enfoads.core import events, loops
from enfoads.core.assets import utcnow
from enfoads.core.db import JobRow
from enfoads.core.errors import (
    DiskFull,
    EnfoadsError,
    GpuOutOfMemory,
    JobCancelled,
    JobStateError,
    JobTimedOut,
    NotFound,
    is_disk_full,
    is_out_of_memory,
    public_reason,
)
from enfoads.core.i18n import render_stored, t
from enfoads.core.validation import check_tree, scrub, storable

log = logging.getLogger(__name__)
STAGE_CHARS = 255  # the stage column's width (the whole text stays in its i18n record)


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)

    @classmethod
    def is_finished(cls, value: str | None) -> bool:
        """Whether a state as clients read it (a job record's ``state``) has ended."""
        return value in FINISHED_STATES


# The states a job ends in, as strings (job records and events): JobState.finished's.
FINISHED_STATES = frozenset(s.value for s in JobState if s.finished)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: JobState
    progress: float
    stage: str
    params: dict[str, Any]
    result_asset_ids: tuple[str, ...]
    result: dict[str, Any]
    error: str
    error_code: str
    retry_of: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    owner: str | None = None  # the process running it (its lease), while it runs
    heartbeat_at: datetime | None = None
    stage_i18n: dict[str, Any] | None = None  # {"key", "params"}: the stage in any language
    error_i18n: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        # scrub: rows stored before text was checked must not break a listing
        return cls(
            id=row.id,
            kind=row.kind,
            state=JobState(row.state),
            progress=row.progress,
            stage=scrub(row.stage or ""),
            params=scrub(dict(row.params or {})),
            result_asset_ids=tuple(row.result_asset_ids or ()),
            result=scrub(dict(row.result or {})),
            error=scrub(row.error or ""),
            error_code=row.error_code,
            retry_of=row.retry_of,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            owner=row.owner,
            heartbeat_at=row.heartbeat_at,
            stage_i18n=row.stage_i18n or None,
            error_i18n=row.error_i18n or None,
        )

    def localized(self, lang: str) -> Job:
        """This job with its stage and error in ``lang`` (as stored where no key was kept)."""
        return replace(
            self,
            stage=render_record(self.stage_i18n, self.stage, lang),
            error=render_record(self.error_i18n, self.error, lang) if self.error else self.error,
        )

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        """The job as clients read it; with ``lang``, its stage and error in that language."""
        if lang is not None:
            return self.localized(lang).to_dict()
        iso = lambda d: d.isoformat() + "Z" if d else None  # noqa: E731
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "status": self.state.value,
            "progress": round(self.progress, 1),
            "stage": self.stage,
            "params": self.params,
            "result_asset_ids": list(self.result_asset_ids),
            "result_urls": [f"/api/assets/{a}/file" for a in self.result_asset_ids],
            "result": self.result,
            "error": self.error or None,
            "error_code": self.error_code or None,
            "retry_of": self.retry_of,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            # the stage and error as catalogue keys, for a page in another language than the
            # engine's (``localized_payload``)
            "stage_i18n": self.stage_i18n,
            "error_i18n": self.error_i18n,
        }


@dataclass(frozen=True)
class JobResult:
    """What a handler returns: the assets it stored and any extra data for the client."""

    asset_ids: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class JobContext:
    """Handed to a running handler: its params, progress reporting and the cancel check."""

    def __init__(
        self,
        job: Job,
        token: CancelToken,
        report: Callable[[float, str | None], None],
        lang: str,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.timeout_s = timeout_s
        self._clock = clock
        # Past this the job ends failed; download time does not count (watching_downloads).
        self.deadline = clock() + timeout_s if timeout_s else None
        self.job_id = job.id
        self.kind = job.kind
        self.params = job.params
        self.lang = lang
        self._token = token
        self._report = report

    @property
    def cancelled(self) -> bool:
        return self._token.cancelled

    def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` when the user has cancelled, ``JobTimedOut`` past the job's
        time limit; call it between steps."""
        if self._token.cancelled:
            raise JobCancelled()
        if self.deadline is not None and self._clock() > self.deadline:
            raise JobTimedOut(self.kind, self.timeout_s or 0)

    def progress(self, percent: float, stage: str | None = None) -> None:
        """Report progress (0–100, never going back) and a stage text; checks cancel first."""
        self.check_cancelled()
        self._report(max(0.0, min(100.0, float(percent))), stage)

    def stage(self, text: str) -> None:
        """A new stage text at the same progress (safe from another thread; no cancel check)."""
        self._report(0.0, text)

    @contextmanager
    def watching_downloads(
        self, folder: Path, label: str, expected_bytes: int, interval_s: float = 1.0
    ) -> Iterator[None]:
        """While the block runs (a first model load), say how much has arrived: "Descargando
        SDXL: 2.1 / 6.9 GB" instead of a stage that looks stuck for minutes. Counted from the
        bytes this process writes (``/proc/self/io``), so nothing walks ``folder`` (on Drive
        in Colab) every second; where that counter is missing, ``folder`` is walked."""
        start = process_written_bytes()
        measure = process_written_bytes if start is not None else lambda: folder_bytes(folder)
        start = start if start is not None else measure()
        began = self._clock()
        stop = threading.Event()

        def watch() -> None:
            grown = (measure() or 0) - start
            if grown >= 1_000_000:
                self.stage(
                    self.t(
                        "stage.downloading_size",
                        model=label,
                        done=human_size(grown),
                        total=human_size(max(expected_bytes, grown)),
                    )
                )

        thread = loops.every(
            interval_s, watch, stop, "enfoads-download-watch", "could not measure a download"
        )
        try:
            yield
        finally:
            stop.set()
            thread.join()
            if self.deadline is not None:  # a download's time is the network's, not the job's
                self.deadline += self._clock() - began

    def t(self, key: str, **params: Any) -> str:
        return t(key, self.lang, **params)


def render_record(stored: dict[str, Any] | None, fallback: str, lang: str) -> str:
    """A stored ``{"key", "params"}`` text in ``lang``; ``fallback`` (the text as stored) when
    there is no record or it comes from another version of the studio."""
    if not stored:
        return fallback
    try:
        return render_stored(stored["key"], stored.get("params") or {}, lang)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return fallback


def localized_payload(job: dict[str, Any], lang: str) -> dict[str, Any]:
    """A ``job_update`` payload with its stage and error in ``lang``."""
    out = dict(job)
    out["stage"] = render_record(job.get("stage_i18n"), job.get("stage") or "", lang)
    if job.get("error"):
        out["error"] = render_record(job.get("error_i18n"), job["error"], lang)
    return out


def i18n_record(text: Any) -> dict[str, Any] | None:
    """``{"key", "params"}`` of a catalogue text (``i18n.Text``), when it can be stored."""
    key, params = getattr(text, "key", None), getattr(text, "params", None)
    if not key or not isinstance(params, dict):
        return None
    try:
        storable(params, "stage")
    except EnfoadsError:
        return None
    return {"key": key, "params": params}


def human_size(n: int) -> str:
    """``640 MB`` under a gigabyte, ``6.4 GB`` above."""
    return f"{n / 1024**2:.0f} MB" if n < 1024**3 else f"{n / 1024**3:.1f} GB"


def process_written_bytes() -> int | None:
    """Bytes this process has written so far, to any file (Linux's ``wchar``); None elsewhere."""
    try:
        with open("/proc/self/io", "rb") as handle:
            for line in handle:
                if line.startswith(b"wchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (partial downloads included); 0 when it is missing."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # removed while we looked (a finished download renamed)
    return total


Handler = Callable[[JobContext], JobResult]


class JobBackend(Protocol):
    """What the Studio needs from a queue; the local queue and a Celery backend provide it."""

    def register(self, kind: str, handler: Handler, *, queue: str = "images") -> None: ...
    def kinds(self) -> list[str]: ...
    def busy(self) -> bool: ...
    def submit(self, kind: str, params: dict[str, Any], *, retry_of: str | None = None) -> Job: ...
    def get(self, job_id: str) -> Job: ...
    def list(
        self, *, state: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[Job]: ...
    def cancel(self, job_id: str) -> Job: ...
    def retry(self, job_id: str) -> Job: ...
    def wait(self, job_id: str, timeout: float | None = None) -> Job: ...
    def start(self) -> None: ...
    def shutdown(self, timeout: float = 10.0) -> None: ...


def wait_for(
    read: Callable[[], Job], woken: threading.Event, timeout: float | None, poll_s: float = 0.5
) -> Job:
    """Until the job ``read`` returns has finished, or ``timeout`` passed: its record. Woken
    by its finishing event (``woken``), and reading the record every ``poll_s`` meanwhile (an
    event may be lost: another process, a dropped connection). The one wait loop of the
    engine's Celery queue and of an attached studio."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = read()
        left = None if deadline is None else deadline - time.monotonic()
        if job.state.finished or (left is not None and left <= 0):
            return job
        woken.wait(poll_s if left is None else min(poll_s, left))


class JobStore:
    """Job rows in the database, with compare-and-set state changes (safe across processes)."""

    def __init__(
        self, sessions: sessionmaker, bus: events.EventBus, clock: Callable[[], datetime] = utcnow
    ):
        self._sessions = sessions
        self._bus = bus
        self.clock = clock

    @property
    def bus(self) -> events.EventBus:
        return self._bus

    def create(self, kind: str, params: dict[str, Any], retry_of: str | None = None) -> Job:
        check_tree(params, "params")
        storable(params, "params")  # nothing that cannot be read back is ever stored
        row = JobRow(
            id=f"job_{secrets.token_hex(8)}",
            kind=kind,
            state=JobState.QUEUED.value,
            progress=0.0,
            stage="",
            params=params,
            result_asset_ids=[],
            result={},
            error="",
            error_code="",
            retry_of=retry_of,
            created_at=self.clock(),
        )
        with self._sessions.begin() as s:
            s.add(row)
            s.flush()
            job = Job.from_row(row)
        self._bus.publish(events.job_update(job.to_dict()))
        return job

    def get(self, job_id: str) -> Job:
        with self._sessions() as s:
            row = s.get(JobRow, job_id) if isinstance(job_id, str) else None
            if row is None:
                raise NotFound("job", str(job_id)[:80])
            return Job.from_row(row)

    def list(
        self, *, state: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[Job]:
        query = select(JobRow)
        if state:
            query = query.where(JobRow.state == state)
        if kind:
            query = query.where(JobRow.kind == kind)
        query = query.order_by(JobRow.created_at.desc(), JobRow.id.desc())
        with self._sessions() as s:
            return [Job.from_row(r) for r in s.scalars(query.limit(min(max(1, limit), 500)))]

    def transition(
        self,
        job_id: str,
        from_states: Iterable[JobState],
        *,
        leased_by: str | None = None,
        **changes: Any,
    ) -> Job | None:
        """Apply ``changes`` only if the job is in one of ``from_states`` (and, with
        ``leased_by``, still leased by that owner); publish on success."""
        if "state" in changes:
            changes["state"] = JobState(changes["state"]).value
        for name in ("stage", "error"):  # keep what it says, to show it in any language
            if name in changes:
                changes[f"{name}_i18n"] = i18n_record(changes[name])
        if isinstance(changes.get("stage"), str):  # VARCHAR(255): PostgreSQL enforces it
            changes["stage"] = changes["stage"][:STAGE_CHARS]
        where = [JobRow.id == job_id, JobRow.state.in_([st.value for st in from_states])]
        if leased_by is not None:
            where.append(JobRow.owner == leased_by)
        with self._sessions.begin() as s:
            result = s.execute(update(JobRow).where(*where).values(**changes))
            if result.rowcount != 1:
                return None
            job = Job.from_row(s.get(JobRow, job_id))
        self._bus.publish(events.job_update(job.to_dict()))
        return job

    def claim(self, job_id: str, owner: str, lease_s: float, stage: str) -> tuple[Job | None, bool]:
        """Take the job to run it: a queued job, or a running one whose runner is gone (a
        redelivery after a worker died). Returns the job (None when it is not ours to run:
        finished, cancelled, or held by a live runner) and whether it was taken over."""
        from enfoads.core.engine import owner_gone

        now = self.clock()
        job = self.transition(
            job_id,
            [JobState.QUEUED],
            state=JobState.RUNNING,
            started_at=now,
            owner=owner,
            heartbeat_at=now,
            stage=stage,
        )
        if job is not None:
            return job, False
        with self._sessions() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.state != JobState.RUNNING.value:
                return None, False
            old_owner, beat = row.owner, row.heartbeat_at
        if old_owner == owner or not owner_gone(old_owner, beat, now, lease_s):
            return None, False
        with self._sessions.begin() as s:
            done = s.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.state == JobState.RUNNING.value,
                    JobRow.owner.is_(None) if old_owner is None else JobRow.owner == old_owner,
                    JobRow.heartbeat_at.is_(None) if beat is None else JobRow.heartbeat_at == beat,
                )
                .values(owner=owner, heartbeat_at=now, progress=0.0, stage=stage)
            ).rowcount
        if done != 1:
            return None, False
        log.warning("job %s taken over from %s (gone)", job_id, old_owner)
        return self.get(job_id), True

    def request_cancel(self, job_id: str) -> bool:
        """Flag a running job for cancel; its runner stops at its next step, wherever it runs."""
        with self._sessions.begin() as s:
            return (
                s.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.state == JobState.RUNNING.value)
                    .values(cancel_requested=True)
                ).rowcount
                == 1
            )

    def cancel_requested(self, job_id: str) -> bool:
        with self._sessions() as s:
            return bool(s.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id)))

    def heartbeat(self, owner: str) -> int:
        """Renew the lease of every job ``owner`` runs; how many it holds."""
        with self._sessions.begin() as s:
            return s.execute(
                update(JobRow)
                .where(JobRow.owner == owner, JobRow.state == JobState.RUNNING.value)
                .values(heartbeat_at=self.clock())
            ).rowcount

    def release_lost(self, lease_s: float, stage: str) -> list[Job]:
        """Running jobs whose remote runner went silent (a worker killed): their lease is
        dropped (``owner`` None, which the next ``claim`` takes over) and their stage says so,
        so a page shows why the job waits instead of a frozen percentage. Each lost lease is
        released once; a live runner's job is never touched. Returns the released jobs."""
        from enfoads.core.engine import owner_gone

        now = self.clock()
        with self._sessions() as s:
            running = s.execute(
                select(JobRow.id, JobRow.owner, JobRow.heartbeat_at).where(
                    JobRow.state == JobState.RUNNING.value, JobRow.owner.is_not(None)
                )
            ).all()
        released = []
        for job_id, owner, beat in running:
            if owner_gone(owner, beat, now, lease_s):
                job = self.transition(
                    job_id, [JobState.RUNNING], leased_by=owner, owner=None, stage=stage
                )
                if job is not None:
                    released.append(job)
        return released

    def reclaim_expired(self, lease_s: float, lang: str) -> list[Job]:
        """Mark interrupted, once, each running job whose runner is gone (lease expired, or
        its process dead on this machine). Jobs a live owner holds are never touched."""
        from enfoads.core.engine import owner_gone

        now = self.clock()
        reclaimed = []
        with self._sessions() as s:
            running = s.execute(
                select(JobRow.id, JobRow.owner, JobRow.heartbeat_at).where(
                    JobRow.state == JobState.RUNNING.value
                )
            ).all()
        for job_id, owner, beat in running:
            if not owner_gone(owner, beat, now, lease_s):
                continue
            with self._sessions.begin() as s:  # compare-and-set: the lease we saw, unchanged
                where = [
                    JobRow.id == job_id,
                    JobRow.state == JobState.RUNNING.value,
                    JobRow.owner.is_(None) if owner is None else JobRow.owner == owner,
                    JobRow.heartbeat_at.is_(None) if beat is None else JobRow.heartbeat_at == beat,
                ]
                error = t("error.interrupted", lang)
                done = s.execute(
                    update(JobRow)
                    .where(*where)
                    .values(
                        state=JobState.FAILED.value,
                        finished_at=now,
                        error=error,
                        error_i18n=i18n_record(error),
                        error_code="interrupted",
                        owner=None,
                    )
                ).rowcount
            if done == 1:
                job = self.get(job_id)
                self._bus.publish(events.job_update(job.to_dict()))
                reclaimed.append(job)
                log.warning("job %s: its runner %s is gone; marked interrupted", job_id, owner)
        return reclaimed


class StoredQueue:
    """What every queue shares: the database is the record (get, list), and the rules of
    cancel and retry. A queue says how a running job is told to stop (``_cancel_running``)."""

    store: JobStore
    _lang: str | Callable[[], str]

    @property
    def lang(self) -> str:
        """The language of stages and errors now (read from the live settings when given a
        function: a switch in Settings applies to the next job)."""
        return self._lang() if callable(self._lang) else self._lang

    def busy(self) -> bool:
        """Whether this process is running or holding jobs (background work waits for idle);
        a queue whose jobs run in other processes never is."""
        return False

    def get(self, job_id: str) -> Job:
        return self.store.get(job_id)

    def list(
        self, *, state: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[Job]:
        return self.store.list(state=state, kind=kind, limit=limit)

    def cancel(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job.state is JobState.QUEUED:
            done = self.store.transition(
                job_id,
                [JobState.QUEUED],
                state=JobState.CANCELLED,
                finished_at=self.store.clock(),
                error=t("error.cancelled", self.lang),
                error_code="cancelled",
            )
            if done is not None:
                self._finished(job_id)
                return done
            job = self.store.get(job_id)  # it started meanwhile: cancel the running job
        if job.state is JobState.RUNNING:
            self._cancel_running(job_id)
            return self.store.get(job_id)
        raise JobStateError(job_id, job.state.value, "cancelled")

    def retry(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise JobStateError(job_id, job.state.value, "retried")
        return self.submit(job.kind, job.params, retry_of=job.id)  # type: ignore[attr-defined]

    def _cancel_running(self, job_id: str) -> None:
        raise NotImplementedError

    def _finished(self, job_id: str) -> None:
        """A job ended outside a runner (cancelled while queued): wake its waiters."""


class LocalJobQueue(StoredQueue):
    """Runs jobs on ``workers`` threads of this process (one per GPU; one by default).

    Each job is claimed with a lease (``owner`` + heartbeat every ``lease_s / 3``); at start,
    only jobs whose runner is gone are marked interrupted, never those another live process
    runs."""

    def __init__(
        self,
        store: JobStore,
        *,
        workers: int = 1,
        lang: str | Callable[[], str] = "es",
        owner: str | None = None,
        lease_s: float = 30.0,
        timeout_s: Callable[[str], float | None] | None = None,
    ):
        from enfoads.core.engine import new_owner_id

        self._timeout_s = timeout_s or (lambda _kind: None)
        self.store = store
        self.workers = workers
        self._lang = lang
        self.owner = owner or new_owner_id()
        self.lease_s = lease_s
        self._stop = threading.Event()
        self._handlers: dict[str, Handler] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._tokens: dict[str, CancelToken] = {}
        self._done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- the backend interface ---------------------------------------------------------
    def register(self, kind: str, handler: Handler, *, queue: str = "images") -> None:
        self._handlers[kind] = handler  # one process runs every queue

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def busy(self) -> bool:
        with self._lock:
            running = bool(self._tokens)
        return running or not self._queue.empty()

    def submit(self, kind: str, params: dict[str, Any], *, retry_of: str | None = None) -> Job:
        if kind not in self._handlers:
            raise NotFound("job kind", kind)
        job = self.store.create(kind, params, retry_of)
        self._enqueue(job.id)
        return job

    def _cancel_running(self, job_id: str) -> None:
        with self._lock:
            token = self._tokens.get(job_id)
        if token is not None:
            token.cancel()

    def _finished(self, job_id: str) -> None:
        with self._lock:
            self._done.setdefault(job_id, threading.Event()).set()

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has finished (or ``timeout`` passed); return its record."""
        with self._lock:
            done = self._done.setdefault(job_id, threading.Event())
        if not self.store.get(job_id).state.finished:
            done.wait(timeout)
        return self.store.get(job_id)

    def start(self) -> None:
        """Recover what a dead process left, then start the worker threads."""
        if self._threads:
            return
        for job in self.store.reclaim_expired(self.lease_s, self.lang):
            self._finished(job.id)
        for job in sorted(
            self.store.list(state=JobState.QUEUED.value, limit=500), key=lambda j: j.created_at
        ):
            log.info("job %s requeued after restart", job.id)
            self._enqueue(job.id)
        self._stop.clear()
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"enfoads-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._beat_thread = loops.every(
            lambda: self.lease_s / 3,
            lambda: self.store.heartbeat(self.owner),
            self._stop,
            "enfoads-job-lease",
            "could not renew the job leases",
        )

    def shutdown(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            tokens = list(self._tokens.values())
        for token in tokens:
            token.cancel()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    # -- internals ---------------------------------------------------------------------
    def _enqueue(self, job_id: str) -> None:
        with self._lock:
            self._done.setdefault(job_id, threading.Event())
        self._queue.put(job_id)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception:  # the worker outlives any job
                log.exception("worker failed around job %s", job_id)

    def _run(self, job_id: str) -> None:
        token = CancelToken()
        with self._lock:
            self._tokens[job_id] = token
        try:
            job, _took_over = self.store.claim(
                job_id, self.owner, self.lease_s, t("stage.queued", self.lang)
            )
            if job is None:
                return  # cancelled while queued
            if (
                execute(
                    self.store,
                    job,
                    self._handlers.get(job.kind),
                    token,
                    self.owner,
                    self.lang,
                    self._timeout_s(job.kind),
                )
                is not None
            ):
                self._finished(job_id)
        finally:
            with self._lock:
                self._tokens.pop(job_id, None)


# Progress is written to the job's row at most this often; every step still sends its event.
# Workers share one database: a row write per diffusion step made two H200 workers wait on
# SQLite's lock (1.86x one worker instead of 2x, benchmarks/workers.py).
PERSIST_PROGRESS_S = 0.5


class DbCancelToken:
    """Cancel as a flag in the job's row (set by ``JobStore.request_cancel`` from any process),
    read at most every ``interval_s``: how a job on a remote worker learns it was cancelled."""

    def __init__(self, store: JobStore, job_id: str, interval_s: float = 0.5):
        import time

        self._store, self._job_id, self._interval = store, job_id, interval_s
        self._time = time.monotonic
        self._checked = -1e9
        self._cancelled = False

    def cancel(self) -> None:
        self._store.request_cancel(self._job_id)

    @property
    def cancelled(self) -> bool:
        now = self._time()
        if not self._cancelled and now - self._checked >= self._interval:
            self._checked = now
            self._cancelled = self._store.cancel_requested(self._job_id)
        return self._cancelled


class _Progress:
    """A running job's progress reports: never backwards, an event for each visible change,
    the row written at most every ``PERSIST_PROGRESS_S`` (and only while ``owner`` holds the
    job's lease). Thread-safe: a download watcher reports from its own thread."""

    def __init__(self, store: JobStore, job: Job, owner: str):
        import time

        self.store, self.job_id, self.owner = store, job.id, owner
        self.progress, self.stage = 0.0, job.stage
        self.written, self.record = time.monotonic(), job.to_dict()
        self.lock = threading.Lock()

    def __call__(self, percent: float, stage: str | None) -> None:
        import time

        with self.lock:
            percent = max(percent, self.progress)  # progress never goes back
            stage = stage if stage is not None else self.stage
            if percent - self.progress < 0.5 and stage == self.stage:
                return  # nothing a user could see
            self.progress, self.stage = percent, stage
            now = time.monotonic()
            if now - self.written < PERSIST_PROGRESS_S:  # the event now, the row soon
                self.store.bus.publish(
                    events.job_update(dict(self.record, progress=round(percent, 1), stage=stage))
                )
                return
            updated = self.store.transition(
                self.job_id, [JobState.RUNNING], leased_by=self.owner, progress=percent, stage=stage
            )
            self.written = now
            if updated is not None:
                self.record = updated.to_dict()


def _crash(exc: Exception, job: Job, lang: str) -> tuple[str, str]:
    """A job's unexpected failure as (message, code): a full disk and an out-of-memory named,
    anything else with its public reason (the traceback stays in the log)."""
    if is_disk_full(exc):
        log.error("job %s (%s): the disk is full", job.id, job.kind)
        return DiskFull().message(lang), "error.disk_full"
    if is_out_of_memory(exc):  # the allocator's banner stays in the log
        log.error("job %s (%s) ran out of GPU memory: %s", job.id, job.kind, exc)
        return GpuOutOfMemory().message(lang), "error.gpu_memory"
    log.exception("job %s (%s) crashed", job.id, job.kind)
    return t("error.internal", lang, kind=job.kind, reason=public_reason(exc)), "error.internal"


def execute(
    store: JobStore,
    job: Job,
    handler: Handler | None,
    token: Any,
    owner: str,
    lang: str,
    timeout_s: float | None = None,
) -> Job | None:
    """Run a claimed job's handler and record how it ended (only while ``owner`` still holds
    its lease). The one path for the local queue and for remote workers. Past ``timeout_s``
    (checked between steps) the job ends failed and its models are released."""

    def finish(state: JobState, **changes: Any) -> Job | None:
        return store.transition(
            job.id,
            [JobState.RUNNING],
            leased_by=owner,
            state=state,
            finished_at=store.clock(),
            **changes,
        )

    ctx = JobContext(job, token, _Progress(store, job, owner), lang, timeout_s)
    try:
        if handler is None:
            raise NotFound("job kind", job.kind)
        result = handler(ctx)
    except JobCancelled:
        log.info("job %s cancelled", job.id)
        return finish(JobState.CANCELLED, error=t("error.cancelled", lang), error_code="cancelled")
    except EnfoadsError as exc:
        log.info("job %s failed: %s", job.id, exc)
        return finish(JobState.FAILED, error=exc.message(lang), error_code=exc.key)
    except Exception as exc:  # noqa: BLE001 - recorded in the job and logged by _crash
        error, code = _crash(exc, job, lang)
        return finish(JobState.FAILED, error=error, error_code=code)
    log.info("job %s completed", job.id)
    return finish(
        JobState.COMPLETED,
        progress=100.0,
        stage=t("stage.completed", lang),
        result_asset_ids=list(result.asset_ids),
        result=result.data,
    )
