"""Publish-ready export (issue #32, first part): every placement of every platform from a
campaign's images and a real video, read back by the checker; files built to break each rule
fail with the rule named; the ZIP's manifest matches its files."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import subprocess
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from enfoads.core import media, provenance
from enfoads.core.jobs import JobState
from enfoads.core.pipelines import export_presets as presets
from enfoads.core.pipelines.export import check_file, faststart
from enfoads.core.provenance import Claim
from enfoads.core.studio import Studio
from tests.helpers import read_tags

TIMEOUT = 600
SRT = "1\n00:00:00,000 --> 00:00:02,000\nCafé recién hecho\n"


def png(size, colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def clip(path: Path, seconds: float, size=(320, 568), fps=25, extra: list[str] = ()) -> Path:
    """A real H.264 + AAC clip (moving frames, a tone); ``extra`` ffmpeg output options."""
    wav = path.with_suffix(".wav")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        tone = np.sin(np.arange(int(22050 * seconds)) * 0.05) * 8000
        w.writeframes(tone.astype(np.int16).tobytes())
    if not extra:
        with media.FrameWriter(path, *size, fps, audio=wav) as writer:
            for i in range(int(seconds * fps)):
                writer.write(np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8))
        return path
    cmd = [media.ffmpeg_exe(), "-y", "-v", "error", "-f", "lavfi", "-i"]
    cmd += [f"testsrc=size={size[0]}x{size[1]}:rate={fps}:duration={seconds}", "-i", str(wav)]
    subprocess.run([*cmd, "-c:v", "libx264", "-pix_fmt", "yuv420p", *extra, str(path)], check=True)
    return path


@pytest.fixture
def studio(tiny_settings):
    with Studio(tiny_settings(language="es")) as st:
        st.start()
        yield st


def test_a_campaign_exports_for_every_platform_and_every_file_passes(studio, tmp_path):
    made = {"job_id": "job_a", "model_ids": ["test/sdxl"], "claim": Claim()}  # as generated
    square = studio.assets.add_bytes(png((1024, 1024), (200, 0, 0)), "image", **made)
    tall = studio.assets.add_bytes(png((768, 1344), (0, 160, 0)), "image", **made)
    video = studio.assets.add_bytes(clip(tmp_path / "ad.mp4", 7).read_bytes(), "video", ext="mp4")
    studio.assets.add_bytes(SRT.encode(), "subtitle", ext="srt", part_of=video.id)
    job = studio.export_campaign(
        asset_ids=[square.id, tall.id, video.id], platforms=list(presets.PLATFORMS)
    )
    done = studio.wait_job(job.id, TIMEOUT)
    assert done.state is JobState.COMPLETED, done.error
    exports = {e["platform"]: e for e in done.result["exports"]}
    assert set(exports) == set(presets.PLATFORMS)
    # the bumper takes 6 s of the 7 s clip: said, not silent
    assert any("recortado a 6 s" in n for n in done.result["notices"])
    for platform, export in exports.items():
        wanted = {p.key for p in presets.presets_for([platform])}
        assert {f["placement"] for f in export["files"]} == wanted, platform
        failed = [(f["file"], f["failures"]) for f in export["files"] if not f["passed"]]
        assert not failed, failed
        archive = zipfile.ZipFile(studio.assets.file_path(export["asset_id"]))
        manifest = json.loads(archive.read("manifest.json"))
        names = sorted(archive.namelist())
        assert names == sorted(
            [f["file"] for f in manifest["files"]] + ["manifest.json", "files.csv"]
        )
        for row in manifest["files"]:  # the manifest matches the files it lists
            data = archive.read(row["file"])
            assert hashlib.sha256(data).hexdigest() == row["sha256"] and len(data) == row["bytes"]
        rows = list(csv.DictReader(io.StringIO(archive.read("files.csv").decode())))
        assert [r["file"] for r in rows] == [f["file"] for f in manifest["files"]]
        assert studio.get_asset(export["asset_id"]).kind == "export"
    meta = zipfile.ZipFile(studio.assets.file_path(exports["meta"]["asset_id"]))
    out = tmp_path / "out"
    meta.extractall(out)
    story = Image.open(next(out.glob("meta-stories-9x16-*.jpg")))
    assert story.size == (1080, 1920) and story.getpixel((540, 960))[1] > 100  # the tall one
    assert b"trainedAlgorithmicMedia" in story.info["xmp"]  # IPTC source type in the XMP
    # signed: the crop of a generated image, that image (with its own manifest) the parent
    said = provenance.read(next(out.glob("meta-stories-9x16-*.jpg")), "jpg")
    assert said.state == "valid" and said.source_type == "trainedAlgorithmicMedia"
    assert [a["action"] for a in said.actions] == ["c2pa.opened", "c2pa.cropped"]
    assert said.ingredients == [
        {"title": tall.file_name, "relationship": "parentOf", "signed": True}
    ]
    reels = next(out.glob("meta-reels-9x16-*.mp4"))
    assert read_tags(reels)["ai_generated"] == "true" and faststart(reels)
    srt = next(out.glob("meta-reels-9x16-*.es_ES.srt"))  # Meta reads the locale in the name
    assert srt.read_text(encoding="utf-8") == SRT
    # the uploaded clip has no captions in its picture: its SRT is burned into the vertical
    # placements, inside the safe zone, for its two seconds only
    row = next(r for r in manifest_rows(meta) if r["file"] == reels.name)
    assert row["captions"] == "burned" and row["passed"]
    assert burned_text(reels, 1.0) > 200 and burned_text(reels, 4.0) == 0
    youtube = zipfile.ZipFile(studio.assets.file_path(exports["youtube"]["asset_id"]))
    landscape = next(r for r in manifest_rows(youtube) if r["placement"].endswith("16x9"))
    assert "captions" not in landscape  # burned only where the placement is vertical


def manifest_rows(archive: zipfile.ZipFile) -> list[dict]:
    return json.loads(archive.read("manifest.json"))["files"]


def burned_text(path: Path, at_s: float) -> int:
    """White caption pixels at ``at_s`` in the bottom band the captions go in (the moving
    test picture is grey)."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time >= at_s:
                pixels = frame.to_ndarray(format="rgb24")
                break
    reels = next(p for p in presets.PRESETS if p.key == "meta/reels-9x16")
    band = pixels[int(0.5 * reels.height) : int((1 - reels.safe.bottom) * reels.height)]
    return int(np.all(band > 235, axis=-1).sum())


