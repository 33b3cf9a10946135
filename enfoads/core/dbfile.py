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
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    folder.mkdir(parents=True, exist_ok=True)
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


def restore_live(live: Path, backup: Path) -> bool:
    """At start: a machine with no live file takes the data dir's copy (when it has one and
    it is whole). True when it restored."""
    with _locked(live.parent):
        if live.exists() or not backup.is_file():
            return False
        if not integrity_ok(backup):
            log.error("the database copy %s is damaged; starting a new database", backup)
            return False
        copy_database(backup, live)
        log.info("database restored from %s", backup)
        return True


class DatabaseBackup:
    """Copies the live file into the data dir on request, one copy at a time, off the caller's
    thread (a job must not wait for Drive); requests that come during a copy make one more."""

    def __init__(self, live: Path, backup: Path):
        self.live, self.backup = live, backup
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.copies = 0
        self.failures = 0

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
                copy_database(self.live, self.backup)
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
