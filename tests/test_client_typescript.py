"""The TypeScript client's schema is the server's, and socket.io-client (the React client's own
library) follows a job to completion against a live server."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from enfoads.core.studio import Studio
from enfoads.server.app import create_app
from enfoads.server.launch import start_in_thread

CLIENT = Path(__file__).resolve().parents[1] / "clients" / "typescript"


def test_committed_openapi_schema_is_current(settings):
    studio = Studio(settings)
    try:
        current = create_app(studio).api.openapi()
    finally:
        studio.close()
    committed = json.loads((CLIENT / "openapi.json").read_text())
    assert committed == json.loads(json.dumps(current)), (
        "clients/typescript/openapi.json is stale: run `enfoads openapi > "
        "clients/typescript/openapi.json` and `npm run check` there"
    )


def watch_with_node(studio: Studio, *request: str) -> list[dict]:
    """Serve ``studio`` live and follow one job with ``scripts/watch-job.mjs`` (the React
    client's own socket.io-client); the job_update events it printed."""
    if shutil.which("node") is None:
        pytest.skip("needs Node.js")
    if not (CLIENT / "node_modules" / "socket.io-client").is_dir():
        pytest.skip("clients/typescript/node_modules missing: `make test` runs npm ci first")
    handle = start_in_thread(studio, host="127.0.0.1", port=0, token="node-token")
    try:
        out = subprocess.run(
            ["node", "scripts/watch-job.mjs", handle.url, "node-token", *request],
            cwd=CLIENT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        handle.stop()
        studio.close()
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[-1]["state"] == "completed" and events[-1]["progress"] == 100
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)
    return events


def test_node_socketio_client_sees_progress_to_completion(tiny_settings):
    events = watch_with_node(Studio(tiny_settings()).start())
    assert events[-1]["result_urls"][0].startswith("/api/assets/")
    assert len(events) >= 5 and any("(4/4)" in e["stage"] for e in events)


def test_node_socketio_client_follows_a_video_render(media_settings):
    import io

    from PIL import Image

    from enfoads.testing.faces import astronaut_rgb

    studio = Studio(media_settings(faceswap_analysis_model="buffalo_l")).start()
    out = io.BytesIO()
    Image.fromarray(astronaut_rgb()).save(out, "PNG")
    avatar = studio.upload_asset(out.getvalue(), "presenter.png", kind="avatar")
    body = json.dumps(
        {"script": "Fresh coffee, every morning.", "avatar_asset_id": avatar.id, "size": 360}
    )
    events = watch_with_node(studio, "/render-video", body)
    assert events[-1]["result"]["video_url"].startswith("/api/assets/")
    assert {30, 70} <= {e["progress"] for e in events}  # the seed's stages: face, subtitles


def test_watch_job_resolves_for_a_finished_job_and_its_media_open_without_the_token(
    tiny_settings,
):
    """The React client's ``watchJob`` on a job that ended before the call resolved never (it
    only listened for events), and the URLs in a job (``result_urls``, the images' ``url``)
    answered 401 to an ``<img src>`` behind a tunnel: they are signed now, in every answer."""
    if shutil.which("node") is None:
        pytest.skip("needs node")
    if not (CLIENT / "node_modules" / "typescript").is_dir():
        pytest.skip("clients/typescript/node_modules missing: `make test` runs npm ci first")
    subprocess.run(["npm", "run", "--silent", "build"], cwd=CLIENT, check=True, timeout=300)
    studio = Studio(tiny_settings()).start()
    handle = start_in_thread(studio, host="127.0.0.1", port=0, token="node-token")
    try:
        job = studio.generate_images(prompt="a red sneaker", seed=3, placements=["1:1", "9:16"])
        assert studio.wait_job(job.id, 240).state.value == "completed"
        import httpx

        reply = httpx.get(
            f"{handle.url}/api/jobs/{job.id}", headers={"Authorization": "Bearer node-token"}
        ).json()
        assert all("?sig=" in url for url in reply["result_urls"])
        plain = httpx.get(f"{handle.url}/api/assets/{reply['result_asset_ids'][0]}/file")
        assert plain.status_code == 401  # the token is required: the signature is the way in
        out = subprocess.run(
            ["node", "scripts/watch-finished.mjs", handle.url, "node-token", job.id],
            cwd=CLIENT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        handle.stop()
        studio.close()
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["state"] == "completed" and seen["updates"][-1] == "completed"
    assert len(seen["opened"]) == 4  # two result_urls, two images' url
    assert all(o["status"] == 200 and o["type"] == "image/png" for o in seen["opened"]), seen
    assert "job_doesnotexist" in seen["unknown"] or "No existe" in seen["unknown"], seen


def test_node_client_posts_a_briefs_results_to_its_own_path(settings):
    """``importResults(briefId, {csv})``: the brief's id in the path, the job followed live."""
    studio = Studio(settings).start()
    record = {
        "brief": {"product": "Café"},
        "variants": {
            "ef56-1A1": {"levels": {"concept": 1, "headline": "A", "cta": 1}},
            "ef56-1B1": {"levels": {"concept": 1, "headline": "B", "cta": 1}},
        },
    }
    brief = studio.assets.add_bytes(json.dumps(record).encode(), "brief", ext="json")
    csv = "Ad name,Impressions,Clicks\nef56-1A1,20000,100\nef56-1B1,20000,260\n"
    events = watch_with_node(studio, f"/api/briefs/{brief.id}/results", json.dumps({"csv": csv}))
    assert events[-1]["result"]["winner"] == "ef56-1B1"
    assert events[-1]["params"]["brief_id"] == brief.id