def test_the_checker_names_each_broken_rule(tmp_path, monkeypatch):
    reels = next(p for p in presets.PRESETS if p.key == "meta/reels-9x16")
    tiktok = next(p for p in presets.PRESETS if p.key == "tiktok/in-feed-9x16")
    image = next(p for p in presets.PRESETS if p.key == "google/landscape-1.91x1")

    def fails(path, preset, **kw):
        return " | ".join(check_file(path, preset, "es", **kw))

    wrong_canvas = tmp_path / "wrong.jpg"
    Image.new("RGB", (1200, 630)).save(wrong_canvas, "JPEG")
    assert "mide 1200×630: google pide 1200×628" in fails(wrong_canvas, image)
    heavy = tmp_path / "heavy.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (628, 1200, 3), np.uint8)
    Image.fromarray(noise).save(heavy, "JPEG", quality=100)
    capped = dataclasses.replace(image, max_bytes=100_000)
    assert "google admite hasta 0.1 MB" in fails(heavy, capped)
    # one file right in every way, then small ones each broken in one way (the canvas is
    # wrong for those too; each assertion names the rule it breaks)
    enc = ["-r", "30", "-g", "60", "-profile:v", "high", "-c:a", "aac", "-ar", "48000", "-ac", "2"]
    fast = ["-movflags", "+faststart"]
    good = clip(tmp_path / "good.mp4", 6, extra=["-vf", "scale=1080:1920", *enc, *fast])
    unsigned = tmp_path / "unsigned.mp4"
    unsigned.write_bytes(good.read_bytes())
    keys = provenance.Credentials(tmp_path / "keys")
    keys.sign_file(good, provenance.manifest("good.mp4", source_type="trainedAlgorithmicMedia"))
    assert fails(good, tiktok) == ""
    assert provenance.xmp_source(good, "mp4") == "trainedAlgorithmicMedia"  # XMP's uuid box
    # text the studio put in the unsafe band (a caption under TikTok's buttons) is named
    assert fails(good, tiktok, texts=[("caption", (100, 1700, 900, 1800))]) == (
        "un subtítulo entra en la franja insegura (abajo) de tiktok/in-feed-9x16: la tapan "
        "los botones o el texto de la plataforma"
    )
    assert fails(good, tiktok, texts=[("cta", (900, 300, 1060, 400))]).startswith(
        "el botón entra en la franja insegura (derecha)"
    )
    # a manifest that says AI with no XMP to match (a signer that writes no XMP)
    other = tmp_path / "other.mp4"
    other.write_bytes(unsigned.read_bytes())
    monkeypatch.setattr(provenance, "mp4_with_xmp", lambda data, xmp: data)
    keys.sign_file(other, provenance.manifest("other.mp4", source_type="trainedAlgorithmicMedia"))
    monkeypatch.undo()
    assert provenance.read(other, "mp4").state == "valid"
    assert fails(other, tiktok) == (
        "el XMP no dice el mismo origen que el manifiesto C2PA (trainedAlgorithmicMedia): dice —"
    )
    assert "sin subtítulos" in fails(good, tiktok, captions=False)
    assert "dura 62 s: tiktok admite 5–60 s" in fails(
        clip(tmp_path / "long.mp4", 62, extra=[*enc, *fast]), tiktok
    )
    assert "el índice (moov) va al final" in fails(clip(tmp_path / "slow.mp4", 2, extra=enc), reels)
    gop = [*enc[:2], "-g", "250", *enc[4:], *fast]
    assert "un fotograma clave cada 90" in fails(clip(tmp_path / "gop.mp4", 3, extra=gop), reels)
    vfr = ["-vf", "setpts=N/30/TB+if(gt(N\\,20)\\,0.2/TB\\,0)", "-fps_mode", "vfr", *enc[2:], *fast]
    assert "fps constantes" in fails(clip(tmp_path / "vfr.mp4", 2, extra=vfr), reels)
    mono = [*enc[:-4], "-ac", "1", "-ar", "44100", *fast]
    assert "pide AAC 48 kHz estéreo" in fails(clip(tmp_path / "mono.mp4", 2, extra=mono), reels)
    baseline = [*enc[:4], "-profile:v", "baseline", *enc[6:], *fast]
    assert "pide H.264 High" in fails(clip(tmp_path / "bl.mp4", 2, extra=baseline), reels)


