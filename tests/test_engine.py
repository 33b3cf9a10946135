"""One engine per data dir (issue #13): job leases, the engine's record, attached studios
(real OS processes: `enfoads serve` and a client), kill -9 and restart, and one facade with two
implementations run through the same scenario."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

import enfoads
from enfoads.core import events
from enfoads.core.assets import utcnow
from enfoads.core.db import EngineRow, create_engine, make_session_factory
from enfoads.core.engine import EngineBusy, new_owner_id
from enfoads.core.errors import EnfoadsError
from enfoads.core.jobs import JobResult, JobState, JobStore, LocalJobQueue
from enfoads.core.studio import Studio

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240


def png(color=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "PNG")
    return out.getvalue()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- leases ----------------------------------------------------------------------------------
@pytest.fixture
def store(database_url):  # SQLite and PostgreSQL (conftest)
    engine = create_engine(database_url)
    yield JobStore(make_session_factory(engine), events.EventBus())
    engine.dispose()


def running(store, owner, beat_age_s=0.0):
    job = store.create("steps", {})
    return store.transition(
        job.id,
        [JobState.QUEUED],
        state=JobState.RUNNING,
        owner=owner,
        heartbeat_at=utcnow() - timedelta(seconds=beat_age_s),
    )


def test_a_live_lease_is_never_reclaimed_an_expired_one_once(store):
    live = running(store, new_owner_id())  # this process, renewed just now
    silent = running(store, "other-host:123:abcd", beat_age_s=120)  # no heartbeat for 2 min
    dead = running(store, f"{os.uname().nodename}:{dead_pid()}:beef")  # fresh beat, dead process
    legacy = running(store, None)  # written before leases existed
    queue = LocalJobQueue(store, lang="en", lease_s=30)
    queue.start()
    try:
        assert store.get(live.id).state is JobState.RUNNING
        for job in (silent, dead, legacy):
            got = store.get(job.id)
            assert got.state is JobState.FAILED and got.error_code == "interrupted"
            assert "Interrupted" in got.error
        assert store.reclaim_expired(30, "en") == []  # once: a second pass finds nothing
    finally:
        queue.shutdown()


def test_reclaiming_is_exactly_once_across_racing_processes(database_url):
    url = database_url
    stores = [
        JobStore(make_session_factory(create_engine(url)), events.EventBus()) for _ in range(4)
    ]
    jobs = [running(stores[0], "gone-host:1:aaaa", beat_age_s=600) for _ in range(10)]
    found: list = []
    barrier = threading.Barrier(len(stores))

    def reclaim(s):
        barrier.wait()
        found.extend(j.id for j in s.reclaim_expired(30, "en"))

    threads = [threading.Thread(target=reclaim, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(found) == sorted(j.id for j in jobs)  # each job once, by exactly one


def test_a_runner_keeps_its_lease_alive_while_a_job_runs(store):
    queue = LocalJobQueue(store, lang="en", lease_s=1.5)  # renews every 0.5 s
    started, release = threading.Event(), threading.Event()

    def slow(ctx):
        started.set()
        release.wait(10)
        return JobResult(data={"ok": True})

    queue.register("slow", slow)
    queue.start()
    try:
        job = queue.submit("slow", {})
        assert started.wait(10)
        time.sleep(2.0)  # past the lease: only the heartbeat keeps it
        rival = LocalJobQueue(store, lang="en", lease_s=1.5)
        assert store.reclaim_expired(1.5, "en") == [] and rival.owner != queue.owner
        release.set()
        done = queue.wait(job.id, 10)
        assert done.state is JobState.COMPLETED and done.owner == queue.owner
    finally:
        release.set()
        queue.shutdown()


# -- the engine's record -----------------------------------------------------------------------
def test_a_second_engine_on_the_data_dir_is_refused_naming_the_first(settings):
    first = Studio(settings).start()
    second = Studio(settings)
    try:
        with pytest.raises(EngineBusy) as busy:
            second.start()
        assert f"pid {os.getpid()}" in busy.value.message("en")
        assert "enfoads.connect()" in busy.value.message("es")
    finally:
        second.close()
        first.close()
    with Studio(settings):  # released on close: the next one is the engine
        pass


def test_a_dead_engine_is_replaced_at_once(settings):
    settings.ensure_dirs()
    db = create_engine(settings.db_url)
    with make_session_factory(db).begin() as s:
        s.add(
            EngineRow(
                key="engine",
                owner=f"{os.uname().nodename}:{dead_pid()}:dead",
                host=os.uname().nodename,
                pid=dead_pid(),
                url="http://127.0.0.1:1",
                token="x",
                started_at=utcnow(),
                heartbeat_at=utcnow(),
            )
        )
    db.dispose()
    with Studio(settings) as studio:
        assert studio.registry.current().owner == studio.owner


# -- real processes ------------------------------------------------------------------------------
@pytest.fixture
def engine_env(tmp_path, tiny_sdxl, face_models):
    return dict(
        os.environ,
        ENFOADS_DATA_DIR=str(tmp_path / "data"),
        ENFOADS_DEVICE="cpu",
        ENFOADS_LANGUAGE="en",
        HF_HUB_OFFLINE="1",
        ENFOADS_LEASE_S="6",
        ENFOADS_IMAGE_BASE_MODEL=str(tiny_sdxl["base"]),
        ENFOADS_IMAGE_UNET_MODEL=str(tiny_sdxl["unet"]),
        ENFOADS_IMAGE_VAE_MODEL=str(tiny_sdxl["vae"]),
        ENFOADS_FACESWAP_ANALYSIS_MODEL=str(face_models["analysis"]),
        ENFOADS_FACESWAP_SWAPPER_MODEL=str(face_models["swapper"]),
        ENFOADS_FACESWAP_LICENCE_ACCEPTED="true",
    )


def settings_from(env):
    from enfoads.core.settings import load_settings

    keys = {k[len("ENFOADS_") :].lower(): v for k, v in env.items() if k.startswith("ENFOADS_")}
    return load_settings(**keys)


class Engine:
    """``enfoads serve --port 0`` on the data dir, in its own process."""

    def __init__(self, env, log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "enfoads.cli", "serve", "--port", "0"],
            env=env,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        settings = settings_from(env)
        deadline = time.monotonic() + 120
        while True:
            from enfoads.attach import live_engine

            info = live_engine(settings)
            if info is not None and info.url and info.pid == self.proc.pid:
                break
            assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def engines(tmp_path):
    started: list[Engine] = []

    def start(env):
        engine = Engine(env, tmp_path / "engine.log")
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CLIENT = textwrap.dedent("""
    import json, sys
    import enfoads
    from enfoads.core.settings import load_settings

    studio = enfoads.connect(load_settings())
    assert not studio.is_engine, "the second process must attach"
    seen = {}
    studio.subscribe(lambda e: seen.setdefault(e.payload["id"], []).append(
        [e.payload["state"], e.payload["progress"]]), "job_update")
    face = studio.upload_asset(open(sys.argv[1], "rb").read(), "face.png")
    jobs = [studio.generate_images(prompt="zapatos rojos", placements=["1:1"], seed=i).id
            for i in range(3)]
    jobs += [studio.swap_faces(source_asset_id=face.id, target_asset_id=face.id).id
             for _ in range(2)]
    for job_id in jobs:
        studio.wait_job(job_id, 240)
    print(json.dumps({"jobs": jobs, "events": seen}))
    studio.close()
