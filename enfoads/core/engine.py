"""One engine per data dir: who owns the models, the GPU and the queue, and how to reach it.

The engine's identity, API address and lease live in the database beside the jobs, so every
process on the data dir (another kernel, a dashboard page, the CLI) finds it. A lease is a
heartbeat: an engine (or a job's runner) whose heartbeat is older than ``lease_s`` is gone;
on the same machine a dead process id tells at once, so a restart after ``kill -9`` does not
wait for the lease to run out.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from enfoads.core.db import EngineRow
from enfoads.core.errors import EnfoadsError

log = logging.getLogger(__name__)
KEY = "engine"
HOST = socket.gethostname()


def new_owner_id() -> str:
    """``host:pid:nonce``: unique per engine or worker, and tells where it runs."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(
    owner: str | None, heartbeat_at: datetime | None, now: datetime, lease_s: float
) -> bool:
    """Whether the process behind ``owner`` is gone: no heartbeat within the lease, or (on this
    machine) its process no longer exists."""
    if not owner or heartbeat_at is None:
        return True
    if now - heartbeat_at > timedelta(seconds=lease_s):
        return True
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host == HOST and pid.isdigit() and not pid_alive(int(pid))


@dataclass(frozen=True)
class EngineInfo:
    owner: str
    host: str
    pid: int
    url: str
    token: str
    started_at: datetime
    heartbeat_at: datetime

    @classmethod
    def from_row(cls, row: EngineRow) -> EngineInfo:
        return cls(
            row.owner, row.host, row.pid, row.url, row.token, row.started_at, row.heartbeat_at
        )

    def describe(self, lang: str = "en") -> str:
        """Names the engine for people: pid, machine, address and since when."""
        since = f"{self.started_at:%Y-%m-%d %H:%M} UTC"
        if lang == "es":
            return (
                f"pid {self.pid} en {self.host}, {self.url or 'sin dirección aún'}, desde {since}"
            )
        return f"pid {self.pid} on {self.host}, {self.url or 'no address yet'}, since {since}"


class _EngineError(EnfoadsError):
    """An error that names an engine, in the language of the message."""

    engine: EngineInfo

    def message(self, lang: str = "es") -> str:
        from enfoads.core.i18n import t

        return t(self.key, lang, **{**self.params, "engine": self.engine.describe(lang)})


class EngineBusy(_EngineError):
    """Another live engine owns this data dir."""

    status = 409

    def __init__(self, engine: EngineInfo):
        self.engine = engine
        super().__init__("error.engine_busy", engine=engine.describe())


class EngineUnreachable(_EngineError):
    """A live engine owns this data dir, but its API cannot be reached."""

    status = 503

    def __init__(self, engine: EngineInfo, reason: str):
        self.engine = engine
        super().__init__("error.engine_unreachable", engine=engine.describe(), reason=reason)


class EngineRegistry:
    """The engine row of one database: claim it, keep it alive, publish the API, let it go."""

    def __init__(
        self, sessions: sessionmaker, owner: str, *, lease_s: float, clock: Callable[[], datetime]
    ):
        self._sessions = sessions
        self.owner = owner
        self.lease_s = lease_s
        self.clock = clock

    def current(self) -> EngineInfo | None:
        """The live engine of this data dir, or None."""
        with self._sessions() as s:
            row = s.get(EngineRow, KEY)
            if row is None or owner_gone(row.owner, row.heartbeat_at, self.clock(), self.lease_s):
                return None
            return EngineInfo.from_row(row)

    def claim(self) -> None:
        """Become the engine, or raise ``EngineBusy`` naming the live one. Atomic across
        processes: a compare-and-set on the one row (or the insert that creates it)."""
        now = self.clock()
        _, _, rest = self.owner.partition(":")
        values = dict(
            owner=self.owner,
            host=HOST,
            pid=int(rest.partition(":")[0]),
            url="",
            token="",
            started_at=now,
            heartbeat_at=now,
        )
        with self._sessions.begin() as s:
            row = s.get(EngineRow, KEY)
            if row is not None:
                if row.owner != self.owner and not owner_gone(
                    row.owner, row.heartbeat_at, now, self.lease_s
                ):
                    raise EngineBusy(EngineInfo.from_row(row))
                old = (row.owner, row.heartbeat_at)
                done = s.execute(
                    update(EngineRow)
                    .where(
                        EngineRow.key == KEY,
                        EngineRow.owner == old[0],
                        EngineRow.heartbeat_at == old[1],
                    )
                    .values(**values)
                ).rowcount
                if done == 1:
                    log.info(
                        "engine claimed by %s (the last one, %s, was gone)", self.owner, old[0]
                    )
                    return
        if row is None:
            try:
                with self._sessions.begin() as s:
                    s.add(EngineRow(key=KEY, **values))
                log.info("engine claimed by %s", self.owner)
                return
            except IntegrityError:
                pass  # another process inserted it first
        live = self.current()
        if live is None:  # the winner died at once: try again
            return self.claim()
        raise EngineBusy(live)

    def publish(self, url: str, token: str) -> None:
        """Record where this engine's API listens (and the token attached clients use)."""
        with self._sessions.begin() as s:
            s.execute(
                update(EngineRow)
                .where(EngineRow.key == KEY, EngineRow.owner == self.owner)
                .values(url=url, token=token, heartbeat_at=self.clock())
            )

    def heartbeat(self) -> bool:
        """Renew the lease; False when another engine has taken over (this one must stop)."""
        with self._sessions.begin() as s:
            done = s.execute(
                update(EngineRow)
                .where(EngineRow.key == KEY, EngineRow.owner == self.owner)
                .values(heartbeat_at=self.clock())
            ).rowcount
        return done == 1

    def release(self) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(EngineRow).where(EngineRow.key == KEY, EngineRow.owner == self.owner))

    def wait_for_url(self, timeout: float, sleep: Callable[[float], None]) -> EngineInfo | None:
        """The live engine once it has published its address (it may be starting)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            live = self.current()
            if live is None or live.url or time.monotonic() > deadline:
                return live
            sleep(0.1)
