"""The HTTP + Socket.IO server through the real app, with the tiny offline SDXL."""

import base64
import io
import threading

import pytest
import socketio
from fastapi.testclient import TestClient
from PIL import Image

from enfoads.core.studio import Studio
from enfoads.server.app import create_app
from enfoads.server.launch import choose_token, start_in_thread

TIMEOUT = 300


def png(size=(64, 48), color=(10, 120, 200)):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def make_client(tiny_settings):
    opened = []

    def make(token="", **overrides):
        studio = Studio(tiny_settings(**overrides)).start()
        client = TestClient(create_app(studio, token=token))
        client.__enter__()
        opened.append((studio, client))
        return studio, client

    yield make
    for studio, client in opened:
        client.__exit__(None, None, None)
        studio.close()


def test_health_status_and_openapi(make_client):
    _, c = make_client()
    health = c.get("/").json()
    assert health["status"] == "ok" and health["device"] == "cpu" and "uptime_s" in health
    gpu = c.get("/gpu-status").json()
    assert gpu["ram_budget_bytes"] > 0 and "devices" in gpu
    paths = c.get("/openapi.json").json()["paths"]
    for path in (
        "/",
        "/gpu-status",
        "/magic-prompt",
        "/generate-image",
        "/api/assets",
        "/api/assets/{asset_id}",
        "/api/assets/{asset_id}/file",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/cancel",
        "/api/jobs/{job_id}/retry",
    ):
        assert path in paths


def test_magic_prompt(make_client):
    _, c = make_client()
    r = c.post(
        "/magic-prompt",
        json={"prompt": "zapatillas rojas", "style": "product", "placement": "9:16"},
    )
    assert r.status_code == 200
    assert r.json()["language"] == "es" and "vertical composition" in r.json()["enhanced_prompt"]
    r = c.post("/magic-prompt", json={"prompt": "  "})
    assert r.status_code == 422 and r.json() == {
        "error": "empty",
        "message": "The field 'prompt' is empty.",
        "field": "prompt",
    }


def test_generate_image_answers_at_once_then_the_job_has_the_images(make_client):
    studio, c = make_client()
    r = c.post(
        "/generate-image",
        json={"prompt": "red sneakers", "placements": ["1:1", "9:16"], "seed": 11},
    )
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert r.json()["status"] in ("queued", "running")
    studio.wait_job(job_id, TIMEOUT)
    job = c.get(f"/api/jobs/{job_id}", params={"inline": "true"}).json()
    assert job["state"] == "completed" and job["progress"] == 100
    assert len(job["result_urls"]) == 2 and len(job["images_base64"]) == 2
    first = base64.b64decode(job["images_base64"][0].split(",", 1)[1])
    file = c.get(job["result_urls"][0])
    assert file.status_code == 200 and file.headers["content-type"] == "image/png"
    assert file.content == first
    assert Image.open(io.BytesIO(file.content)).size == (1024, 1024)
    thumb = c.get(f"/api/assets/{job['result_asset_ids'][0]}/thumbnail")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert [j["id"] for j in c.get("/api/jobs").json()] == [job_id]


def test_cancel_and_retry_over_http(make_client):
    studio, c = make_client()
    release = threading.Event()

    def hold(ctx):  # keeps the one worker busy so the next job stays queued
        release.wait(TIMEOUT)
        from enfoads.core.jobs import JobResult

        return JobResult()

    studio.jobs.register("hold", hold)
    blocker = studio.submit("hold", {})
    queued = c.post("/generate-image", json={"prompt": "lamp", "seed": 1}).json()["job_id"]
    cancelled = c.post(f"/api/jobs/{queued}/cancel").json()
    assert cancelled["state"] == "cancelled"
    assert c.post(f"/api/jobs/{queued}/cancel").status_code == 409
    release.set()
    studio.wait_job(blocker.id, TIMEOUT)
    retry = c.post(f"/api/jobs/{queued}/retry")
    assert retry.status_code == 202 and retry.json()["retry_of"] == queued
    assert studio.wait_job(retry.json()["id"], TIMEOUT).state.value == "completed"


