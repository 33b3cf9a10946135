import base64
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from enfoads.core import media
from enfoads.core.errors import InvalidInput, NotFound, TooLarge, UnsafePath


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("postgresql+s3", marks=pytest.mark.postgres),
    ]
)
def settings(request, tmp_path):
    """The asset store's suite on SQLite and on a real PostgreSQL server (conftest), files in
    the data dir; and as a cluster keeps them: PostgreSQL and a real S3 server's bucket."""
    from enfoads.core.settings import load_settings

    database, _, storage = request.param.partition("+")
    bucket = {}
    if storage:
        bucket = request.getfixturevalue("s3_server").settings(f"vault-{os.getpid()}-{id(request)}")
    return load_settings(
        data_dir=tmp_path / "data",
        device="cpu",
        language="en",
        server_port=0,
        database_url=request.getfixturevalue("postgres").database()
        if database != "sqlite"
        else None,
        **bucket,
    )


def png_bytes(color=(200, 30, 30), size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def test_add_get_and_thumbnail(studio):
    added = []
    studio.subscribe(lambda e: added.append(e.payload["id"]), "asset_added")
    asset = studio.upload_asset(png_bytes(), "logo.png", tags=("Brand", "rojo"))
    assert asset.kind == "image" and (asset.width, asset.height) == (64, 48)
    assert asset.tags == ("brand", "rojo")
    assert added == [asset.id]
    path = studio.assets.file_path(asset)
    assert path.read_bytes() == png_bytes()
    assert path.is_relative_to(studio.settings.assets_dir)
    assert path.name == f"{asset.sha256}.png"
    thumb = Image.open(studio.assets.thumbnail_path(asset))
    assert thumb.format == "JPEG" and max(thumb.size) <= studio.settings.thumbnail_px
    assert studio.get_asset(asset.id) == asset
    d = asset.to_dict()
    assert d["url"] == f"/api/assets/{asset.id}/file" and d["thumbnail_url"]


def test_search_filter_and_pagination(studio):
    a = studio.assets.add_bytes(png_bytes((1, 2, 3)), "image", prompt="zapatillas rojas")
    b = studio.assets.add_bytes(png_bytes((4, 5, 6)), "logo", name="Logo Café")
    c = studio.assets.add_bytes(png_bytes((7, 8, 9)), "image", tags=["verano"])
    assert {x.id for x in studio.list_assets(kind="image").items} == {a.id, c.id}
    assert [x.id for x in studio.list_assets(text="ROJAS").items] == [a.id]
    assert [x.id for x in studio.list_assets(text="café").items] == [b.id]
    assert [x.id for x in studio.list_assets(text="veran").items] == [c.id]
    assert [x.id for x in studio.list_assets(tag="verano").items] == [c.id]
    assert studio.list_assets(text="100%").total == 0  # LIKE wildcards are literal
    page = studio.list_assets(limit=2)
    assert page.total == 3 and len(page.items) == 2
    rest = studio.list_assets(offset=2, limit=2)
    assert len(rest.items) == 1 and rest.items[0].id not in {x.id for x in page.items}
    studio.tag_asset(a.id, add=("verano",), remove=())
    assert {x.id for x in studio.list_assets(tag="verano").items} == {a.id, c.id}
    with pytest.raises(InvalidInput):
        studio.list_assets(kind="podcast")
    with pytest.raises(InvalidInput, match="offset"):
        studio.list_assets(offset=2**63)


def test_delete_keeps_a_file_that_another_asset_uses(studio):
    data = png_bytes()
    one = studio.assets.add_bytes(data, "image")
    two = studio.assets.add_bytes(data, "avatar")
    path = studio.assets.file_path(one)
    assert studio.assets.file_path(two) == path
    studio.delete_asset(one.id)
    assert path.exists()
    with pytest.raises(NotFound):
        studio.get_asset(one.id)
    studio.delete_asset(two.id)
    assert not path.exists()
    assert not list(studio.settings.assets_dir.rglob("*.png"))


def test_writes_are_atomic(studio, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        studio.assets.add_bytes(png_bytes(), "image")
    files = [p for p in studio.settings.assets_dir.rglob("*") if p.is_file()]
    assert files == []  # no temp file left, no half-written blob
    monkeypatch.undo()
    assert studio.list_assets().total == 0


def test_lineage_is_recorded(studio):
    parent = studio.assets.add_bytes(png_bytes(), "image")
    child = studio.assets.add_bytes(
        png_bytes((9, 9, 9)),
        "image",
        parents=[parent.id],
        job_id="job_1",
        prompt="p",
        seed=7,
        model_ids=["sdxl"],
    )
    got = studio.get_asset(child.id)
    assert got.parents == (parent.id,) and got.seed == 7 and got.model_ids == ("sdxl",)
    assert got.job_id == "job_1"


def test_video_assets_get_probed_and_a_thumbnail(studio, tmp_path):
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [
            media.ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=1",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
    )
    asset = studio.upload_asset(video.read_bytes(), "clip.mp4")
    assert asset.kind == "video" and (asset.width, asset.height) == (320, 240)
    assert asset.duration_s == pytest.approx(1.0, abs=0.1)
    thumb = Image.open(studio.assets.thumbnail_path(asset))
    assert thumb.size[0] <= studio.settings.thumbnail_px and thumb.format == "JPEG"


def test_seed_assets_json_import(studio, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    entries = [
        {
            "id": "img_123",
            "type": "image",
            "prompt": "café de especialidad",
            "url": "data:image/png;base64," + base64.b64encode(png_bytes()).decode(),
            "created_at": "2025-12-27T10:00:00Z",
        },
        {"id": "img_bad", "type": "image", "url": "data:image/png;base64,@@not-base64@@"},
        {"id": "img_path", "type": "image", "url": str(secret)},
        {
            "id": "../../escape",
            "type": "image",
            "url": "data:image/png;base64," + base64.b64encode(png_bytes((0, 0, 1))).decode(),
        },
    ]
    path = tmp_path / "assets.json"
    path.write_text(json.dumps(entries))
    imported = studio.import_seed_assets(path)
    assert len(imported) == 2
    first = studio.get_asset("img_123")
    assert first.prompt == "café de especialidad" and first.created_at.year == 2025
    assert imported[1].id != "../../escape" and imported[1].id.startswith("img_")
    # importing again repeats nothing: img_123 by its id, the entry whose id the vault
    # refused ("../../escape") by its content
    assert studio.import_seed_assets(path) == []
    assert studio.list_assets().total == 2


def test_bad_input_names_the_problem(studio, tmp_path):
    with pytest.raises(NotFound, match="no asset with id 'img_nope'"):
        studio.get_asset("img_nope")
    with pytest.raises(NotFound):
        studio.get_asset("../../etc/passwd")
    with pytest.raises(InvalidInput, match="not a readable image"):
        studio.upload_asset(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "broken.png")
    with pytest.raises(InvalidInput, match="unknown file format"):
        studio.upload_asset(b"hello world", "notes.txt")
    with pytest.raises(InvalidInput, match="empty"):
        studio.assets.add_bytes(b"", "image")
    big = studio.settings.max_upload_bytes + 1
    with pytest.raises(TooLarge, match="huge.png"):
        studio.upload_asset(b"\x89PNG\r\n\x1a\n" + bytes(big), "huge.png")
    # A tiny file that declares a gigantic image: refused from its header, never decoded.
    bomb = io.BytesIO()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).resize((8000, 6000)).save(bomb, "PNG")
    with pytest.raises(TooLarge, match="pixels"):
        studio.assets.max_image_pixels = 1_000_000
        studio.upload_asset(bomb.getvalue(), "bomb.png")
    assert studio.list_assets().total == 0
    assert [p for p in studio.settings.assets_dir.rglob("*") if p.is_file()] == []
    # The cap is for uploads: the studio's own large outputs are stored.
    studio.assets.max_image_pixels = 40_000_000
    big_output = png_bytes(size=(1024, 1024)) + bytes(studio.settings.max_upload_bytes)
    assert studio.assets.add_bytes(big_output, "image").size_bytes == len(big_output)


def test_paths_outside_the_data_dir_are_refused(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    assert media.resolve_inside(root, "a/b.png") == root / "a" / "b.png"
    for evil in ("../x", "a/../../x", "/etc/passwd"):
        with pytest.raises(UnsafePath):
            media.resolve_inside(root, evil)


SERIF = "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"  # fonts-dejavu-core (.ci/run)


@pytest.mark.skipif(not os.path.exists(SERIF), reason="needs fonts-dejavu-core")
def test_font_uploads_are_checked_and_previewed(studio):
    data = Path(SERIF).read_bytes()
    font = studio.upload_asset(data, "Marca-Bold.ttf")
    assert font.kind == "font" and font.ext == "ttf" and font.id.startswith("fnt_")
    thumb = Image.open(studio.assets.thumbnail_path(font))
    assert np.asarray(thumb.convert("L")).min() < 80  # the sample text is drawn
    # a truncated font, a PNG called a font, a font called an image: errors, nothing stored
    with pytest.raises(InvalidInput) as info:
        studio.upload_asset(data[:2000], "rota.ttf")
    assert "rota.ttf" in info.value.message("en") and "font" in info.value.message("en")
    with pytest.raises(InvalidInput):
        studio.upload_asset(png_bytes(), "logo.png", kind="font")
    with pytest.raises(InvalidInput):
        studio.upload_asset(data, "Marca.ttf", kind="image")
    assert studio.list_assets().total == 1
    # the brand kit keeps a font asset, and refuses anything else there
    kit = studio.save_brand_kit(font_asset_id=font.id)
    assert studio.brand_kit()["font_asset_id"] == font.id == kit["font_asset_id"]
    image = studio.upload_asset(png_bytes(), "x.png")
    with pytest.raises(InvalidInput) as info:
        studio.save_brand_kit(font_asset_id=image.id)
    assert "not a font" in info.value.message("en")


def test_saving_the_brand_kit_replaces_the_previous_one(studio):
    studio.save_brand_kit(cta="Compra hoy", colours=["#224466", "#FFD400"])
    studio.save_brand_kit(cta="Ven a vernos")
    kits = studio.list_assets(kind="brand_kit")
    assert kits.total == 1
    kit = studio.brand_kit()
    assert kit["cta"] == "Ven a vernos" and kit["colours"] == ["#224466", "#FFD400"]
    with pytest.raises(InvalidInput):
        studio.save_brand_kit(cta="x" * 81)
    assert studio.list_assets(kind="brand_kit").items[0].id == kits.items[0].id  # kept on error


def test_a_name_longer_than_its_column_is_kept_to_its_width(studio):
    """PostgreSQL enforces VARCHAR(255), SQLite does not: the store keeps both the same."""
    asset = studio.assets.add_bytes(png_bytes(), "image", name="Café " * 80)
    assert studio.get_asset(asset.id).name == ("Café " * 80)[:255]