""")


def test_an_engine_and_an_attached_process_run_ten_mixed_jobs_exactly_once(engine_env, tmp_path):
    from enfoads.testing.faces import astronaut_rgb

    face = tmp_path / "face.png"
    Image.fromarray(astronaut_rgb()).save(face)
    settings = settings_from(engine_env)
    studio = enfoads.connect(settings)  # this process: the engine (no other on the data dir)
    assert studio.is_engine
    transitions: dict[str, list[str]] = {}
    studio.subscribe(
        lambda e: transitions.setdefault(e.payload["id"], []).append(e.payload["state"]),
        "job_update",
    )
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(face)],
        env=engine_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        mine = [
            studio.generate_images(prompt="bolso de cuero", placements=["9:16"], seed=i).id
            for i in range(3)
        ]
        src = studio.upload_asset(face.read_bytes(), "face.png")
        mine += [
            studio.swap_faces(source_asset_id=src.id, target_asset_id=src.id).id for _ in range(2)
        ]
        out, err = client.communicate(timeout=TIMEOUT)
        assert client.returncode == 0, err[-3000:]
        theirs = json.loads(out.strip().splitlines()[-1])
        all_jobs = mine + theirs["jobs"]
        assert len(set(all_jobs)) == 10
        for job_id in all_jobs:
            job = studio.wait_job(job_id, TIMEOUT)
            assert job.state is JobState.COMPLETED, (job_id, job.error)
            assert transitions[job_id].count("running") >= 1
            assert transitions[job_id].count("completed") == 1  # finished exactly once
            made = [a for a in studio.list_assets(limit=500).items if a.job_id == job_id]
            assert sorted(a.id for a in made) == sorted(job.result_asset_ids)  # no duplicates
            for asset in made:
                assert sha(studio.assets.file_path(asset)) == asset.sha256
        for job_id in theirs["jobs"]:  # the attached process saw its jobs move, to the end
            seen = theirs["events"][job_id]
            assert seen[-1] == ["completed", 100.0]
            assert any(state == "running" for state, _p in seen)
    finally:
        if client.poll() is None:
            client.kill()
        studio.close()


def test_kill_9_of_the_engine_interrupts_its_job_once_and_loses_no_asset(engine_env, engines):
    settings = settings_from(engine_env)
    engine = engines(engine_env)
    client = enfoads.connect(settings)
    assert not client.is_engine
    first = client.wait_job(client.generate_images(prompt="gafas", seed=3).id, TIMEOUT)
    assert first.state is JobState.COMPLETED
    kept = {a: sha(client.assets.file_path(a)) for a in first.result_asset_ids}
    long = client.generate_images(
        prompt="reloj", seed=4, placements=["1:1", "9:16", "16:9", "4:5", "2:3", "3:2"]
    )
    deadline = time.monotonic() + TIMEOUT
    while client.get_job(long.id).progress < 10:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    engine.kill()
    client.close()
    assert client.get_job(long.id).state is JobState.RUNNING  # nobody has looked yet

    engines(engine_env)  # the restart
    again = enfoads.connect(settings)
    assert not again.is_engine
    job = again.get_job(long.id)
    assert job.state is JobState.FAILED and job.error_code == "interrupted"
    finished_at = job.finished_at
    retry = again.wait_job(again.retry_job(long.id).id, TIMEOUT)
    assert retry.state is JobState.COMPLETED and len(retry.result_asset_ids) == 6
    assert again.get_job(long.id).finished_at == finished_at  # interrupted once, not again
    for asset_id, digest in kept.items():
        assert sha(again.assets.file_path(asset_id)) == digest
    assert [a for a in again.list_assets(limit=500).items if a.job_id == long.id] == []
    again.close()


def test_a_dashboard_opened_during_a_served_job_leaves_it_alone(engine_env, engines):
    settings = settings_from(engine_env)
    engines(engine_env)  # `enfoads serve`
    first = enfoads.connect(settings)
    job = first.generate_images(prompt="perfume", seed=5, placements=["1:1", "9:16", "16:9"])
    while first.get_job(job.id).state is JobState.QUEUED:
        time.sleep(0.05)
    # What used to fail the job: another surface starting on the data dir mid-job.
    with pytest.raises(EngineBusy):
        Studio(settings).start()
    page = enfoads.connect(settings)  # a dashboard page's kernel: attaches, no models
    assert not page.is_engine and page is not first
    moved = []
    page.subscribe(
        lambda e: e.payload["id"] == job.id and moved.append(e.payload["progress"]), "job_update"
    )
    done = page.wait_job(job.id, TIMEOUT)
    assert done.state is JobState.COMPLETED and len(done.result_asset_ids) == 3
    assert moved and moved[-1] == 100.0  # the page saw it progress
    page.close()
    first.close()


def test_running_the_studio_cell_again_reuses_the_engine(settings):
    first = enfoads.connect(settings)
    try:
        assert enfoads.connect(settings) is first and first.is_engine
        assert first.registry.current().url.startswith("http://127.0.0.1:")
    finally:
        first.close()
    second = enfoads.connect(settings)  # closed: a new engine
    assert second is not first
    second.close()


# -- one facade, two implementations -------------------------------------------------------------
@pytest.fixture(params=["in-process", "attached"])
def facade(request, engine_env, engines):
    settings = settings_from(engine_env)
    if request.param == "attached":
        engines(engine_env)
    studio = enfoads.connect(settings)
    assert studio.is_engine is (request.param == "in-process")
    yield studio
    studio.close()


def test_the_same_scenario_on_both_facades(facade):
    seen: list[str] = []
    facade.subscribe(lambda e: seen.append(e.name))
    asset = facade.upload_asset(png(), "logo.png", "logo", tags=("marca",))
    assert facade.get_asset(asset.id).tags == ("marca",)
    assert facade.tag_asset(asset.id, add=("verano",)).tags == ("marca", "verano")
    assert facade.list_assets(tag="verano").total == 1
    kit = facade.save_brand_kit(logo_asset_id=asset.id, cta="Compra ya")
    assert facade.brand_kit() == kit and kit["cta"] == "Compra ya"
    magic = facade.enhance_prompt("zapatillas rojas", style="product", placement="9:16")
    assert "vertical composition" in magic.enhanced
    job = facade.generate_images(prompt="zapatillas rojas", placements=["1:1"], seed=7)
    done = facade.wait_job(job.id, TIMEOUT)
    assert done.state is JobState.COMPLETED and len(done.result_asset_ids) == 1
    image = facade.get_asset(done.result_asset_ids[0])
    assert image.width == 1024 and facade.assets.read_bytes(image)[:4] == b"\x89PNG"
    assert facade.list_jobs()[0].id == job.id
    with pytest.raises(EnfoadsError) as unknown:  # refused before anything is queued
        facade.prepare_model("no-such-model")
    assert unknown.value.key == "error.unknown_choice" and unknown.value.field == "model"
    faceless = facade.swap_faces(source_asset_id=asset.id, target_asset_id=asset.id)
    failed = facade.wait_job(faceless.id, TIMEOUT)  # fails inside the job: a logo has no face
    assert failed.state is JobState.FAILED and failed.error_code == "error.no_face"
    with pytest.raises(EnfoadsError) as bad:
        facade.generate_images(prompt="  ")
    assert bad.value.key == "error.empty" and bad.value.field == "prompt"
    assert "image" in {m["capability"] for m in facade.model_inventory()}
    assert facade.health()["device"] == "cpu"
    assert facade.update_settings(language="es").language == "es"
    facade.delete_asset(image.id)
    deadline = time.monotonic() + 10
    while not {"job_update", "asset_added", "asset_deleted"} <= set(seen):
        assert time.monotonic() < deadline, sorted(set(seen))
        time.sleep(0.05)


def test_an_older_database_gets_the_lease_columns_and_its_cut_job_is_marked(settings):
    import sqlite3

    settings.ensure_dirs()
    db = sqlite3.connect(settings.data_dir / "enfoads.db")  # as the first release wrote it
    db.execute(
        "CREATE TABLE jobs (id VARCHAR(40) PRIMARY KEY, kind VARCHAR(40), state VARCHAR(20),"
        " progress FLOAT, stage VARCHAR(255), params JSON, result_asset_ids JSON, result JSON,"
        " error TEXT, error_code VARCHAR(64), retry_of VARCHAR(40), created_at DATETIME,"
        " started_at DATETIME, finished_at DATETIME)"
    )
    db.execute(
        "INSERT INTO jobs VALUES ('job_old', 'generate_image', 'running', 40, '', '{}', '[]',"
        " '{}', '', '', NULL, '2026-01-01 00:00:00', NULL, NULL)"
    )
    db.commit()
    db.close()
    with Studio(settings) as studio:
        job = studio.get_job("job_old")
        assert job.state is JobState.FAILED and job.error_code == "interrupted"
        assert job.owner is None


def test_the_cli_imports_a_seed_vault_through_the_running_engine(engine_env, engines, tmp_path):
    """`enfoads import-assets` while an engine serves the data dir: the engine stores the
    assets (the CLI attaches instead of opening the data dir a second time)."""
    import base64
    import json

    from tests.helpers import png

    engine = engines(engine_env)
    seed = tmp_path / "assets.json"
    seed.write_text(
        json.dumps(
            [
                {
                    "id": "img_seed",
                    "name": "Café",
                    "url": "data:image/png;base64," + base64.b64encode(png()).decode(),
                }
            ]
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "import-assets", str(seed), "--json"],
        env=engine_env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["imported"] == 1
    assert "seed import: 1 imported" in (tmp_path / "engine.log").read_text()  # done by the engine
    assert engine.proc.poll() is None


def test_a_pages_language_is_its_own_and_the_api_answers_in_the_callers(engine_env, engines):
    """Switching to English on one dashboard page switched every page and the API: the
    engine's language stays, the page reads its errors and job stages in its own, and an HTTP
    caller picks its language with Accept-Language."""
    import httpx

    env = dict(engine_env, ENFOADS_LANGUAGE="es")
    engines(env)
    page = enfoads.connect(settings_from(env))
    other = enfoads.connect(settings_from(env))
    try:
        assert not page.is_engine
        page.update_settings(language="en")
        assert page.settings.language == "en" and other.settings.language == "es"
        with pytest.raises(EnfoadsError) as english:
            page.generate_images(prompt="  ")
        assert english.value.message() == "The field 'prompt' is empty."
        with pytest.raises(EnfoadsError) as spanish:
            other.generate_images(prompt="  ")
        assert spanish.value.message() == "El campo 'prompt' está vacío."
        job = other.generate_images(prompt="taza", placements=["1:1"], seed=1)
        done = other.wait_job(job.id, TIMEOUT)
        assert done.state is JobState.COMPLETED
        url, token = page.engine_info.url, page.engine_info.token
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/api/settings", headers=headers).json()["language"] == "es"
        for lang, stage in (("en", "Completed"), ("es", "Completado")):
            reply = httpx.get(
                f"{url}/api/jobs/{job.id}", headers={**headers, "Accept-Language": f"{lang},*"}
            )
            assert reply.json()["stage"] == stage
    finally:
        page.close()
        other.close()
