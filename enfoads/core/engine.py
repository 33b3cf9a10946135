"""One engine per data dir: who owns the models, the GPU and the queue, and how to reach it.

The engine's identity, API address and lease live in the database beside the jobs, so every
process on the data dir (another kernel, a dashboard page, the CLI) finds it. A lease is a
heartbeat: an engine (or a job's runner) whose heartbeat is older than ``lease_s`` is gone;
on the same machine a dead process id tells at once, so a restart after ``kill -9`` does not
wait for the lease to run out.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from enfoads.core.db import EngineRow
from enfoads.core.errors import EnfoadsError
from enfoads.core.files import write_json_aside

log = logging.getLogger(__name__)
KEY = "engine"
HOST = socket.gethostname()


def process_started(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux's /proc/<pid>/stat):
    tells a process from a later one that got the same pid. None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the name may hold spaces and brackets
    return fields[19] if len(fields) > 19 else None


def new_owner_id() -> str:
    """``host:pid:nonce.start``: unique per engine or worker, tells where it runs, and (with
    the process's start time) which process that pid was."""
    pid = os.getpid()
    return f"{HOST}:{pid}:{secrets.token_hex(4)}.{process_started(pid) or ''}"


def owner_pid(owner: str) -> int:
    """The pid in an owner id (``host:pid:…``)."""
    return int(owner.split(":")[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def local_process_alive(owner: str) -> bool | None:
    """For an owner on this machine: whether that very process still exists (its pid alive
    with the same start time). None for another machine's owner, or one that cannot tell."""
    host, _, rest = owner.partition(":")
    pid, _, nonce = rest.partition(":")
    if host != HOST or not pid.isdigit():
        return None
    if not pid_alive(int(pid)):
        return False
    start = nonce.partition(".")[2]
    if not start:
        return None  # an owner id from before start times: the heartbeat decides
    now_start = process_started(int(pid))
    return now_start is None or now_start == start


def owner_gone(
    owner: str | None, heartbeat_at: datetime | None, now: datetime, lease_s: float
) -> bool:
    """Whether the process behind ``owner`` is gone. On this machine the process itself tells:
    gone when it no longer exists (a ``kill -9`` is seen at once), alive while it does, however
    old its heartbeat (a paused process, a laptop asleep, must not find its work taken when it
    wakes). Elsewhere, the heartbeat: none within the lease means gone."""
    if not owner:
        return True
    alive = local_process_alive(owner)
    if alive is not None:
        return not alive
    if heartbeat_at is None:
        return True
    return now - heartbeat_at > timedelta(seconds=lease_s)


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


class EngineElsewhere(EngineBusy):
    """Another machine's session holds the data dir's lease file (two Colab runtimes on one
    Drive folder): named, with when its lease ends if it is gone."""

    def __init__(self, engine: EngineInfo, until: datetime):
        self.engine = engine
        _EngineError.__init__(
            self,
            "error.engine_elsewhere",
            engine=engine.describe(),
            until=f"{until:%Y-%m-%d %H:%M:%S}",
        )


class LeaseFile:
    """The one-engine rule where the database cannot hold it: its live file sits on each
    machine's local disk when the data dir is on Drive, so two machines' engine rows never
    meet. A JSON file in the data dir (owner, host, pid, start, heartbeat; written aside and
    renamed) holds the lease instead, checked with the same rules as the engine row."""

    def __init__(self, path: Path, owner: str, lease_s: float, clock: Callable[[], datetime]):
        self.path, self.owner, self.lease_s, self.clock = path, owner, lease_s, clock

    def read(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            data["heartbeat_at"] = datetime.fromisoformat(data["heartbeat_at"])
            data["started_at"] = datetime.fromisoformat(data["started_at"])
            return data if isinstance(data.get("owner"), str) else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def holder(self) -> dict | None:
        """Another live engine's lease, or None (none, ours, or its holder gone)."""
        data = self.read()
        if data is None or data["owner"] == self.owner:
            return None
        if owner_gone(data["owner"], data["heartbeat_at"], self.clock(), self.lease_s):
            return None
        return data

    def refuse_if_held(self) -> None:
        data = self.holder()
        if data is not None:
            info = EngineInfo(
                data["owner"],
                data.get("host", "?"),
                int(data.get("pid") or 0),
                "",
                "",
                data["started_at"],
                data["heartbeat_at"],
            )
            raise EngineElsewhere(info, data["heartbeat_at"] + timedelta(seconds=self.lease_s))

    def write(self, started_at: datetime) -> None:
        write_json_aside(
            self.path,
            {
                "owner": self.owner,
                "host": HOST,
                "pid": owner_pid(self.owner),
                "started_at": started_at.isoformat(),
                "heartbeat_at": self.clock().isoformat(),
            },
        )

    def renew(self, started_at: datetime) -> bool:
        """Renew ours; False when the file names another engine (it took over: this one
        must stop writing)."""
        data = self.read()
        if data is not None and data["owner"] != self.owner:
            return False
        self.write(started_at)
        return True

    def release(self) -> None:
        data = self.read()
        if data is not None and data["owner"] == self.owner:
            self.path.unlink(missing_ok=True)


class EngineRegistry:
    """The engine row of one database: claim it, keep it alive, publish the API, let it go.
    With ``lease_file`` (the data dir is shared but the database is not) the same claim also
    holds the data dir's lease file."""

    def __init__(
        self,
        sessions: sessionmaker,
        owner: str,
        *,
        lease_s: float,
        clock: Callable[[], datetime],
        lease_file: Path | None = None,
    ):
        self._sessions = sessions
        self.owner = owner
        self.lease_s = lease_s
        self.clock = clock
        self.file = LeaseFile(lease_file, owner, lease_s, clock) if lease_file else None
        self.started_at = clock()

    def current(self) -> EngineInfo | None:
        """The live engine of this data dir, or None."""
        with self._sessions() as s:
            row = s.get(EngineRow, KEY)
            if row is None or owner_gone(row.owner, row.heartbeat_at, self.clock(), self.lease_s):
                return None
            return EngineInfo.from_row(row)

    def claim(self) -> None:
        """Become the engine, or raise ``EngineBusy`` naming the live one (``EngineElsewhere``
        for another machine's, through the lease file). Atomic across processes of a
        database: a compare-and-set on the one row (or the insert that creates it)."""
        if self.file is not None:
            self.file.refuse_if_held()
        self._claim_row()
        if self.file is not None:
            self.file.write(self.started_at)

    def _claim_row(self) -> None:
        now = self.clock()
        values = dict(
            owner=self.owner,
            host=HOST,
            pid=owner_pid(self.owner),
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
            return self._claim_row()
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
        if done != 1:
            return False
        return self.file is None or self.file.renew(self.started_at)

    def release(self) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(EngineRow).where(EngineRow.key == KEY, EngineRow.owner == self.owner))
        if self.file is not None:
            self.file.release()

    def wait_for_url(self, timeout: float, sleep: Callable[[float], None]) -> EngineInfo | None:
        """The live engine once it has published its address (it may be starting)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            live = self.current()
            if live is None or live.url or time.monotonic() > deadline:
                return live
            sleep(0.1)