def test_assets_upload_list_tag_delete(make_client):
    _, c = make_client()
    r = c.post(
        "/api/assets",
        files={"file": ("logo.png", png(), "image/png")},
        data={"kind": "logo", "tags": "marca,azul"},
    )
    assert r.status_code == 201
    logo = r.json()
    assert logo["kind"] == "logo" and logo["tags"] == ["azul", "marca"]
    data_url = "data:image/png;base64," + base64.b64encode(png(color=(1, 2, 3))).decode()
    r = c.post("/api/assets", json={"data": data_url, "name": "foto producto"})
    assert r.status_code == 201 and r.json()["kind"] == "image"
    photo = r.json()
    listing = c.get("/api/assets").json()
    assert listing["total"] == 2
    assert [a["id"] for a in c.get("/api/assets", params={"kind": "logo"}).json()["items"]] == [
        logo["id"]
    ]
    assert [a["id"] for a in c.get("/api/assets", params={"q": "producto"}).json()["items"]] == [
        photo["id"]
    ]
    tagged = c.post(f"/api/assets/{photo['id']}/tags", json={"add": ["verano"]}).json()
    assert tagged["tags"] == ["verano"]
    assert c.get(f"/api/assets/{logo['id']}/file").content == png()
    assert c.delete(f"/api/assets/{logo['id']}").status_code == 204
    assert c.get(f"/api/assets/{logo['id']}").status_code == 404
    assert c.get("/api/assets").json()["total"] == 1


