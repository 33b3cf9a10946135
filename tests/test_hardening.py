"""Hostile input, one regression test per hole the adversarial run found (issue #11), through
the real app (and a live uvicorn where the transport matters)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from enfoads.core import media
from enfoads.core.db import JobRow
from enfoads.core.jobs import JobResult
from enfoads.core.pipelines.voice import espeak_exe
from enfoads.core.studio import Studio
from enfoads.server.app import create_app
from enfoads.server.launch import start_in_thread

SURROGATE = '"a\\ud800b"'  # a lone surrogate, as a JSON escape (valid JSON, invalid text)


def png(size=(64, 48), color=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def make_client(tiny_settings):
    opened = []

    def make(token="", start=True, **overrides):
        overrides.setdefault("rate_limit_per_minute", 10_000)
        studio = Studio(tiny_settings(**overrides))
        if start:
            studio.start()
        client = TestClient(create_app(studio, token=token))
        client.__enter__()
        opened.append((studio, client))
        return studio, client

    yield make
    for studio, client in opened:
        client.__exit__(None, None, None)
        studio.close()


def blobs(studio: Studio) -> list[Path]:
    return sorted(p for p in studio.settings.assets_dir.rglob("*") if p.is_file())


def raw_post(client: TestClient, path: str, body: str):
    return client.post(
        path, content=body.encode("utf-8"), headers={"content-type": "application/json"}
    )


# 1 -- /speak never hands the text to espeak-ng as an argument ------------------------------
@pytest.mark.skipif(espeak_exe() is None, reason="espeak-ng is not installed")
def test_speak_text_starting_with_a_dash_is_spoken_not_parsed(make_client, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("uno dos tres cuatro cinco seis siete ocho nueve diez " * 30)
    studio, c = make_client(voice_fallback_espeak=True)
    # The voice is not on disk and the hub is offline: espeak-ng speaks, as chosen.
    r = c.post("/speak", json={"text": f"-f{secret}", "voice": "es_MX-claude-high"})
    assert r.status_code == 200, r.text
    assert r.json()["engine"] == "espeak-ng"
    # The file would take well over a minute to read aloud; its name takes seconds.
    assert r.json()["duration_s"] < 20
    for text in ("-20% de descuento hoy", "-h", "--help"):
        r = c.post("/speak", json={"text": text, "voice": "es_MX-claude-high"})
        assert r.status_code == 200, (text, r.text)
        asset = studio.get_asset(r.json()["asset_id"])
        assert asset.prompt == text and r.json()["duration_s"] > 0.3


# 2 -- one bad character never breaks the job list ------------------------------------------
@pytest.mark.parametrize(
    "path,body",
    [
        ("/generate-image", '{"prompt": %s}' % SURROGATE),
        ("/magic-prompt", '{"prompt": %s}' % SURROGATE),
        ("/speak", '{"text": %s}' % SURROGATE),
        ("/detect-faces", '{"asset_id": %s}' % SURROGATE),
        ("/render-video", '{"script": "hola\\u0000", "avatar_asset_id": "ava_1"}'),
        ("/generate-image", '{"prompt": "ok", "negative_prompt": "x\\u001b[31m"}'),
        ("/render-multi-scene", '{"scenes": [{"asset_id": "a", "script": %s}]}' % SURROGATE),
        ("/api/assets", '{"data": "aGk=", "name": %s}' % SURROGATE),
        ("/api/assets", '{"data": "aGk=", "kind": %s}' % SURROGATE),
    ],
)
def test_bad_characters_get_a_clear_422_and_store_nothing(make_client, path, body):
    _, c = make_client(language="es")
    r = raw_post(c, path, body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "bad_character"
    assert "carácter no permitido" in r.json()["message"] and r.json()["field"]
    jobs = c.get("/api/jobs")
    assert jobs.status_code == 200 and jobs.json() == []


def test_tags_and_search_with_bad_characters(make_client):
    studio, c = make_client()
    asset = studio.upload_asset(png(), "p.png")
    r = raw_post(c, f"/api/assets/{asset.id}/tags", '{"add": [%s]}' % SURROGATE)
    assert r.status_code == 422 and r.json()["error"] == "bad_character"
    r = c.get("/api/assets", params={"q": "caf\x00e"})
    assert r.status_code == 422 and r.json()["field"] == "q"
    assert c.get("/api/assets/" + asset.id).json()["tags"] == []


def test_a_job_stored_before_the_checks_cannot_poison_the_list(make_client):
    studio, c = make_client(start=False)
    from enfoads.core.assets import utcnow

    with studio.jobs.store._sessions.begin() as s:  # a row written by an older version
        # JSON columns store a lone surrogate as an escape, and give it back on every read
        s.add(
            JobRow(
                id="job_poisoned",
                kind="generate_image",
                state="failed",
                progress=0.0,
                stage="",
                params={"prompt": "a\ud800b"},
                result_asset_ids=[],
                result={"note": "\udfff"},
                error="",
                error_code="",
                created_at=utcnow(),
            )
        )
    r = c.get("/api/jobs")
    assert r.status_code == 200 and r.json()[0]["params"]["prompt"] == "a\ufffdb"
    assert c.get("/api/jobs/job_poisoned").status_code == 200
    retried = c.post("/api/jobs/job_poisoned/retry")  # the scrubbed text is valid again
    assert retried.status_code == 202 and retried.json()["params"]["prompt"] == "a\ufffdb"


def test_the_facade_refuses_what_it_could_not_store(studio):
    from enfoads.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not allowed"):
        studio.submit("prepare_model", {"model": "sdxl\x00"})
    with pytest.raises(InvalidInput, match="'x' is not valid: unknown field"):
        studio.submit("prepare_model", {"model": "sdxl", "x": 1})
    with pytest.raises(InvalidInput, match="'seed' must be a finite number"):
        studio.submit("generate_image", {"prompt": "x", "seed": float("nan")})
    # A job kind of one's own (no request model) is still held to what can be stored.
    studio.jobs.register("own", lambda ctx: None)
    with pytest.raises(InvalidInput, match="finite"):
        studio.submit("own", {"x": float("nan")})
    with pytest.raises(InvalidInput, match="nested too deeply"):
        deep: dict = {}
        cursor = deep
        for _ in range(40):
            cursor["a"] = {}
            cursor = cursor["a"]
        studio.submit("own", {"deep": deep})
    assert studio.list_jobs() == []


def test_deeply_nested_json_is_a_clear_4xx(make_client):
    _, c = make_client()
    for body in ("[" * 100_000 + "]" * 100_000, '{"prompt": ' + "[" * 5000 + "]" * 5000 + "}"):
        r = raw_post(c, "/generate-image", body)
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["message"] and "Traceback" not in r.text
    assert c.get("/").status_code == 200


# 3 -- deleting an asset never takes another asset's file -----------------------------------
def test_identical_content_create_and_delete_race_loses_no_file(studio):
    data = png(color=(1, 2, 3))
    sha = hashlib.sha256(data).hexdigest()
    survivors = []
    for _round in range(150):
        first = studio.assets.add_bytes(data, "image", name="a")
        made: list = []
        barrier = threading.Barrier(2)

        def create():
            barrier.wait()
            made.append(studio.assets.add_bytes(data, "image", name="b"))

        def delete(asset_id=first.id):
            barrier.wait()
            studio.assets.delete(asset_id)

        threads = [threading.Thread(target=create), threading.Thread(target=delete)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        survivors.extend(made)
        path = studio.assets.file_path(made[0])
        assert path.is_file(), f"round {_round}: the new asset lost its file"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    for asset in survivors:
        studio.assets.delete(asset.id)
    assert blobs(studio) == []  # the last delete took the file and the thumbnail


def test_racing_deletes_over_http_keep_every_file(make_client):
    studio, c = make_client()
    data = png(color=(9, 9, 9))
    for _ in range(30):
        a = c.post("/api/assets", files={"file": ("a.png", data, "image/png")}).json()
        results = {}

        def upload():
            results["b"] = c.post("/api/assets", files={"file": ("b.png", data, "image/png")})

        def delete():
            results["d"] = c.delete(f"/api/assets/{a['id']}")

        threads = [threading.Thread(target=upload), threading.Thread(target=delete)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results["d"].status_code == 204
        b = results["b"].json()
        assert c.get(b["url"]).status_code == 200  # never a row whose file answers 500


# 4 -- reserved kinds and internal assets are not the client's --------------------------------
def test_an_upload_cannot_claim_a_reserved_kind(make_client):
    studio, c = make_client()
    r = c.post(
        "/api/assets", files={"file": ("kit.png", png(), "image/png")}, data={"kind": "brand_kit"}
    )
    assert r.status_code == 422 and r.json()["error"] == "reserved_kind"
    r = c.post("/api/assets", json={"data": "aGVsbG8=", "kind": "brand_kit"})
    assert r.status_code == 422
    r = c.post("/api/assets", files={"file": ("v.png", png(), "image/png")}, data={"kind": "video"})
    assert r.status_code == 422 and r.json()["error"] == "kind_mismatch"
    assert studio.list_assets().total == 0
    assert studio.brand_kit()["logo_asset_id"] is None  # the studio still reads its kit
    kit_logo = studio.upload_asset(png(), "logo.png", "logo")
    studio.save_brand_kit(logo_asset_id=kit_logo.id, cta="Compra ya")
    kit = studio.list_assets(kind="brand_kit").items[0]
    assert c.delete(f"/api/assets/{kit.id}").status_code == 422
    assert c.post(f"/api/assets/{kit.id}/tags", json={"add": ["x"]}).status_code == 422
    assert studio.brand_kit()["cta"] == "Compra ya"


def test_an_unreadable_kit_falls_back_to_defaults(studio):
    studio.assets.add_bytes(b"\x89PNG not json", "brand_kit", ext="json")
    assert studio.brand_kit()["cta"] == ""


# 5 -- user text is escaped in widget HTML ----------------------------------------------------
def test_an_uploaded_vtt_is_shown_as_text_not_html(studio):
    pytest.importorskip("ipywidgets")
    from enfoads.widgets.vault import VaultPanel

    vtt = b"WEBVTT\n\n00:00.000 --> 00:01.000\n<img src=x onerror=alert(1)><b>hola</b>\n"
    asset = studio.upload_asset(vtt, "subs.vtt")
    panel = VaultPanel(studio)
    panel.show(asset.id)
    html_view = panel.preview.children[0]
    assert "<img" not in html_view.value and "&lt;img src=x onerror=alert(1)&gt;" in html_view.value
    panel.close()


# 6 -- rate limits: the client as the server sees it, every costly route, Retry-After ---------
def test_forwarded_for_does_not_buy_a_fresh_bucket(tiny_settings):
    import httpx

    studio = Studio(tiny_settings(rate_limit_per_minute=3)).start()
    handle = start_in_thread(studio, port=0)
    try:
        codes = [
            httpx.post(
                f"{handle.url}/magic-prompt",
                json={"prompt": "zapatos"},
                headers={"X-Forwarded-For": f"10.0.0.{i}"},
            ).status_code
            for i in range(5)
        ]
        # a forwarded request is a proxied one: no token, no entry (let alone a fresh bucket)
        assert codes == [401] * 5
        codes = [
            httpx.post(f"{handle.url}/magic-prompt", json={"prompt": "zapatos"}).status_code
            for i in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]
    finally:
        handle.stop()
        studio.close()


def test_retry_and_uploads_are_limited_too(make_client):
    from enfoads.core.errors import InvalidInput

    studio, c = make_client(rate_limit_per_minute=2)

    def fails(ctx):
        raise InvalidInput("error.empty", field="x")

    studio.jobs.register("fails", fails)
    job = studio.submit("fails", {})
    studio.wait_job(job.id, 60)
    assert c.post(f"/api/jobs/{job.id}/retry").status_code == 202
    assert c.post(f"/api/jobs/{job.id}/retry").status_code == 202
    r = c.post(f"/api/jobs/{job.id}/retry")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert c.post("/detect-faces", json={"image": "aGk="}).status_code == 429
    # Uploads are a class of their own, with four times the room: a product shoot uploaded
    # photo after photo is not cut off at the generation limit.
    upload = {"files": {"file": ("a.png", png(), "image/png")}}
    codes = [c.post("/api/assets", **upload).status_code for _ in range(9)]
    assert codes == [201] * 8 + [429]


def test_the_owners_token_is_the_owner_and_the_attach_token_stays_local(make_client):
    """41 photos uploaded by the owner's own client got 429 after the 30th: the owner's token
    is not rate-limited. The attach token (the engine's own pages) is refused from a public
    Host, as through a tunnel, and is limited like anyone there."""
    studio, c = make_client(token="owner-token", rate_limit_per_minute=2)
    owner = {"Authorization": "Bearer owner-token"}
    upload = {"files": {"file": ("a.png", png(), "image/png")}}
    codes = [c.post("/api/assets", headers=owner, **upload).status_code for _ in range(12)]
    assert codes == [201] * 12
    attach = {"Authorization": f"Bearer {studio.attach_token}"}
    local = {**attach, "Host": "127.0.0.1:5000"}
    assert c.get("/api/assets", headers=local).status_code == 200  # from this machine
    public = {**attach, "Host": "abc.trycloudflare.com"}
    assert c.get("/api/assets", headers=public).status_code == 401
    assert (
        c.get("/api/assets", headers={**owner, "Host": "abc.trycloudflare.com"}).status_code == 200
    )


# 7 -- bodies are refused before they are read ------------------------------------------------
def _raw_request(url: str, head: str, body_chunks, *, chunked: bool) -> tuple[str, int]:
    """Send ``head`` then the body in pieces until the server answers; return the status line
    and how many body bytes went out before the answer."""
    import select
    from urllib.parse import urlparse

    u = urlparse(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=30)
    sent = 0
    try:
        sock.sendall(head.encode())
        for chunk in body_chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            time.sleep(0.002)
        sock.settimeout(30)
        reply = sock.recv(4096).decode(errors="replace")
    finally:
        sock.close()
    return reply.split("\r\n", 1)[0], sent


def test_unauthenticated_and_oversized_bodies_are_refused_unread(tiny_settings):
    studio = Studio(tiny_settings(max_upload_mb=1.0)).start()
    handle = start_in_thread(studio, port=0, token="s3cret")
    mb = b"x" * 2**20
    try:
        status, sent = _raw_request(
            handle.url,
            "POST /generate-image HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Type: application/json\r\nContent-Length: 67108864\r\n\r\n",
            (mb for _ in range(64)),
            chunked=False,
        )
        assert " 401 " in status and sent < 16 * 2**20
        status, _ = _raw_request(
            handle.url,
            "POST /api/assets HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
            "s3cret\r\nContent-Type: application/json\r\nContent-Length: 209715200\r\n\r\n",
            (),
            chunked=False,
        )
        assert " 413 " in status
        # Chunked: no length declared; counted while it streams and cut past the limit.
        status, sent = _raw_request(
            handle.url,
            "POST /api/assets HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
            "s3cret\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
            (
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
                if i == 0
                else mb
                for i in range(200)
            ),
            chunked=True,
        )
        assert " 413 " in status and sent < 32 * 2**20
        assert studio.list_assets().total == 0
    finally:
        handle.stop()
        studio.close()


def test_a_non_ascii_token_is_a_401_not_a_500(make_client):
    _, c = make_client(token="s3cret")
    r = c.get("/api/jobs", headers={"Authorization": "Bearer s3crét".encode()})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert c.get("/api/jobs", params={"token": "ñandú"}).status_code == 401
    assert c.get("/api/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200


# 8 -- uploads do not stall the server ----------------------------------------------------------
def test_uploads_run_off_the_event_loop(tiny_settings):
    import httpx

    studio = Studio(tiny_settings()).start()
    handle = start_in_thread(studio, port=0)
    release = threading.Event()
    real = studio.upload_asset

    def slow_upload(*args, **kwargs):
        assert threading.current_thread().name != "enfoads-server"
        release.wait(30)  # held until the health check below has been answered
        return real(*args, **kwargs)

    studio.upload_asset = slow_upload
    results = []
    uploads = [
        threading.Thread(
            target=lambda: results.append(
                httpx.post(
                    f"{handle.url}/api/assets",
                    files={"file": ("a.png", png(), "image/png")},
                    timeout=60,
                )
            )
        )
        for _ in range(3)
    ]
    try:
        for thread in uploads:
            thread.start()
        time.sleep(0.3)
        assert httpx.get(f"{handle.url}/", timeout=10).status_code == 200  # answered meanwhile
        release.set()
        for thread in uploads:
            thread.join(60)
        assert [r.status_code for r in results] == [201, 201, 201]
    finally:
        release.set()
        handle.stop()
        studio.close()


# 9 -- numbers and choices are checked before a job is queued -------------------------------
@pytest.mark.parametrize(
    "path,body,field",
    [
        (
            "/render-video",
            '{"script": "hola", "avatar_asset_id": "a", "subtitle_style": {"outline": 1e308}}',
            "outline",
        ),
        (
            "/render-video",
            '{"script": "hola", "avatar_asset_id": "a", "subtitle_style": {"outline": NaN}}',
            "outline",
        ),
        ("/render-video", '{"script": "hola", "avatar_asset_id": "a", "rate": 9}', "rate"),
        (
            "/render-video",
            '{"script": "hola", "avatar_asset_id": "a", "music_volume": -1}',
            "music_volume",
        ),
        ("/speak", '{"text": "hola", "rate": 0}', "rate"),
        (
            "/render-multi-scene",
            '{"scenes": [{"asset_id": "a", "script": "x", "duration": Infinity}]}',
            "duration",
        ),
    ],
)
def test_out_of_range_numbers_are_refused_at_once(make_client, path, body, field):
    _, c = make_client()
    r = raw_post(c, path, body)
    assert r.status_code == 422, r.text
    assert field in r.json()["message"]
    assert c.get("/api/jobs").json() == []


def test_core_ranges_hold_for_callers_that_skip_http(studio):
    from enfoads.core.errors import InvalidInput
    from enfoads.core.pipelines.video import SubtitleStyle
    from enfoads.core.validation import parse_request

    with pytest.raises(InvalidInput, match="outline"):
        parse_request(SubtitleStyle, {"outline": float("nan")})
    with pytest.raises(InvalidInput, match="outline"):
        parse_request(SubtitleStyle, {"outline": 1e308})
    # Built in code without validation, the renderer's own check still holds the range.
    with pytest.raises(InvalidInput, match="outline"):
        SubtitleStyle.model_construct(
            **{**SubtitleStyle().model_dump(), "outline": 1e308}
        ).validated()


def test_a_video_face_swap_checks_the_face_choice_before_queueing(make_client, tmp_path):
    studio, c = make_client()
    face = studio.upload_asset(png(), "face.png")
    video = tmp_path / "clip.mp4"
    with media.FrameWriter(video, 64, 48, 10) as writer:
        for _ in range(5):
            writer.write(__import__("numpy").zeros((48, 64, 3), "uint8"))
    clip = studio.upload_asset(video.read_bytes(), "clip.mp4")
    for bad in ("banana", -1, True):
        r = c.post(
            "/face-swap",
            json={"source_asset_id": face.id, "video_asset_id": clip.id, "target_face": bad},
        )
        assert r.status_code == 422 and r.json()["field"] == "target_face", (bad, r.text)
    # a bad character in a face choice is named, not echoed back into the message
    r = c.post(
        "/face-swap",
        json={"source_asset_id": face.id, "video_asset_id": clip.id, "target_face": "1\x00"},
    )
    assert r.status_code == 422 and r.json()["error"] == "bad_character"
    assert "\x00" not in r.json()["message"]
    assert c.get("/api/jobs").json() == []


# 10 -- nothing left behind, nothing leaked ---------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000),  # an MP4 header on noise
        b"\x1aE\xdf\xa3" + b"\x00" * 100,  # a WebM header, truncated
    ],
)
def test_rejected_videos_leave_nothing_and_say_nothing_of_paths(make_client, data):
    studio, c = make_client()
    r = c.post("/api/assets", files={"file": ("fake.mp4", data, "video/mp4")})
    assert r.status_code == 422 and r.json()["error"] == "corrupt_video", r.text
    message = r.json()["message"]
    assert "fake.mp4" in message
    assert str(studio.settings.data_dir) not in r.text and "ffmpeg" not in r.text.lower()
    assert blobs(studio) == []


def test_start_up_sweeps_what_a_killed_process_left(tiny_settings):
    settings = tiny_settings()
    studio = Studio(settings).start()
    kept = studio.upload_asset(png(), "kept.png")
    studio.close()
    root = settings.assets_dir
    old = time.time() - 3600
    leftovers = [root / ".tmp-abc123", root / "ab" / f"{'ab' * 32}.png"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
        os.utime(path, (old, old))
    young = root / ".tmp-now"
    young.write_bytes(b"a write in progress")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    render = settings.work_dir / f"{dead.pid}-render-xyz"
    render.mkdir(parents=True)
    (render / "ad.mp4").write_bytes(b"x" * 100)
    mine = settings.work_dir / f"{os.getpid()}-render-live"
    mine.mkdir()
    with Studio(settings) as again:
        assert not any(p.exists() for p in leftovers) and young.exists()
        assert not render.exists() and mine.exists()
        assert again.assets.file_path(kept.id).is_file()  # what is in use stays
        # A file no asset here uses is quarantined, not deleted: on a shared data dir
        # another session's database may hold it.
        assert (again.assets.quarantine / f"{'ab' * 32}.png").read_bytes() == b"half"
    young.unlink()
    mine.rmdir()


def test_a_quarantined_file_comes_back_when_its_asset_does(tiny_settings):
    """Another session's asset whose row arrives later (its copy merged in) finds its file
    back in place at the next start, instead of a sweep having deleted it."""
    settings = tiny_settings()
    with Studio(settings) as first:
        first.start()
        asset = first.upload_asset(png(), "de-otra-sesion.png")
        blob = first.assets.file_path(asset)
        thumb = first.assets.thumbnail_path(asset.id)
        row = first.assets.get(asset.id)
    import sqlite3

    db = sqlite3.connect(settings.live_db_path)
    saved = db.execute("SELECT * FROM assets WHERE id = ?", (asset.id,)).fetchone()
    db.execute("DELETE FROM assets WHERE id = ?", (asset.id,))  # this database never knew it
    db.commit()
    old = time.time() - 3600
    for path in (blob, thumb):
        os.utime(path, (old, old))
    with Studio(settings) as second:
        second.start()
        assert not blob.exists() and (second.assets.quarantine / blob.name).is_file()
    marks = ", ".join("?" * len(saved))
    db.execute(f"INSERT INTO assets VALUES ({marks})", saved)  # the merged copy brings it
    db.commit()
    db.close()
    with Studio(settings) as third:
        third.start()
        assert third.assets.read_bytes(third.get_asset(asset.id))[:4] == b"\x89PNG"
        assert third.assets.thumbnail_path(asset.id).is_file() and row.sha256


def test_a_lost_database_is_rebuilt_from_the_files_themselves(tiny_settings, tmp_path):
    """Two sessions on one Drive folder, the database that knew these assets lost: every file
    comes back into the vault from its own record (a generated PNG keeps its id, prompt, seed
    and job), uploads from their content; thumbnails are recognised and left, a damaged file
    is named, and a second run finds nothing new. Through the HTTP API and ``enfoads
    reindex-assets``."""
    import sqlite3

    from enfoads.core.pipelines.base import ai_png_text

    settings = tiny_settings(rate_limit_per_minute=10_000)
    with Studio(settings) as first:
        first.start()
        made = first.assets.add_image(  # what the image pipeline stores, record and all
            Image.new("RGB", (96, 64), (10, 120, 200)),
            "image",
            asset_id="img_0123456789abcdef",
            name="zapatillas rojas [1:1]",
            prompt="zapatillas rojas",
            seed=7,
            png_text=ai_png_text(
                "AI-generated image",
                {
                    "asset_id": "img_0123456789abcdef",
                    "name": "zapatillas rojas [1:1]",
                    "prompt": "zapatillas rojas",
                    "seed": 7,
                    "job_id": "job_1",
                    "models": ["a", "b"],
                },
            ),
        )
        photo = io.BytesIO()
        Image.new("RGB", (640, 480), (200, 30, 30)).save(photo, "JPEG")
        upload = first.upload_asset(photo.getvalue(), "producto.jpg")
        files = {a.id: first.assets.file_path(a) for a in (made, upload)}
        thumbs = [first.assets.thumbnail_path(a.id) for a in (made, upload)]
    db = sqlite3.connect(settings.live_db_path)
    db.execute("DELETE FROM asset_tags")
    db.execute("DELETE FROM assets")  # the copy that won never knew them
    db.commit()
    db.close()
    old = time.time() - 3600
    for path in [*files.values(), *thumbs]:
        os.utime(path, (old, old))
    damaged = settings.assets_dir / "cd" / f"{'cd' * 32}.png"
    damaged.parent.mkdir(exist_ok=True)
    damaged.write_bytes(png())  # its content is not what its name says
    os.utime(damaged, (old, old))

    studio = Studio(settings)
    studio.start()
    client = TestClient(create_app(studio))
    with client:
        assert studio.list_assets().total == 0  # swept into the quarantine, not deleted
        assert all((studio.assets.quarantine / p.name).is_file() for p in files.values())
        r = client.post("/api/assets/reindex", headers={"Accept-Language": "es"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["recovered"] == 2 and body["thumbnails"] == 2 and body["skipped"] == 1
        assert body["skipped_reasons"][0]["file"] == damaged.name
        assert "no coincide" in body["skipped_reasons"][0]["reason"]  # in the caller's language
        back = studio.get_asset("img_0123456789abcdef")  # its own id, from its own record
        assert (back.prompt, back.seed, back.job_id) == ("zapatillas rojas", 7, "job_1")
        assert back.name == "zapatillas rojas [1:1]" and back.model_ids == ("a", "b")
        assert back.sha256 == made.sha256 and studio.assets.file_path(back).is_file()
        photo_back = [a for a in studio.list_assets().items if a.id != back.id]
        assert [a.sha256 for a in photo_back] == [upload.sha256]
        assert photo_back[0].meta["recovered"] is True
        # all back in place, thumbnails too; only the damaged file is left aside
        assert [p.name for p in studio.assets.quarantine.iterdir()] == [damaged.name]
        again = client.post("/api/assets/reindex").json()
        assert again["recovered"] == 0 and studio.list_assets().total == 2
    studio.close()
    env = {**os.environ, "ENFOADS_DATA_DIR": str(settings.data_dir), "ENFOADS_LANGUAGE": "en"}
    done = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "reindex-assets", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["recovered"] == 0 and "Traceback" not in done.stderr


def test_job_errors_name_no_paths(studio, tmp_path):
    def crash(ctx):
        raise FileNotFoundError(2, "No such file", str(tmp_path / "enfoads-render-x" / "voice.wav"))

    studio.jobs.register("crash", crash)
    job = studio.wait_job(studio.submit("crash", {}).id, 30)
    assert job.state.value == "failed" and job.error_code == "error.internal"
    assert str(tmp_path) not in job.error and "<file>" in job.error


def test_a_full_disk_is_named(make_client, monkeypatch):
    studio, c = make_client(language="es")

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/assets/ab/x.png")

    import enfoads.core.assets as assets_mod

    monkeypatch.setattr(assets_mod.tempfile, "mkstemp", full)
    r = c.post("/api/assets", files={"file": ("a.png", png(), "image/png")})
    assert r.status_code == 507 and "espacio" in r.json()["message"]
    assert "/data" not in r.text
    studio.jobs.register("fill", lambda ctx: full())
    job = studio.wait_job(studio.submit("fill", {}).id, 30)
    assert job.error_code == "error.disk_full" and "espacio" in job.error


def test_info_json_masks_the_token(tmp_path):
    env = dict(os.environ, ENFOADS_DATA_DIR=str(tmp_path), ENFOADS_SERVER_TOKEN="abcd-very-secret")
    out = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "info", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "very-secret" not in out.stdout
    assert json.loads(out.stdout)["settings"]["server_token"] == "abcd…"


def test_a_job_result_is_still_served_after_all_this(studio):
    studio.jobs.register("echo", lambda ctx: JobResult(data={"ok": ctx.params["text"]}))
    job = studio.wait_job(studio.submit("echo", {"text": "¡Hola, señor! 😀"}).id, 30)
    assert job.result == {"ok": "¡Hola, señor! 😀"}


def test_a_foreign_web_page_cannot_change_the_studio(make_client):
    """With no token on loopback, a page on another site could post a form to the studio (no
    CORS preflight for a form): state-changing requests from a foreign origin are refused."""
    studio, c = make_client(language="es")
    upload = {"file": ("a.png", png(), "image/png")}
    for origin in ("http://evil.example", "null"):
        r = c.post("/api/assets", files=upload, headers={"Origin": origin})
        assert r.status_code == 403 and r.json()["error"] == "cross_site", r.text
    r = c.post("/generate-image", json={"prompt": "x"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert studio.list_assets().total == 0 and c.get("/api/jobs").json() == []
    # The React dev server (a configured origin), the server's own pages and programs may.
    assert (
        c.post("/api/assets", files=upload, headers={"Origin": "http://localhost:5173"}).status_code
        == 201
    )
    assert (
        c.post("/api/assets", files=upload, headers={"Origin": "http://testserver"}).status_code
        == 201
    )
    assert c.post("/api/assets", files=upload).status_code == 201
    assert c.get("/api/assets", headers={"Origin": "http://evil.example"}).status_code == 200


def test_assets_are_listed_by_the_job_that_made_them(studio):
    """What a worker taking over a dead worker's job removes: that job's assets, however many
    the vault holds."""
    for i in range(3):
        studio.assets.add_bytes(png(color=(i, 0, 0)), "image", job_id="job_a")
    studio.assets.add_bytes(png(color=(9, 9, 9)), "image", job_id="job_b")
    studio.assets.add_bytes(png(color=(8, 8, 8)), "image")
    assert studio.assets.list(job_id="job_a").total == 3
    assert [a.job_id for a in studio.assets.list(job_id="job_b").items] == ["job_b"]


def test_every_text_has_both_languages_and_plural_forms_agree():
    import string

    from enfoads.core.i18n import CATALOG

    for key, entry in CATALOG.items():
        assert set(entry) == {"es", "en"}, key
        forms = [entry["es"], entry["en"]]
        if isinstance(entry["es"], dict):
            assert all(set(f) == {"one", "other"} for f in forms), key
            forms = [text for f in forms for text in f.values()]
        fields = [{f for _, f, _, _ in string.Formatter().parse(text) if f} for text in forms]
        assert all(f == fields[0] for f in fields), (key, fields)  # same placeholders


@pytest.mark.parametrize("lang", ["es", "en"])
def test_error_paths_answer_in_one_language(make_client, lang):
    """Validation (pydantic's and the core's), unknown ids, size, auth and bad choices: each
    message entirely in the chosen language."""
    english_only = ("Input should", "Field required", "not valid: a ", "expected", "unknown field")
    spanish_only = ("no es válido", "falta", "se espera", "El campo", "No existe")
    _, c = make_client(language=lang, token="")
    replies = [
        c.post("/generate-image", json={"prompt": "x", "num_images": "muchas"}),
        c.post("/generate-image", json={"prompt": "x", "colour": "red"}),
        c.post("/generate-image", json={}),
        c.post("/api/assets/abc/tags", json={"add": "nope"}),
        c.get("/api/jobs/job_nope"),
        c.post("/magic-prompt", json={"prompt": "hola", "brand_colors": ["rojo"]}),
        c.post("/render-video", json={"script": "hola", "avatar_asset_id": "img_nope"}),
    ]
    for r in replies:
        assert 400 <= r.status_code < 500, r.text
        message = r.json()["message"]
        wrong = english_only if lang == "es" else spanish_only
        assert not any(w in message for w in wrong), (lang, message)


def test_private_folders_files_and_no_sniffing(tmp_path, monkeypatch):
    """The database (it holds the attach token) is 0600 in a 0700 data dir; a predictable
    local folder under TMPDIR that is not ours is refused with a clear message; asset files
    are served with nosniff."""
    import stat as stat_mod
    import tempfile

    from fastapi.testclient import TestClient

    from enfoads.core.errors import UnsafeFolder
    from enfoads.core.settings import load_settings
    from enfoads.server.app import create_app

    settings = load_settings(data_dir=tmp_path / "data", device="cpu", language="es")
    with Studio(settings) as st:
        assert stat_mod.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
        assert stat_mod.S_IMODE(settings.live_db_path.stat().st_mode) == 0o600
        asset = st.upload_asset(png(), "foto.png")
        with TestClient(create_app(st, token="")) as c:
            r = c.get(f"/api/assets/{asset.id}/file")
            assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
            assert 'filename="foto.png"' in r.headers["content-disposition"]
    # Drive's layout: the live database in a folder under TMPDIR. One made by someone else
    # (here: a link to a folder anyone can write) is refused, not used.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    shared = load_settings(data_dir=tmp_path / "drive", device="cpu", db_location="local")
    trap = tmp_path / "anyone"
    trap.mkdir(mode=0o777)
    shared.live_db_path.parent.symlink_to(trap)
    with pytest.raises(UnsafeFolder) as refused:
        Studio(shared)
    assert "no es solo tuya" in refused.value.message("es")
    assert list(trap.iterdir()) == []  # nothing written there


def test_an_import_is_bounded_and_one_odd_entry_never_breaks_it(make_client):
    """One odd entry (an id with a lone surrogate, a year-1 date with an offset, "tags": 5)
    answered 500 after the entries before it were imported; 1000 tiny entries made 1000
    assets in one request. Each entry is read on its own and skipped with its reason, a retry
    imports nothing twice, and a request past the cap imports nothing."""
    import base64 as b64

    studio, c = make_client(language="es")
    data = "data:image/png;base64," + b64.b64encode(png()).decode()
    other = "data:image/png;base64," + b64.b64encode(png(color=(1, 2, 3))).decode()
    body = (
        "["
        + ",".join(
            [
                json.dumps({"id": "img_bueno", "url": data, "name": "bueno.png"}),
                '{"id": "raro\\ud800", "url": "%s"}' % data,  # a lone surrogate
                json.dumps({"url": other, "created_at": "0001-01-01T00:00:00+05:00"}),
                json.dumps({"id": "img_tags", "url": data, "tags": 5}),
                json.dumps({"id": "img_ruta", "url": "/etc/passwd"}),
            ]
        )
        + "]"
    )
    headers = {"Content-Type": "application/json"}
    r = c.post("/api/assets/import", content=body.encode(), headers=headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["imported"], report["skipped"], report["already_there"]) == (2, 3, 0)
    reasons = {item["id"]: item["reason"] for item in report["skipped_reasons"]}
    assert set(reasons) == {"raro?", "img_tags", "img_ruta"}  # printable, never the surrogate
    assert "tags" in reasons["img_tags"] and "archivo incrustado" in reasons["img_ruta"]
    assert "\ud800" not in r.text and "Traceback" not in r.text
    again = c.post("/api/assets/import", content=body.encode(), headers=headers).json()
    assert (again["imported"], again["already_there"]) == (0, 2)  # a retry repeats nothing
    total = c.get("/api/assets").json()["total"]
    many = json.dumps([{"url": data} for _ in range(501)])
    r = c.post("/api/assets/import", content=many.encode(), headers=headers)
    assert r.status_code == 422 and r.json()["error"] == "too_many_entries"
    assert "501" in r.json()["message"] and c.get("/api/assets").json()["total"] == total
