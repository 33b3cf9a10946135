"""The distributed backend (issue #14): an engine whose queue is Celery, two `enfoads worker`
processes and a real Redis, all on loopback. Exactly-once results, a SIGKILLed worker, a Redis
restart, cancel across processes and a Socket.IO client seeing a worker's progress."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

pytest.importorskip("celery")
from enfoads.attach import make_studio
from enfoads.core.jobs import JobState
from enfoads.testing.redis import RedisServer, redis_binary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(redis_binary() is None, reason="needs redis-server"),
]
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300
SIX = ["1:1", "9:16", "16:9", "4:5", "2:3", "3:2"]


class Cluster:
    """Redis + the engine (this process, Celery queue) + `enfoads worker` processes."""

    def __init__(
        self, tmp: Path, tiny_sdxl, face_models, visibility_s: float = 8, hosts: dict | None = None
    ):
        """``hosts``: the ``ENFOADS_*`` values of a cluster without a shared filesystem (the
        database URL, the bucket): then the engine and each worker get their own empty data
        dir, as separate machines would."""
        self.tmp = tmp
        self.hosts = hosts
        self.redis = RedisServer(tmp / "redis").start()
        self.env = dict(
            os.environ,
            **(hosts or {}),
            ENFOADS_DATA_DIR=str(tmp / ("engine" if hosts else "data")),
            ENFOADS_DEVICE="cpu",
            ENFOADS_LANGUAGE="en",
            HF_HUB_OFFLINE="1",
            ENFOADS_QUEUE="celery",
            ENFOADS_REDIS_URL=self.redis.url,
            ENFOADS_LEASE_S="4",
            ENFOADS_VISIBILITY_TIMEOUT_S=str(visibility_s),
            ENFOADS_IMAGE_BASE_MODEL=str(tiny_sdxl["base"]),
            ENFOADS_IMAGE_UNET_MODEL=str(tiny_sdxl["unet"]),
            ENFOADS_IMAGE_VAE_MODEL=str(tiny_sdxl["vae"]),
            ENFOADS_FACESWAP_ANALYSIS_MODEL=str(face_models["analysis"]),
            ENFOADS_FACESWAP_SWAPPER_MODEL=str(face_models["swapper"]),
            ENFOADS_FACESWAP_LICENCE_ACCEPTED="true",
            # a capability defined only in the tests, run by the workers like the studio's own
            ENFOADS_EXTRA_CAPABILITIES="tests.echo_capability:EchoCapability",
        )
        from enfoads.core.settings import load_settings

        keys = {k[8:].lower(): v for k, v in self.env.items() if k.startswith("ENFOADS_")}
        self.settings = load_settings(**keys)
        self.studio = make_studio(self.settings).start()  # its job backend: Celery
        assert self.studio.warm_start() is None  # its workers load the models, not the engine
        self.workers: list[subprocess.Popen] = []

    def add_worker(self) -> subprocess.Popen:
        log = self.tmp / f"worker{len(self.workers)}.log"
        env = self.env
        if self.hosts:  # a machine of its own: nothing on disk shared with the others
            env = dict(env, ENFOADS_DATA_DIR=str(self.tmp / f"host{len(self.workers)}"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "enfoads.cli", "worker"],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.workers.append(proc)
        deadline = time.monotonic() + 120
        while " ready." not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        return proc

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.studio.close()
        self.redis.stop()

    def assets_of(self, job_id: str) -> list:
        return [a for a in self.studio.list_assets(limit=500).items if a.job_id == job_id]


@pytest.fixture
def cluster(tmp_path, tiny_sdxl, face_models):
    made = Cluster(tmp_path, tiny_sdxl, face_models)
    yield made
    made.close()


def png_of_face() -> bytes:
    from enfoads.testing.faces import astronaut_rgb

    out = io.BytesIO()
    Image.fromarray(astronaut_rgb()).save(out, "PNG")
    return out.getvalue()


@pytest.mark.postgres
def test_three_hosts_share_only_postgres_redis_and_the_bucket(
    tmp_path, tiny_sdxl, face_models, postgres, s3_server
):
    """The cluster of the README: an API engine and two workers, each with its own empty
    data dir, sharing only PostgreSQL, Redis and an S3 bucket. 20 mixed jobs (and a plugin's
    own kind) complete exactly once on both workers while one is SIGKILLed mid-job (a third,
    fresh host takes over); a Socket.IO client of the API sees a worker's job move; a cancel
    from the API stops a job on a worker and keeps nothing of it; every asset opens through
    the API's presigned link, and deleting them all leaves the bucket empty."""
    import socketio

    from enfoads.server.launch import start_in_thread

    bucket = f"three-hosts-{os.getpid()}"
    hosts = dict(
        s3_server.env(bucket),
        ENFOADS_DATABASE_URL=postgres.database(),
        # the signing identity every host is given (a mounted secret in a real cluster)
        ENFOADS_PROVENANCE_DIR=str(tmp_path / "secret"),
    )
    cluster = Cluster(tmp_path, tiny_sdxl, face_models, hosts=hosts)
    studio = cluster.studio
    handle = start_in_thread(studio, port=0, token="tres-maquinas")  # the React client's API
    client = socketio.Client()
    updates: dict[str, list] = {}
    client.on(
        "job_update",
        lambda job: updates.setdefault(job["id"], []).append((job["state"], job["progress"])),
    )
    try:
        threads = [threading.Thread(target=cluster.add_worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.connect(handle.url, transports=["websocket"], auth={"token": "tres-maquinas"})
        face = studio.upload_asset(png_of_face(), "face.png")
        long = studio.generate_images(prompt="reloj dorado", placements=SIX, seed=5)
        jobs = [long] + [
            studio.generate_images(prompt=f"anuncio {i}", placements=[SIX[i % 6]], seed=i)
            for i in range(13)
        ]
        jobs += [
            studio.swap_faces(source_asset_id=face.id, target_asset_id=face.id) for _ in range(6)
        ]
        echo = studio.submit("echo", {"text": "worker", "times": 2})  # a test's own kind
        deadline = time.monotonic() + TIMEOUT
        while studio.get_job(long.id).progress < 20:  # its first image is being stored
            assert time.monotonic() < deadline
            time.sleep(0.05)
        victim = next(
            p for p in cluster.workers if str(p.pid) == studio.get_job(long.id).owner.split(":")[1]
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        cluster.add_worker()  # a third machine, as empty as the others were
        made, owners = [], set()
        for job in jobs:
            done = studio.wait_job(job.id, TIMEOUT)
            assert done.state is JobState.COMPLETED, (job.kind, done.error)
            assets = cluster.assets_of(job.id)
            assert sorted(a.id for a in assets) == sorted(done.result_asset_ids)
            assert len(assets) == (6 if job is long else 1)  # exactly once: no duplicate
            made += assets
            owners.add(done.owner.split(":")[1])
        assert studio.wait_job(echo.id, TIMEOUT).result["echo"] == "worker worker"
        assert not cluster.assets_of(echo.id)  # ran on a worker: the engine runs no job
        assert studio.get_job(long.id).owner.split(":")[1] != str(victim.pid)
        assert len(owners) >= 2 and owners <= {str(p.pid) for p in cluster.workers}
        # The Socket.IO client saw a worker's job move, up to 100.
        watched = jobs[1].id
        deadline = time.monotonic() + 10
        while updates.get(watched, [(None, 0)])[-1] != ("completed", 100.0):
            assert time.monotonic() < deadline, updates.get(watched)
            time.sleep(0.1)
        assert any(state == "running" and 0 < p < 100 for state, p in updates[watched])
        # No shared filesystem: each host wrote only under its own data dir, and the engine's
        # holds no worker's output until it reads one.
        engine_files = {p.name for p in studio.settings.assets_dir.glob("??/*")}
        assert not {f"{a.sha256}.{a.ext}" for a in made} & engine_files
        # A worker's file is signed with the cluster's one identity: trusted by the engine.
        assert studio.asset_provenance(made[1].id)["state"] == "trusted"
        # Cancel from the API stops a job running on a worker within a step, keeping nothing.
        cancelled = studio.generate_images(prompt="cancelado", placements=SIX, seed=99)
        while studio.get_job(cancelled.id).progress < 30:
            time.sleep(0.05)
        api = httpx.Client(base_url=handle.url, headers={"Authorization": "Bearer tres-maquinas"})
        assert api.post(f"/api/jobs/{cancelled.id}/cancel").status_code == 200
        stopped = studio.wait_job(cancelled.id, 60)
        assert stopped.state is JobState.CANCELLED and stopped.progress < 80
        assert cluster.assets_of(cancelled.id) == []
        # Every asset opens through the API's signed link, redirected to the bucket.
        for asset in made + [face]:
            link = api.get(f"/api/assets/{asset.id}").json()["url"]
            moved = httpx.get(handle.url + link)
            assert moved.status_code == 307 and moved.headers["location"].startswith(s3_server.url)
            data = httpx.get(moved.headers["location"]).content
            assert hashlib.sha256(data).hexdigest() == asset.sha256
        for asset in studio.list_assets(limit=500).items:
            assert api.delete(f"/api/assets/{asset.id}").status_code == 204
        assert s3_server.objects(bucket) == []  # no orphan object
    finally:
        client.disconnect()
        handle.stop()
        cluster.close()


def test_a_killed_workers_job_says_so_and_goes_to_another_long_before_redis_redelivers(
    tmp_path, tiny_sdxl, face_models
):
    """With Redis's default redelivery (hours), a job whose worker was killed showed "running
    38.8 %" with no hint. The engine sees the lease run out (4 s here), says so in the job's
    stage, and sends the job again: the next free worker takes it over at once."""
    from enfoads.core.i18n import t

    cluster = Cluster(tmp_path, tiny_sdxl, face_models, visibility_s=7200)
    try:
        first = cluster.add_worker()
        studio = cluster.studio
        job = studio.generate_images(prompt="reloj dorado", placements=SIX, seed=6)
        deadline = time.monotonic() + TIMEOUT
        while studio.get_job(job.id).progress < 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        killed_at = time.monotonic()
        hint = t("stage.worker_lost", "en")
        while studio.get_job(job.id).stage != hint:
            assert time.monotonic() - killed_at < 30, studio.get_job(job.id).stage
            time.sleep(0.1)
        assert studio.get_job(job.id).state is JobState.RUNNING
        assert studio.get_job(job.id).localized("es").stage.startswith("El trabajador")
        second = cluster.add_worker()
        done = studio.wait_job(job.id, TIMEOUT)
        assert done.state is JobState.COMPLETED, done.error
        assert done.owner.split(":")[1] == str(second.pid)
        assert time.monotonic() - killed_at < 240  # not the 2 h of Redis's redelivery
        assert sorted(a.id for a in cluster.assets_of(job.id)) == sorted(done.result_asset_ids)
    finally:
        cluster.close()


def test_a_redis_restart_loses_no_queued_job(cluster):
    studio = cluster.studio
    jobs = [studio.generate_images(prompt=f"taza {i}", seed=i) for i in range(3)]
    cluster.redis.stop()  # nothing has run: the three wait in Redis
    cluster.redis.start()
    cluster.add_worker()
    for job in jobs:
        done = studio.wait_job(job.id, TIMEOUT)
        assert done.state is JobState.COMPLETED and len(cluster.assets_of(job.id)) == 1
