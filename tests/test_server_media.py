"""Face swap, video, avatar and voice endpoints through the real app, with offline models."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from enfoads.core.studio import Studio
from enfoads.server.app import create_app
from enfoads.testing.faces import astronaut_rgb


def png_b64(pixels: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


@pytest.fixture
def client(media_settings):
    studio = Studio(media_settings()).start()
    with TestClient(create_app(studio, token="")) as c:
        c.studio = studio
        yield c
    studio.close()


def upload(c, pixels, name="face.png", kind=None) -> str:
    body = {"data": png_b64(pixels), "name": name}
    if kind:
        body["kind"] = kind
    r = c.post("/api/assets", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_openapi_lists_the_seed_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/face-swap",
        "/render-video",
        "/render-multi-scene",
        "/avatars",
        "/voices",
        "/detect-faces",
        "/face-swap/licence",
    ):
        assert path in paths


def test_face_swap_with_base64_images_answers_with_url_base64_and_licence(client):
    r = client.post(
        "/face-swap",
        json={"source_image": png_b64(astronaut_rgb()), "target_image": png_b64(astronaut_rgb())},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed" and body["result_url"].startswith("/api/assets/")
    assert body["image_base64"].startswith("data:image/png;base64,")
    assert body["licence"]["commercial_use"] is False
    assert "non-commercial" in body["licence"]["notice"]
    image = client.get(body["result_url"])
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    assert body["faces"]["target"][0]["score"] > 0.9


def test_face_swap_errors_name_the_problem_and_store_nothing(client):
    from skimage import data

    before = client.get("/api/assets").json()["total"]
    r = client.post(
        "/face-swap",
        json={"source_image": png_b64(data.coffee()), "target_image": png_b64(astronaut_rgb())},
    )
    assert (
        r.status_code == 422
        and "source" in r.json()["message"]
        and "No face" in r.json()["message"]
    )
    r = client.post(
        "/face-swap", json={"source_image": "%%%", "target_image": png_b64(astronaut_rgb())}
    )
    assert r.status_code == 422 and "base64" in r.json()["message"]
    r = client.post(
        "/face-swap",
        json={"source_asset_id": "img_missing", "target_image": png_b64(astronaut_rgb())},
    )
    assert r.status_code == 404 and "img_missing" in r.json()["message"]
    r = client.post(
        "/face-swap",
        json={"source_asset_id": "../../etc/passwd", "target_image": png_b64(astronaut_rgb())},
    )
    assert r.status_code == 404
    assert client.get("/api/assets").json()["total"] == before
    assert client.get("/").json()["status"] == "ok"


def test_face_swap_as_a_job_and_on_video(client):
    from enfoads.core import media

    face = upload(client, astronaut_rgb())
    r = client.post(
        "/face-swap", json={"source_asset_id": face, "target_asset_id": face, "run_as_job": True}
    )
    job = client.studio.wait_job(r.json()["job_id"], timeout=60)
    assert job.state.value == "completed"
    path = client.studio.settings.data_dir / "clip.mp4"
    with media.FrameWriter(path, 512, 512, 10) as writer:
        for _ in range(5):
            writer.write(astronaut_rgb())
    video = client.post("/api/assets", files={"file": ("clip.mp4", path.read_bytes(), "video/mp4")})
    r = client.post(
        "/face-swap", json={"source_asset_id": face, "video_asset_id": video.json()["id"]}
    )
    assert r.status_code == 200 and r.json()["licence"]["commercial_use"] is False
    done = client.studio.wait_job(r.json()["job_id"], timeout=120)
    assert done.state.value == "completed" and done.result["frames"] == 5
    found = client.post("/detect-faces", json={"asset_id": video.json()["id"]})  # its first frame
    assert found.status_code == 200 and len(found.json()["faces"]) == 1
    assert (found.json()["width"], found.json()["height"]) == (512, 512)


def test_detect_faces_and_licence(client):
    r = client.post("/detect-faces", json={"image": png_b64(astronaut_rgb())})
    assert r.status_code == 200 and len(r.json()["faces"]) == 1
    assert client.get("/face-swap/licence").json()["accepted"] is True  # the fixture's shop


def test_face_swap_over_http_waits_for_the_licence(media_settings):
    """The licence gate is the core's, not the panel's: with the notice not accepted, no door
    swaps (direct, as a job, video), each says why in the user's language, nothing is stored."""
    studio = Studio(media_settings(faceswap_licence_accepted=False, language="es")).start()
    try:
        with TestClient(create_app(studio, token="")) as c:
            face = upload(c, astronaut_rgb(), "cara.png")
            before = c.get("/api/assets").json()["total"]
            for body in (
                {"source_asset_id": face, "target_asset_id": face},
                {"source_asset_id": face, "target_asset_id": face, "run_as_job": True},
                {
                    "source_image": png_b64(astronaut_rgb()),
                    "target_image": png_b64(astronaut_rgb()),
                },
            ):
                r = c.post("/face-swap", json=body)
                assert r.status_code == 403, r.text
                assert r.json()["error"] == "licence_not_accepted"
                assert "no comercial" in r.json()["message"] and "deepfakes" in r.json()["message"]
            assert c.get("/api/assets").json()["total"] == before
            assert c.get("/api/jobs").json() == []  # no job queued either
            r = c.patch("/api/settings", json={"faceswap_licence_accepted": True})
            assert r.status_code == 200, r.text
            r = c.post("/face-swap", json={"source_asset_id": face, "target_asset_id": face})
            assert r.status_code == 200, r.text
    finally:
        studio.close()


