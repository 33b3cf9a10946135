"""Two Colab runtimes on one Drive folder: two machines, each with its own local disk (its own
TMPDIR, where the live database sits) and its own host name (a UTS namespace), sharing only
the data dir, as Drive shares it. Nothing stored by either session may be lost, a second
machine is refused while the first lives, and an engine that wakes after another took over
writes nothing until it has the lease back.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
LEASE_S = 3.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("unshare") is None or os.geteuid() != 0,
        reason="a second host name needs unshare --uts (root)",
    ),
]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png(colour) -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


class Machine:
    """`enfoads serve` as another machine would run it: its own TMPDIR and host name."""

    def __init__(self, name: str, data: Path, tmp: Path):
        self.name, self.data = name, data
        self.tmp = tmp / f"{name}-local"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port, self.token = free_port(), f"token-{name}"
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            ENFOADS_DATA_DIR=str(self.data),
            ENFOADS_DB_LOCATION="local",  # as for a data dir on Drive
            ENFOADS_DEVICE="cpu",
            ENFOADS_LANGUAGE="es",
            ENFOADS_LEASE_S=str(LEASE_S),
            ENFOADS_WARM_START="off",
            HF_HUB_OFFLINE="1",
            TMPDIR=str(self.tmp),
        )

    def start(self) -> subprocess.Popen:
        serve = [sys.executable, "-m", "enfoads.cli", "serve"]
        serve += ["--port", str(self.port), "--token", self.token]
        command = ["unshare", "--uts", "--fork", "sh", "-c", f'hostname {self.name} && exec "$@"']
        self.proc = subprocess.Popen(
            [*command, "sh", *serve],
            env=self.env(),
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # signals go to the whole machine: unshare and the engine
        )
        return self.proc

    def signal(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)

    def upload(self, colour, name: str):
        import httpx

        return httpx.post(
            f"http://127.0.0.1:{self.port}/api/assets",
            json={"data": png(colour), "name": name},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )

    def stop(self) -> None:
        """SIGTERM, as a runtime shutting down: the engine closes (its last copy to Drive)."""
        import psutil

        if self.proc is None or self.proc.poll() is not None:
            return
        processes = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(True)]
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        _gone, alive = psutil.wait_procs(processes, timeout=60)
        for process in alive:
            process.kill()


def vault_seen_by_a_new_machine(data: Path, tmp: Path) -> dict[str, bytes]:
    """What a third machine (a fresh local disk) finds: asset names and their files."""
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    fresh = tmp / "third-local"
    fresh.mkdir()
    old = tempfile.tempdir
    tempfile.tempdir = str(fresh)
    try:
        settings = load_settings(data_dir=data, device="cpu", db_location="local")
        assert str(settings.live_db_path).startswith(str(fresh))
        with Studio(settings) as studio:
            studio.start()
            return {
                a.name: studio.assets.read_bytes(a) for a in studio.list_assets(limit=100).items
            }
    finally:
        tempfile.tempdir = old


def test_two_machines_on_one_drive_folder_lose_nothing(tmp_path):
    data = tmp_path / "drive" / "EnfoadsStudio"
    a, b = Machine("machine-a", data, tmp_path), Machine("machine-b", data, tmp_path)
    try:
        a.start()
        a.wait_ready()
        assert a.upload((200, 30, 30), "de-a.png").status_code == 201
        # A second machine while the first lives: refused, naming the other session.
        b.start()
        assert b.proc.wait(120) == 1
        refused = b.log.read_text()
        assert "Otra sesión del estudio usa esta carpeta de datos" in refused
        assert "machine-a" in refused and "Traceback" not in refused
        # The first machine sleeps past its lease (a laptop lid, a paused VM): the second
        # may take over, and stores its own asset.
        a.signal(signal.SIGSTOP)
        time.sleep(LEASE_S + 1.5)
        b.start()
        b.wait_ready()
        assert b.upload((30, 200, 30), "de-b.png").status_code == 201
        # The first wakes: it lost its lease and writes nothing, saying why.
        a.signal(signal.SIGCONT)
        for _ in range(3):  # at once, and still after its heartbeat found the other's lease
            reply = a.upload((30, 30, 200), "tarde.png")
            assert reply.status_code == 503, reply.text
            assert reply.json()["error"] == "engine_fenced"
            assert "perdió su turno" in reply.json()["message"]
            time.sleep(LEASE_S / 2)
        # The second closes (its copy goes to Drive); the first takes the lease back, writes
        # again, and at its close merges the second's copy instead of replacing it.
        b.stop()
        deadline = time.monotonic() + 30
        time.sleep(LEASE_S / 2)  # its next heartbeat finds the lease free
        while (reply := a.upload((30, 30, 200), "de-a-otra-vez.png")).status_code != 201:
            assert reply.status_code == 503 and time.monotonic() < deadline, reply.text
            time.sleep(2)
        a.stop()
    finally:
        a.stop()
        b.stop()
    found = vault_seen_by_a_new_machine(data, tmp_path)
    assert {"de-a.png", "de-b.png", "de-a-otra-vez.png"} <= set(found), sorted(found)
    assert "tarde.png" not in found  # refused while fenced: nothing half-written
    assert all(content[:4] == b"\x89PNG" for content in found.values())
