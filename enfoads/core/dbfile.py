"""A database Google Drive cannot corrupt: the live SQLite file on local disk, a copy on Drive.

SQLite's WAL does not work on network file systems, and Colab's Drive mount drops mid-session
(``Errno 107``, colabtools#3441). When the data dir is on such a mount, the live database sits
on this machine's local disk (``Settings.live_db_path``); the copy in the data dir
(``Settings.db_backup_path``) is written with SQLite's online backup API after each finished
job and when the studio closes, and restored from at start on a machine that has no live file
yet (a new Colab VM). Assets and models stay on Drive.

A copy is written to a temporary file beside the target and renamed over it, so a Drive that
drops mid-copy leaves the previous copy whole; the failure is logged and the next backup
tries again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from enfoads.core.files import private_dir, write_json_aside

log = logging.getLogger(__name__)

# File systems where SQLite's locking and WAL's shared memory cannot be trusted.
NETWORK_FS = ("fuse", "nfs", "cifs", "smb", "9p", "sshfs", "afs", "gcsfuse", "davfs")


def mount_type(path: Path, mounts_file: str = "/proc/mounts") -> str:
    """The file system type of the mount holding ``path`` ('' when unknown)."""
    try:
        lines = Path(mounts_file).read_text().splitlines()
    except OSError:
        return ""
    best, kind = "", ""
    target = str(path.resolve())
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def on_network_fs(path: Path) -> bool:
    """Google Drive in Colab (FUSE), NFS, SMB and the like."""
    if str(path.resolve()).startswith("/content/drive/"):
        return True
    kind = mount_type(path)
    return any(kind.startswith(prefix) for prefix in NETWORK_FS)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    private_dir(folder)  # the live database's local folder: this user's only
    with open(folder / "db.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite file (the online backup API, safe while it is in
    use), written beside ``target`` and renamed over it. The copy is a plain rollback-journal
    database: no WAL files to keep next to it."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            # The engine's row means "this machine's engine": a copy carries no live engine
            # (across machines the data dir's lease file holds that rule).
            if dst.execute("SELECT 1 FROM sqlite_master WHERE name = 'engine'").fetchone():
                dst.execute("DELETE FROM engine")
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)


def integrity_ok(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    except sqlite3.Error:
        return False


# The rows two sessions can each have added: merged by primary key, never overwritten.
MERGED_TABLES = ("assets", "asset_tags", "jobs")


def meta_path(backup: Path) -> Path:
    """The copy's record beside it: which generation it is and which engine wrote it."""
    return backup.with_name(backup.name + ".json")


def read_meta(backup: Path) -> dict:
    try:
        meta = json.loads(meta_path(backup).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"generation": 0, "owner": ""}
    if not isinstance(meta, dict) or not isinstance(meta.get("generation"), int):
        return {"generation": 0, "owner": ""}
    return meta


def merge_into(target: Path, source: Path) -> int:
    """Add to ``target`` every row of ``source`` it lacks (assets, their tags, jobs; by primary
    key: ids are random, so two sessions' rows never collide). Rows already in ``target`` stay
    as they are. Returns how many rows came in."""
    conn = sqlite3.connect(f"file:{target}", uri=True, timeout=30)
    try:
        conn.execute("ATTACH DATABASE ? AS other", (f"file:{source}?mode=ro",))
        added = 0
        for table in MERGED_TABLES:
            mine = [row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")]
            theirs = {row[1] for row in conn.execute(f"PRAGMA other.table_info({table})")}
            columns = ", ".join(c for c in mine if c in theirs)
            if not columns:
                continue
            added += conn.execute(
                f"INSERT OR IGNORE INTO main.{table} ({columns}) "
                f"SELECT {columns} FROM other.{table}"
            ).rowcount
        conn.commit()
        conn.execute("DETACH DATABASE other")
        return added
    finally:
        conn.close()


class SyncState:
    """Which generation of the data dir's copy this machine's live file has taken in, kept
    beside the live file (a VM restarted on the same disk remembers it)."""

    def __init__(self, live: Path):
        self.path = live.with_name("synced.json")

    @property
    def generation(self) -> int:
        try:
            return int(json.loads(self.path.read_text(encoding="utf-8"))["generation"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def record(self, generation: int) -> None:
        write_json_aside(self.path, {"generation": generation})


def restore_live(live: Path, backup: Path) -> bool:
    """At start: a machine with no live file takes the data dir's copy (when it has one and
    it is whole); one whose live file is older than the copy (another session, on another
    machine, wrote it since) takes in the copy's rows. True when anything came in."""
    with _locked(live.parent):
        if not backup.is_file():
            return False
        if not integrity_ok(backup):
            log.error("the database copy %s is damaged; starting from the live file", backup)
            return False
        state, meta = SyncState(live), read_meta(backup)
        if not live.exists():
            copy_database(backup, live)
            state.record(meta["generation"])
            log.info("database restored from %s", backup)
            return True
        if meta["generation"] > state.generation:
            added = merge_into(live, backup)
            state.record(meta["generation"])
            log.info("took in %d rows from %s (written by %s)", added, backup, meta["owner"])
            return added > 0
        return False


class DatabaseBackup:
    """Copies the live file into the data dir on request, one copy at a time, off the caller's
    thread (a job must not wait for Drive); requests that come during a copy make one more.

    Each copy carries a generation and its engine (``enfoads.db.json``). A copy that another
    engine wrote after this machine last took one in is never replaced as it is: its rows are
    merged into the live file first, so two sessions on one Drive folder lose nothing."""

    def __init__(self, live: Path, backup: Path, owner: str = ""):
        self.live, self.backup, self.owner = live, backup, owner
        self.state = SyncState(live)
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.copies = 0
        self.failures = 0
        self.merged = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="enfoads-db-backup", daemon=True)
            self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def now(self) -> bool:
        """Copy at once, on this thread; False (and logged) when the data dir cannot be written."""
        with self._lock:
            try:
                meta, synced = read_meta(self.backup), self.state.generation
                if meta["generation"] > synced and self.backup.is_file():
                    if integrity_ok(self.backup):  # another engine wrote it: its rows first
                        self.merged += merge_into(self.live, self.backup)
                        log.warning(
                            "the copy in %s was written by %s meanwhile: its rows merged in",
                            self.backup,
                            meta["owner"] or "another engine",
                        )
                generation = max(meta["generation"], synced) + 1
                copy_database(self.live, self.backup)
                write_json_aside(
                    meta_path(self.backup),
                    {"generation": generation, "owner": self.owner, "written_at": time.time()},
                )
                self.state.record(generation)
            except (OSError, sqlite3.Error) as exc:  # Drive dropped (Errno 107), disk full
                self.failures += 1
                log.warning("could not back up the database to %s: %s", self.backup, exc)
                return False
            self.copies += 1
            return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            self.now()

    def close(self) -> None:
        """Stop the thread, then one last copy."""
        self._stop.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        self.now()
