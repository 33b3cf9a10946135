"""Colab as it really is: the database off Drive, Drive detection, OpenCV 5."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from enfoads.core.dbfile import DatabaseBackup, integrity_ok, mount_type, on_network_fs
from enfoads.core.jobs import JobResult, JobState
from enfoads.core.settings import load_settings
from enfoads.core.studio import Studio

ENFOADS = Path(__file__).resolve().parent.parent / "enfoads"


def rows(path: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_drive_and_network_mounts_are_recognised(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda1 / ext4 rw 0 0\n"
        "drive /content/drive fuse.drive rw,nosuid 0 0\n"
        "server:/x /mnt/nfs nfs4 rw 0 0\n"
    )
    assert mount_type(Path("/content/drive/MyDrive/EnfoadsStudio"), str(mounts)) == "fuse.drive"
    assert mount_type(Path("/mnt/nfs/a"), str(mounts)) == "nfs4"
    assert mount_type(Path("/home/u"), str(mounts)) == "ext4"
    assert on_network_fs(Path("/content/drive/MyDrive/EnfoadsStudio"))
    assert not on_network_fs(tmp_path)  # this machine's disk
    s = load_settings(data_dir=tmp_path / "d")
    assert not s.db_on_local_disk and s.live_db_path == s.db_backup_path
    s = load_settings(data_dir=tmp_path / "d", db_location="local")
    assert s.db_on_local_disk and not s.live_db_path.is_relative_to(s.data_dir)
    assert s.db_url.endswith(str(s.live_db_path))
    assert not load_settings(
        data_dir=tmp_path / "d", db_location="local", database_url="sqlite:///x.db"
    ).db_on_local_disk


@pytest.fixture
def drive_settings(tmp_path):
    """A data dir standing for Drive, with the live database on local disk."""
    s = load_settings(
        data_dir=tmp_path / "drive" / "EnfoadsStudio",
        device="cpu",
        language="en",
        db_location="local",
    )
    shutil.rmtree(s.live_db_path.parent, ignore_errors=True)
    yield s
    shutil.rmtree(s.live_db_path.parent, ignore_errors=True)


def run_job(studio: Studio, kind: str = "note") -> str:
    job = studio.jobs.submit(kind, {})
    assert studio.jobs.wait(job.id, 30).state is JobState.COMPLETED
    return job.id


def test_the_database_lives_off_drive_and_survives_a_new_machine(drive_settings):
    s = drive_settings
    with Studio(s) as studio:
        studio.jobs.register("note", lambda ctx: JobResult((), {"ok": True}))
        assert Path(studio.engine.url.database).resolve() == s.live_db_path.resolve()
        assert not any(p.name.startswith("enfoads.db") for p in s.data_dir.iterdir())
        first = run_job(studio)
        # the copy on "Drive" follows each finished job, off the job's thread
        deadline = time.monotonic() + 10
        while not (s.db_backup_path.exists() and rows(s.db_backup_path, "jobs") == 1):
            assert time.monotonic() < deadline, "no copy after the finished job"
            time.sleep(0.05)
        assert rows(s.db_backup_path, "jobs") == 1
        studio.upload_asset(_png(), "logo.png", "image")
        second = run_job(studio)
    # closing wrote the last copy: a whole database with every row, no WAL beside it
    assert integrity_ok(s.db_backup_path)
    assert rows(s.db_backup_path, "jobs") == 2 and rows(s.db_backup_path, "assets") == 1
    assert not s.db_backup_path.with_name("enfoads.db-wal").exists()
    # a new Colab VM: no local file; the studio starts from the copy
    shutil.rmtree(s.live_db_path.parent)
    with Studio(s) as studio:
        assert {j.id for j in studio.list_jobs()} == {first, second}
        assert studio.list_assets().total == 1
        assert s.live_db_path.exists()


def test_a_drive_that_drops_loses_nothing(drive_settings, monkeypatch, caplog):
    s = drive_settings
    with Studio(s) as studio:
        studio.jobs.register("note", lambda ctx: JobResult((), {"ok": True}))
        run_job(studio)
        assert studio.db_backup.now()
        good = s.db_backup_path.read_bytes()
        import enfoads.core.dbfile as dbfile

        real = dbfile.os.replace

        def dropped(*_a, **_k):
            raise OSError(107, "Transport endpoint is not connected")

        monkeypatch.setattr(dbfile.os, "replace", dropped)
        run_job(studio)  # the job still completes
        assert not studio.db_backup.now()
        assert "could not back up" in caplog.text
        assert s.db_backup_path.read_bytes() == good and integrity_ok(s.db_backup_path)
        monkeypatch.setattr(dbfile.os, "replace", real)  # Drive is back
    assert rows(s.db_backup_path, "jobs") == 2


def test_a_damaged_copy_is_not_restored(drive_settings):
    s = drive_settings
    s.data_dir.mkdir(parents=True)
    s.db_backup_path.write_bytes(b"SQLite format 3\0" + b"\xff" * 5000)
    with Studio(s) as studio:  # starts with a new, working database
        assert studio.list_jobs() == []


def test_backup_copies_are_consistent_while_written(tmp_path):
    live, copy = tmp_path / "live.db", tmp_path / "copy.db"
    conn = sqlite3.connect(live)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    conn.commit()
    backup = DatabaseBackup(live, copy)
    assert backup.now() and rows(copy, "t") == 1000 and integrity_ok(copy)
    conn.close()


def test_nothing_uses_an_opencv_api_that_5_dropped():
    """Colab ships OpenCV 5.0: no Haar cascades (``cv2.CascadeClassifier``, ``cv2.data``)."""
    import ast

    used = []
    for path in ENFOADS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "cv2"
                and node.attr in ("CascadeClassifier", "data")
            ):
                used.append(f"{path.name}:{node.lineno} cv2.{node.attr}")
    assert not used


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(out, "PNG")
    return out.getvalue()
