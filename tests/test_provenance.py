"""Signed provenance (issue #32): every file the studio makes carries a C2PA manifest that
c2pa-python validates, says what made it (IPTC digital source type, the models, the inputs as
ingredients), and reports a changed file as such; the signing key stays in the data dir."""

from __future__ import annotations

import io
import json
import os
import stat
import threading
import wave

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from enfoads.core import provenance
from enfoads.core.jobs import JobState
from enfoads.core.studio import Studio
from enfoads.testing.faces import astronaut_rgb


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_a_generated_image_is_signed_and_the_api_says_what_a_platform_reads(tiny_settings):
    from enfoads.server.app import create_app

    with Studio(tiny_settings(language="es")) as studio:
        studio.start()
        job = studio.wait_job(studio.generate_images(prompt="taza de café", seed=3).id, 300)
        assert job.state is JobState.COMPLETED, job.error
        asset = studio.get_asset(job.result["images"][0]["asset_id"])
        upload = studio.upload_asset(png(astronaut_rgb()), "foto.png")
        with TestClient(create_app(studio)) as c:
            said = c.get(f"/api/assets/{asset.id}/provenance").json()
            english = c.get(
                f"/api/assets/{asset.id}/provenance", headers={"Accept-Language": "en"}
            ).json()
            plain = c.get(f"/api/assets/{upload.id}/provenance").json()
            missing = c.get("/api/assets/img_nope/provenance")
        # signed by this data dir's own authority (trusted here), made from scratch by a model
        assert said["state"] == "trusted" and said["signed"] and said["ai_generated"]
        assert said["source_type"] == "trainedAlgorithmicMedia" and said["problems"] == []
        assert said["summary"] == "Firmado por este estudio (C2PA): trainedAlgorithmicMedia"
        assert english["summary"] == "Signed by this studio (C2PA): trainedAlgorithmicMedia"
        [created] = said["actions"]
        assert created["action"] == "c2pa.created" and "sdxl" in created["agent"].lower()
        assert said["generator"].startswith("Enfoads Studio")
        # a person's upload is stored as it came: no claim is made for it
        assert plain["state"] == "none" and not plain["signed"]
        assert plain["summary"].startswith("Sin credenciales de contenido")
        assert missing.status_code == 404 and "img_nope" in missing.json()["message"]
        # the file still is the studio's PNG: its record, the XMP source type, its pixels
        path = studio.asset_path(asset)
        image = Image.open(path)
        assert image.text["AI-Generated"] == "true"
        assert "trainedAlgorithmicMedia" in image.text["XML:com.adobe.xmp"]
        assert image.size == (asset.width, asset.height)
        # c2pa-python itself, with no trust configured: a valid manifest
        data = path.read_bytes()
        assert provenance.read(data, "png").state == "valid"
        # no claim thumbnail: the PNG is its own picture (a JPEG made while signing cost a
        # 1024² result 50-60 ms and 130 KB)
        import c2pa

        with c2pa.Reader("image/png", io.BytesIO(data)) as reader:
            store = json.loads(reader.json())
        assert "thumbnail" not in store["manifests"][store["active_manifest"]]
        # one changed byte of the pictures: the manifest no longer validates
        at = data.index(b"IDAT") + 40
        tampered = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
        changed = studio.assets.credentials.read(tampered, "png")
        assert changed.state == "invalid" and "assertion.dataHash.mismatch" in changed.problems
        assert "PRIVATE KEY" not in str(said)


def test_a_face_swap_says_it_edited_a_real_photo_and_names_both_inputs(media_settings):
    with Studio(media_settings(language="en")) as studio:
        photo = studio.upload_asset(png(astronaut_rgb()), "shop-photo.png")
        face = studio.upload_asset(png((astronaut_rgb() * 0.8 + 20).astype(np.uint8)), "me.png")
        out = studio.swap_face_now(face.id, photo.id)
        said = studio.asset_provenance(out["asset_id"])
    assert said["state"] == "trusted"
    assert said["source_type"] == "compositeWithTrainedAlgorithmicMedia"
    assert [a["action"] for a in said["actions"]] == ["c2pa.opened", "c2pa.edited"]
    assert "inswapper_128" in said["actions"][1]["agent"]
    assert said["ingredients"] == [
        {"title": "me.png", "relationship": "componentOf", "signed": False},
        {"title": "shop-photo.png", "relationship": "parentOf", "signed": False},
    ]


def test_a_spoken_voice_is_signed_and_still_a_wav(media_settings):
    with Studio(media_settings(language="en")) as studio:
        spoken = studio.speak("Fresh coffee, every morning.")
        said = studio.asset_provenance(spoken["asset_id"])
        path = studio.asset_path(spoken["asset_id"])
    assert said["state"] == "trusted" and said["source_type"] == "trainedAlgorithmicMedia"
    with wave.open(str(path)) as w:  # the manifest is a chunk a player skips
        assert w.getnframes() > w.getframerate()


def test_the_signing_key_is_made_once_kept_private_and_trusted_only_here(tmp_path):
    folder = tmp_path / "data" / "provenance"
    made = [provenance.Credentials(folder) for _ in range(4)]
    threads = [threading.Thread(target=c.authority_pem) for c in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p.name for p in folder.iterdir()) == ["credentials.pem"]  # one, no leftovers
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "credentials.pem").stat().st_mode) == 0o600
    assert len({c.authority_pem() for c in made}) == 1  # every racer uses the one identity
    definition = provenance.manifest("ad.png", source_type="trainedAlgorithmicMedia")
    signed = made[0].sign(png(astronaut_rgb()), "png", definition)
    assert made[3].read(signed, "png").state == "trusted"
    other = provenance.Credentials(tmp_path / "other" / "provenance")
    assert other.read(signed, "png").state == "valid"  # sound, but not this studio's signer
    assert os.stat(folder / "credentials.pem").st_size < 4096


def test_a_folder_without_hard_links_still_gets_one_signing_identity(tmp_path, monkeypatch):
    """Google Drive's mount in Colab refuses hard links: the file is created exclusively."""

    def no_links(*_args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    keys = provenance.Credentials(tmp_path / "drive" / "provenance")
    signed = keys.sign(png(astronaut_rgb()), "png", provenance.manifest("a.png", source_type="x"))
    assert keys.read(signed, "png").state == "trusted"
    assert sorted(p.name for p in keys.folder.iterdir()) == ["credentials.pem"]
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("ext", ["jpg", "mp4"])
def test_a_file_without_a_manifest_reads_as_none_and_junk_as_invalid(tmp_path, ext):
    if ext == "jpg":
        data = io.BytesIO()
        Image.fromarray(astronaut_rgb()).save(data, "JPEG")
        blob = data.getvalue()
    else:
        blob = b"\x00\x00\x00\x18ftypmp42" + os.urandom(64)
    said = provenance.read(blob, ext)
    assert said.state in ("none", "invalid") and not said.source_type
    assert provenance.read(b"", "txt").state == "none"