def test_a_video_too_short_for_a_placement_is_refused_with_its_reason(studio, tmp_path):
    video = studio.assets.add_bytes(
        clip(tmp_path / "short.mp4", 3).read_bytes(), "video", ext="mp4"
    )
    done = studio.wait_job(
        studio.export_campaign(asset_ids=[video.id], platforms=["tiktok"]).id, TIMEOUT
    )
    assert done.state is JobState.COMPLETED and done.result["exports"] == []
    said = " ".join(done.result["notices"])
    assert "No exportado (tiktok/in-feed-9x16): dura 3 s: tiktok admite 5–60 s" in said
    assert "Ninguno de los archivos elegidos sirve para tiktok" in said


def test_the_export_route_comes_from_the_jobs_spec_and_refuses_bad_input(studio):
    from enfoads.server.app import create_app

    with TestClient(create_app(studio)) as c:
        r = c.post("/api/exports", json={"asset_ids": ["img_nope"], "platforms": ["meta"]})
        assert r.status_code == 404 and "img_nope" in r.json()["message"]
        r = c.post("/api/exports", json={"asset_ids": ["x"], "platforms": ["myspace"]})
        assert r.status_code == 422 and "«myspace» no es una opción" in r.json()["message"]
        r = c.post("/api/exports", json={"asset_ids": [], "platforms": ["meta"]})
        assert r.status_code == 422 and r.json()["field"] == "asset_ids"
        options = c.get("/api/capabilities").json()["capabilities"]["export"]["options"]
        assert {p["platform"] for p in options["presets"]} == set(presets.PLATFORMS)
        assert all(p["source"] and p["checked"] for p in options["presets"])
    assert studio.list_jobs() == []


