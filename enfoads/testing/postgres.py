"""A real PostgreSQL server for tests and a one-machine cluster demo, on a loopback port.

Debian's server (``scripts/install-system.sh`` installs ``postgresql``): ``initdb`` into a
folder of its own, password authentication (scram) on 127.0.0.1 only, no fsync (a test
server). PostgreSQL refuses to run as root: as root the folder belongs to the ``postgres``
user and the server runs as that user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from enfoads.testing.redis import PortInUse, free_port


def postgres_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (Debian keeps them per major version)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(versions[0]).parent if versions else None


class PostgresServer:
    """``postgres`` on 127.0.0.1:``port``, its cluster in ``folder`` (a new temporary folder
    when None); ``database(name)`` makes a database and gives its SQLAlchemy URL."""

    user = "enfoads"

    def __init__(self, folder: Path | None = None, port: int | None = None):
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server: run scripts/install-system.sh")
        self.bindir = bindir
        # as root, a folder the postgres user can reach (pytest's own are root's, 0700)
        self.folder = Path(folder or tempfile.mkdtemp(prefix="enfoads-pg-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(18)
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.folder / "data"

    def _run(self, *cmd: str) -> None:
        done = subprocess.run([*self.as_user, *cmd], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {done.stderr[-1500:]}")

    def start(self, timeout: float = 60.0) -> PostgresServer:
        import socket

        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                raise PortInUse(self.port) from None
        if not (self.data / "PG_VERSION").exists():
            pwfile = self.folder / "pw"
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(self.password + "\n")
            if self.as_user:
                shutil.chown(pwfile, "postgres", "postgres")
            self._run(
                str(self.bindir / "initdb"),
                "-D", str(self.data),
                "-U", self.user,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E", "UTF8",
                "--locale=C",
            )  # fmt: skip
            pwfile.unlink()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D", str(self.data),
            "-l", str(self.folder / "postgres.log"),
            "-o", options,
            "-w", "-t", str(int(timeout)),
            "start",
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers():
            if time.monotonic() > deadline:
                raise RuntimeError((self.folder / "postgres.log").read_text()[-2000:])
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def dsn(self, database: str) -> str:
        return (
            f"host=127.0.0.1 port={self.port} user={self.user} password={self.password} "
            f"dbname={database}"
        )

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3)."""
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def database(self, name: str | None = None) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = name or f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()