def test_bad_input_gets_a_clear_4xx_and_stores_nothing(make_client):
    studio, c = make_client(max_upload_mb=0.05)
    cases = [
        (
            c.post(
                "/api/assets", files={"file": ("x.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")}
            ),
            422,
            "not a readable image",
        ),
        (
            c.post(
                "/api/assets", files={"file": ("big.png", b"\x89PNG" + bytes(80_000), "image/png")}
            ),
            413,
            "limit",
        ),
        (
            c.post("/api/assets", content=b"hello", headers={"content-type": "text/plain"}),
            415,
            "multipart",
        ),
        (c.post("/api/assets", json={"data": "@@@not base64@@@"}), 422, "malformed base64"),
        (
            c.post("/api/assets", content=b"{nope", headers={"content-type": "application/json"}),
            422,
            "not JSON",
        ),
        (c.get("/api/jobs/job_missing"), 404, "no job with id 'job_missing'"),
        (c.get("/api/assets/img_missing"), 404, "no asset with id 'img_missing'"),
        (c.get("/api/assets/..%2F..%2Fetc%2Fpasswd/file"), 404, "no endpoint at GET"),
        (c.get("/api/assets/%2E%2E/file"), 404, None),
        (c.get("/api/assets", params={"offset": 2**63}), 422, "offset"),
        (c.get("/api/assets", params={"limit": 0}), 422, "limit"),
        (c.get("/api/jobs", params={"limit": 10**6}), 422, "limit"),
        (c.post("/generate-image", json={"prompt": "x" * 5000}), 422, "too long"),
        (
            c.post("/generate-image", json={"prompt": "ok", "width": 1001, "height": 1024}),
            422,
            "multiple of 8",
        ),
        (c.post("/generate-image", json={"prompt": "ok", "colour": "red"}), 422, "colour"),
        (
            c.post(
                "/generate-image", content=b"[1,2", headers={"content-type": "application/json"}
            ),
            422,
            None,
        ),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (response.request.url, response.text)
        body = response.json()
        assert body["message"] and "Traceback" not in response.text
        if words:
            assert words in body["message"], body
    # A pixel bomb: a small file declaring a huge image.
    studio.assets.max_image_pixels = 100_000
    bomb = io.BytesIO()
    Image.new("L", (2000, 2000)).save(bomb, "PNG")
    r = c.post("/api/assets", files={"file": ("bomb.png", bomb.getvalue(), "image/png")})
    assert r.status_code == 413 and "pixels" in r.json()["message"]
    assert c.get("/api/assets").json()["total"] == 0 and studio.list_jobs() == []
    assert c.get("/").status_code == 200  # still serving


def test_internal_errors_are_json_without_traceback(make_client):
    studio, c = make_client()

    def broken():
        raise RuntimeError("secret internals")

    studio.gpu_status = broken
    c2 = TestClient(c.app, raise_server_exceptions=False)
    r = c2.get("/gpu-status")
    assert r.status_code == 500 and "secret internals" not in r.text
    assert r.json()["error"] == "internal"
    assert c2.get("/").status_code == 200

    import torch

    def out_of_memory():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 ...")

    studio.gpu_status = out_of_memory
    studio.update_settings(language="es")
    r = c2.get("/gpu-status")
    assert r.status_code == 503 and r.json()["error"] == "gpu_memory", r.text
    assert "memoria" in r.json()["message"] and "GPU 0" not in r.text and "GiB" not in r.text


def test_token_required_when_set(make_client):
    _, c = make_client(token="s3cret")
    assert c.get("/").status_code == 200  # health stays open for tunnels
    assert c.get("/api/assets").status_code == 401
    assert c.get("/api/assets", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = c.get("/api/assets", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    # never in the query string: it would end up in logs, Referer headers, tunnel inspectors
    assert c.get("/api/assets", params={"token": "s3cret"}).status_code == 401
    assert c.post("/magic-prompt", json={"prompt": "x"}).status_code == 401


def test_a_served_studio_always_has_a_token():
    token, local_open = choose_token("127.0.0.1", "")
    assert len(token) >= 24 and local_open  # loopback: local Hosts pass without it
    assert choose_token("localhost", "")[1] and choose_token("[::1]", "")[1]
    assert len(choose_token("0.0.0.0", "")[0]) >= 24 and not choose_token("0.0.0.0", "")[1]
    assert not choose_token("127.0.0.1", "", exposed=True)[1]  # behind a tunnel: always
    assert choose_token("127.0.0.1", "mine") == ("mine", False)  # a chosen token: always


def test_generation_is_rate_limited(make_client):
    _, c = make_client(rate_limit_per_minute=2)
    codes = [
        c.post("/generate-image", json={"prompt": "x", "seed": i}).status_code for i in range(3)
    ]
    assert codes == [202, 202, 429]
    # every costly route shares the client's bucket; reads stay open
    limited = c.post("/magic-prompt", json={"prompt": "x"})
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert "2" in limited.json()["message"]
    assert c.get("/api/jobs").status_code == 200


def collect_job_events(url, token, job_id_holder, done):
    events = []
    client = socketio.Client()

    @client.on("job_update")
    def on_update(data):
        if data["id"] == job_id_holder.get("id"):
            events.append(data)
            if data["state"] in ("completed", "failed", "cancelled"):
                done.set()

    client.connect(
        url, auth={"token": token} if token else None, transports=["websocket"], wait_timeout=20
    )
    return client, events


def test_live_socketio_sees_a_job_to_completion(tiny_settings):
    import httpx

    studio = Studio(tiny_settings()).start()
    handle = start_in_thread(studio, host="127.0.0.1", port=0, token="tok")
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            socketio.Client().connect(handle.url, transports=["websocket"], wait_timeout=10)
        with pytest.raises(socketio.exceptions.ConnectionError):
            socketio.Client().connect(
                handle.url, auth={"token": "bad"}, transports=["websocket"], wait_timeout=10
            )
        with pytest.raises(socketio.exceptions.ConnectionError):  # a foreign web page
            socketio.Client().connect(
                handle.url,
                auth={"token": "tok"},
                headers={"Origin": "http://evil.example"},
                transports=["websocket"],
                wait_timeout=10,
            )
        holder, done = {}, threading.Event()
        client, events = collect_job_events(handle.url, "tok", holder, done)
        room_client, room_events = collect_job_events(handle.url, "tok", holder, threading.Event())
        r = httpx.post(
            f"{handle.url}/generate-image",
            json={"prompt": "a bottle", "seed": 4, "placements": ["1:1", "16:9"]},
            headers={"Authorization": "Bearer tok"},
        )
        holder["id"] = r.json()["job_id"]
        assert room_client.call("join_job", holder["id"], timeout=10)["ok"]
        assert done.wait(TIMEOUT)
        client.disconnect()
        room_client.disconnect()
        assert events[-1]["state"] == "completed" and events[-1]["progress"] == 100
        assert len(events[-1]["result_urls"]) == 2
        progress = [e["progress"] for e in events]
        assert progress == sorted(progress) and len(set(progress)) >= 5
        assert any(e["stage"].startswith("Generating 16:9") for e in events)
        assert room_events and room_events[-1]["progress"] == 100
        file = httpx.get(
            handle.url + events[-1]["result_urls"][0], headers={"Authorization": "Bearer tok"}
        )
        assert file.status_code == 200 and file.content[:4] == b"\x89PNG"
    finally:
        handle.stop()
        studio.close()


def test_settings_and_model_requests_name_the_problem(make_client):
    _, c = make_client(language="es")
    r = c.patch("/api/settings", json={"language": "fr"})
    assert r.status_code == 422 and r.json()["field"] == "language"
    assert "es" in r.json()["message"] and "http" not in r.json()["message"]
    r = c.post("/api/models/no-such-model/prepare")
    assert r.status_code == 422 and r.json()["error"] == "unknown_choice"
    assert c.get("/api/jobs").json() == []
    assert c.patch("/api/settings", json={"language": "en"}).json()["language"] == "en"
    assert c.put("/api/brand-kit", json={"cta": "Compra ya"}).json()["cta"] == "Compra ya"
