"""The BrandVault as a marketer uses it: accent-blind search, one card per video with its files,
face-swap inputs hidden unless asked, the brand kit's assets guarded, the seed's assets.json
imported over HTTP and from the command line."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from enfoads.core.assets import INPUT_TAG, fold
from enfoads.core.errors import AssetInUse
from enfoads.server.app import create_app
from tests.helpers import png, video_with_files

ROOT = Path(__file__).resolve().parents[1]


def test_fold_drops_accents_and_case():
    assert fold("Campaña CAFÉ Über") == "campana cafe uber"


def test_search_ignores_accents_and_case_over_names_prompts_and_tags(studio):
    for i in range(10):
        studio.assets.add_bytes(png((i, 0, 0)), "image", name=f"Café de origen {i}")
    studio.assets.add_bytes(png((0, 9, 0)), "image", name="sin nombre", prompt="Campaña de verano")
    tagged = studio.assets.add_bytes(png((0, 0, 9)), "image", name="otro")
    studio.tag_asset(tagged.id, add=("Lanzamiento",))
    assert studio.list_assets(text="cafe").total == 10
    assert studio.list_assets(text="CAFÉ").total == 10
    assert [a.prompt for a in studio.list_assets(text="campana").items] == ["Campaña de verano"]
    assert [a.id for a in studio.list_assets(text="lanzamiento").items] == [tagged.id]
    assert studio.list_assets(text="100%_").total == 0  # LIKE's wildcards are literal


def test_rows_from_before_the_search_columns_are_filled_in(settings):
    """A vault written before search_text/part_of existed is searchable and grouped."""
    from sqlalchemy import text as sql

    from enfoads.core.studio import Studio

    with Studio(settings) as studio:
        video, parts = video_with_files(studio, "Café")
        with studio.assets._sessions.begin() as s:
            s.execute(sql("UPDATE assets SET search_text = NULL, part_of = NULL"))
    with Studio(settings) as studio:
        page = studio.list_assets(text="cafe", grouped=True)
        assert [a.id for a in page.items] == [video.id]
        assert [p.ext for p in page.parts[video.id]] == ["wav", "srt", "vtt"]


def test_grouped_listing_gives_one_card_per_video_and_hides_inputs(studio):
    video, parts = video_with_files(studio)
    studio.save_brand_kit(cta="Compra hoy")
    swap_input = studio.assets.add_bytes(
        png((1, 2, 3)), "image", name="source.upload", tags=(INPUT_TAG,)
    )
    image = studio.assets.add_bytes(png((3, 2, 1)), "image", name="zapatilla")
    flat = studio.list_assets(limit=50)
    assert flat.total == 7  # video, 3 files, kit, input, image
    page = studio.list_assets(grouped=True, inputs=False)
    assert {a.id for a in page.items} == {video.id, image.id} and page.total == 2
    assert [p.id for p in page.parts[video.id]] == [p.id for p in parts]
    shown = studio.list_assets(grouped=True, inputs=True)
    assert swap_input.id in {a.id for a in shown.items}
    # Deleting the video's card deletes its voice-over and subtitles with it.
    studio.delete_asset(video.id)
    assert all(not studio.assets.exists(p.id) for p in parts)


def test_an_asset_the_kit_uses_needs_a_confirmation_and_the_kit_follows(studio):
    logo = studio.upload_asset(png((0, 0, 0), (80, 80)), "logo.png", "logo")
    studio.save_brand_kit(logo_asset_id=logo.id, cta="Compra hoy")
    with pytest.raises(AssetInUse) as caught:
        studio.delete_asset(logo.id)
    assert caught.value.status == 409 and "logo.png" in caught.value.message("es")
    assert "kit de marca" in caught.value.message("es")
    assert studio.assets.exists(logo.id)  # nothing deleted without the confirmation
    studio.delete_asset(logo.id, confirm=True)
    assert not studio.assets.exists(logo.id)
    assert studio.brand_kit()["logo_asset_id"] is None
    # The kit keeps working: a change after the deletion does not trip over the old logo.
    assert studio.save_brand_kit(cta="Ven hoy")["cta"] == "Ven hoy"


def test_a_kit_saved_before_its_logo_vanished_still_saves(studio):
    """A logo deleted underneath the kit (an older version, another tool): the kit reads
    without it instead of failing on every later save."""
    logo = studio.upload_asset(png((0, 0, 0), (80, 80)), "logo.png", "logo")
    studio.save_brand_kit(logo_asset_id=logo.id)
    studio.assets.delete(logo.id)  # below the studio's guard
    assert studio.brand_kit()["logo_asset_id"] is None
    assert studio.save_brand_kit(cta="Compra")["cta"] == "Compra"


def seed_file(tmp_path: Path) -> bytes:
    entries = [
        {
            "id": "img_cafe",
            "type": "image",
            "name": "Café",
            "prompt": "taza de café",
            "url": "data:image/png;base64," + base64.b64encode(png()).decode(),
            "tags": ["verano"],
        },
        {"id": "img_path", "type": "image", "url": str(tmp_path / "secret.png")},
        {
            "id": "img_corrupt",
            "type": "image",
            "url": "data:image/png;base64,"
            + base64.b64encode(b"\x89PNG\r\n\x1a\nrubbish").decode(),
        },
    ]
    return json.dumps(entries).encode()


@pytest.fixture
def client(settings):
    from enfoads.core.studio import Studio

    studio = Studio(settings).start()
    with TestClient(create_app(studio, token="t0k")) as c:
        c.headers["Authorization"] = "Bearer t0k"
        yield studio, c
    studio.close()


def test_brand_kit_over_http(client):
    studio, c = client
    assert c.get("/api/brand-kit").json()["cta"] == ""
    logo = c.post(
        "/api/assets", files={"file": ("logo.png", png((0, 0, 0), (80, 80)))}, data={"kind": "logo"}
    ).json()
    reply = c.put(
        "/api/brand-kit",
        json={"logo_asset_id": logo["id"], "cta": "Compra hoy", "colours": ["#224466", "#FFD400"]},
    )
    assert reply.status_code == 200 and reply.json()["logo_asset_id"] == logo["id"]
    assert c.get("/api/brand-kit").json()["colours"] == ["#224466", "#FFD400"]
    bad = c.put("/api/brand-kit", json={"colours": ["nope"]})
    assert bad.status_code == 422 and bad.json()["field"] == "colours"
    refused = c.delete(f"/api/assets/{logo['id']}")
    assert refused.status_code == 409 and refused.json()["error"] == "asset_in_kit"
    assert c.delete(f"/api/assets/{logo['id']}", params={"confirm": "true"}).status_code == 204
    assert c.get("/api/brand-kit").json()["logo_asset_id"] is None


def test_grouped_listing_over_http(client):
    studio, c = client
    video, parts = video_with_files(studio, "Campaña")
    body = c.get("/api/assets", params={"grouped": "true", "q": "campana"}).json()
    assert [i["id"] for i in body["items"]] == [video.id]
    assert [p["id"] for p in body["parts"][video.id]] == [p.id for p in parts]
    assert all("sig=" in p["url"] for p in body["parts"][video.id])


def test_seed_import_over_http(client, tmp_path):
    studio, c = client
    reply = c.post("/api/assets/import", files={"file": ("assets.json", seed_file(tmp_path))})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["imported"], body["skipped"], body["already_there"]) == (1, 2, 0)
    assert body["assets"][0]["id"] == "img_cafe" and "sig=" in body["assets"][0]["url"]
    assert studio.get_asset("img_cafe").tags == ("verano",)
    again = c.post(
        "/api/assets/import", files={"file": ("assets.json", seed_file(tmp_path))}
    ).json()
    assert (again["imported"], again["already_there"]) == (0, 1)
    bad = c.post("/api/assets/import", files={"file": ("assets.json", b"{not json")})
    assert bad.status_code == 422 and bad.json()["field"] == "assets.json"
    assert "Traceback" not in bad.text and str(tmp_path) not in bad.text
    deep = c.post("/api/assets/import", files={"file": ("assets.json", b"[" * 100_000)})
    assert deep.status_code == 422
    assert c.get("/api/assets").json()["total"] == 1  # nothing half-imported


def test_seed_import_from_the_command_line(tmp_path):
    data_dir = tmp_path / "data"
    seed = tmp_path / "assets.json"
    seed.write_bytes(seed_file(tmp_path))
    env = dict(
        os.environ, ENFOADS_DATA_DIR=str(data_dir), ENFOADS_DEVICE="cpu", ENFOADS_LANGUAGE="es"
    )
    run = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "import-assets", str(seed)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "Importados: 1 · omitidos: 2 · ya estaban: 0" in run.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "import-assets", str(tmp_path / "nope.json")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert missing.returncode == 1 and "No se puede leer" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_karaoke_highlight_like_the_text_colour_is_refused(studio):
    from enfoads.core.errors import InvalidInput
    from enfoads.core.pipelines.compose import colour_difference
    from enfoads.core.pipelines.video import SubtitleStyle

    assert colour_difference("#FFFFFF", "#FFFFFF") == 0
    assert (
        colour_difference("#FFFFFF", "#FFD400") > 80
        and colour_difference("#000000", "#FFFFFF") > 99
    )
    SubtitleStyle(karaoke=True).validated()  # white text, yellow words: fine
    SubtitleStyle(karaoke=False, highlight_colour="#FFFFFF").validated()  # no highlight drawn
    with pytest.raises(InvalidInput) as caught:
        SubtitleStyle(karaoke=True, highlight_colour="#F4F4F4").validated()
    assert caught.value.field == "subtitle_style.highlight_colour"
    assert "apenas se distingue" in caught.value.message("es")


def test_seed_import_takes_the_json_body_and_a_few_uploads_worth(tmp_path):
    """The React client may send the file's content as JSON; a seed vault is bigger than one
    upload (each entry is still held to the upload limit), and a body past a few uploads'
    worth gets a 413 that names the limit."""
    import numpy as np

    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    settings = load_settings(
        data_dir=tmp_path / "d", device="cpu", language="es", max_upload_mb=0.05
    )

    def noise(seed: int) -> bytes:  # 30 KB of incompressible pixels: under the 50 KB limit
        import io

        from PIL import Image

        rng = np.random.default_rng(seed)
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(out, "PNG")
        return out.getvalue()

    entries = [
        {
            "id": f"img_{i}",
            "type": "image",
            "name": f"foto {i}",
            "url": "data:image/png;base64," + base64.b64encode(noise(i)).decode(),
        }
        for i in range(4)
    ]
    body = json.dumps(entries).encode()
    assert len(body) > settings.max_upload_bytes * 2  # more than one upload's worth
    with Studio(settings) as studio, TestClient(create_app(studio, token="t")) as c:
        c.headers["Authorization"] = "Bearer t"
        reply = c.post(
            "/api/assets/import", content=body, headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["imported"] == 4
        huge = json.dumps(entries * 5).encode()
        too_big = c.post(
            "/api/assets/import", content=huge, headers={"Content-Type": "application/json"}
        )
        assert too_big.status_code == 413 and "MB" in too_big.json()["message"]
        plain = c.post("/api/assets/import", content=b"x", headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
        assert studio.list_assets().total == 4