def test_avatars_voices_and_render_video(client):
    avatar = upload(client, astronaut_rgb(), "presenter.png", kind="avatar")
    plain = upload(client, astronaut_rgb(), "plain.png")
    assert [a["id"] for a in client.get("/avatars").json()["avatars"]] == [avatar]
    r = client.post(f"/api/assets/{plain}/avatar")
    assert r.status_code == 200 and "avatar" in r.json()["tags"]
    assert client.get("/avatars").json()["total"] == 2
    voices = client.get("/voices").json()
    assert any(v["key"] == "es_MX-claude-high" for v in voices["voices"])
    speak = client.post("/speak", json={"text": "Hello there.", "voice": "en_US-joe-medium"})
    assert speak.status_code == 200 and speak.json()["duration_s"] > 0.3
    r = client.post(
        "/render-video",
        json={
            "script": "Fresh coffee, every morning.",
            "avatar_asset_id": avatar,
            "size": 360,
            "aspect": "1:1",
            "cta": "Visit us",
        },
    )
    assert r.status_code == 202, r.text
    done = client.studio.wait_job(r.json()["job_id"], timeout=300)
    assert done.state.value == "completed", done.error
    job = client.get(f"/api/jobs/{done.id}").json()
    assert job["progress"] == 100 and job["result"]["video_url"] in job["result_urls"]
    video = client.get(job["result"]["video_url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert client.get(job["result"]["srt_url"]).text.startswith("1\n")
    assert client.get(job["result"]["thumbnail_url"]).status_code == 200


def test_render_multi_scene_and_its_bad_input(client):
    avatar = upload(client, astronaut_rgb(), "presenter.png", kind="avatar")
    r = client.post("/render-multi-scene", json={"scenes": [], "size": 360})
    assert r.status_code == 422 and "scenes" in r.json()["message"]
    r = client.post(
        "/render-multi-scene",
        json={"scenes": [{"kind": "hologram", "asset_id": avatar, "script": "Hi."}]},
    )
    assert r.status_code == 422 and "hologram" in r.json()["message"]
    r = client.post("/render-video", json={"script": "   ", "avatar_asset_id": avatar})
    assert r.status_code == 422 and "script" in r.json()["message"]
    r = client.post("/render-video", json={"script": "Hi.", "avatar_asset_id": "ava_nope"})
    assert r.status_code == 404 and "ava_nope" in r.json()["message"]
    r = client.post(
        "/render-multi-scene",
        json={
            "size": 360,
            "scenes": [
                {"kind": "avatar", "asset_id": avatar, "script": "Our new espresso."},
                {
                    "kind": "image",
                    "asset_id": avatar,
                    "script": "Open daily.",
                    "transition": "crossfade",
                },
            ],
        },
    )
    assert r.status_code == 202
    done = client.studio.wait_job(r.json()["job_id"], timeout=300)
    assert done.state.value == "completed", done.error
    assert client.get("/api/jobs").json()