def test_enfoads_export_writes_one_zip_per_platform_and_says_each_files_verdict(
    tiny_settings, tmp_path
):
    import os
    import sys

    settings = tiny_settings(language="es")
    with Studio(settings) as st:
        image = st.assets.add_bytes(png((1024, 1024), (10, 20, 200)), "image")
    env = {**os.environ, "ENFOADS_DATA_DIR": str(settings.data_dir), "ENFOADS_DEVICE": "cpu"}
    env["ENFOADS_LANGUAGE"] = "es"
    out = tmp_path / "zips"
    cmd = [sys.executable, "-m", "enfoads.cli", "export", image.id, "--platform", "google"]
    done = subprocess.run(
        [*cmd, "--platform", "linkedin", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["google.zip", "linkedin.zip"]
    assert "google-landscape-1.91x1" in done.stdout and "✔" in done.stdout
    assert "✘" not in done.stdout and "Traceback" not in done.stderr
    bad = subprocess.run(
        [*cmd[:-2], "--platform", "myspace"], capture_output=True, text=True, env=env, timeout=60
    )
    assert bad.returncode == 2 and "myspace" in bad.stderr  # argparse names the choices


def test_a_ratio_no_placement_is_near_is_generated_again_from_the_same_prompt_and_seed(studio):
    """A square ad cut to 9:16 would lose 44 % of the picture: that ratio is generated again
    (same prompt, seed and style) and exported instead; with ``regenerate: false`` it is
    cropped, as asked."""
    made = studio.wait_job(
        studio.generate_images(prompt="taza de café", placements=["1:1"], seed=11).id, TIMEOUT
    )
    square = made.result["images"][0]["asset_id"]
    done = studio.wait_job(
        studio.export_campaign(asset_ids=[square], platforms=["meta", "linkedin"]).id, TIMEOUT
    )
    assert done.state is JobState.COMPLETED, done.error
    said = " ".join(done.result["notices"])
    assert "generado de nuevo en 16:9, 9:16 con el mismo texto y semilla" in said
    new = [studio.get_asset(a) for a in done.result_asset_ids if a.startswith("img_")]
    assert sorted((a.width, a.height) for a in new) == [(768, 1344), (1344, 768)]
    assert {(a.prompt, a.seed) for a in new} == {("taza de café", 11)}
    rows = {f["placement"]: f for e in done.result["exports"] for f in e["files"]}
    assert all(f["passed"] for f in rows.values()), rows
    tall = next(a.id for a in new if a.height > a.width)
    wide = next(a.id for a in new if a.width > a.height)
    assert rows["meta/stories-9x16"]["source_asset_id"] == tall
    assert rows["linkedin/single-image-1.91x1"]["source_asset_id"] == wide
    assert rows["meta/feed-4x5"]["source_asset_id"] == square  # 4:5 keeps 80 %: cropped
    before = len(studio.list_assets(kind="image", limit=100).items)
    cropped = studio.wait_job(
        studio.export_campaign(asset_ids=[square], platforms=["meta"], regenerate=False).id,
        TIMEOUT,
    )
    rows = {f["placement"]: f for e in cropped.result["exports"] for f in e["files"]}
    assert rows["meta/stories-9x16"]["source_asset_id"] == square
    assert len(studio.list_assets(kind="image", limit=100).items) == before


@pytest.mark.slow
def test_a_spoken_upload_without_captions_is_heard_and_captioned(media_settings, tmp_path):
    """A face swap or an uploaded clip has no SRT: the subtitles model hears its voice, the
    vertical placements get the words burned in, LinkedIn an SRT sidecar from them."""
    with Studio(media_settings(language="es")) as studio:
        studio.start()
        spoken = studio.speak("Fresh coffee every morning. Order yours today at our shop.")
        voice = studio.asset_path(spoken["asset_id"])
        seconds = max(5.2, spoken.get("duration_s") or 0.0)
        path = tmp_path / "spoken.mp4"
        cmd = [media.ffmpeg_exe(), "-y", "-v", "error", "-f", "lavfi", "-i"]
        cmd += [f"color=c=gray:size=360x640:rate=25:duration={seconds}", "-i", str(voice)]
        cmd += ["-af", "apad", "-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p"]
        subprocess.run([*cmd, str(path)], check=True)
        video = studio.upload_asset(path.read_bytes(), "clip.mp4")
        done = studio.wait_job(
            studio.export_campaign(asset_ids=[video.id], platforms=["tiktok", "linkedin"]).id,
            TIMEOUT,
        )
        assert done.state is JobState.COMPLETED, done.error
        exports = {e["platform"]: e for e in done.result["exports"]}
        tiktok = exports["tiktok"]["files"][0]
        assert tiktok["captions"] == "burned" and tiktok["passed"], tiktok
        linkedin = zipfile.ZipFile(studio.asset_path(exports["linkedin"]["asset_id"]))
        sidecar = next(n for n in linkedin.namelist() if n.endswith(".es_ES.srt"))
        said = linkedin.read(sidecar).decode("utf-8").lower()
        assert "coffee" in said and "-->" in said  # what was said, heard
        assert all(f["passed"] for f in exports["linkedin"]["files"])


def test_a_face_swap_of_a_render_keeps_its_captions_once(studio, tmp_path):
    """A render has its words in the picture; a face swap of it (its child video) is not
    captioned again, and its sidecar is the render's SRT."""
    data = clip(tmp_path / "render.mp4", 5.5).read_bytes()
    render = studio.assets.add_bytes(
        data, "video", ext="mp4", meta={"kind": "render_video", "captions_burned": True}
    )
    studio.assets.add_bytes(SRT.encode(), "subtitle", ext="srt", part_of=render.id)
    face = studio.assets.add_bytes(png((64, 64), (90, 60, 40)), "image")
    swapped = studio.assets.add_bytes(data, "video", ext="mp4", parents=[face.id, render.id])
    done = studio.wait_job(
        studio.export_campaign(asset_ids=[swapped.id], platforms=["tiktok", "linkedin"]).id,
        TIMEOUT,
    )
    assert done.state is JobState.COMPLETED, done.error
    exports = {e["platform"]: e for e in done.result["exports"]}
    tiktok = exports["tiktok"]["files"][0]
    assert tiktok["captions"] == "source" and tiktok["passed"]  # not burned a second time
    archive = zipfile.ZipFile(studio.asset_path(exports["linkedin"]["asset_id"]))
    sidecar = next(n for n in archive.namelist() if n.endswith(".srt"))
    assert archive.read(sidecar).decode("utf-8") == SRT
    assert not any("sin subtítulos" in n for n in done.result["notices"])
