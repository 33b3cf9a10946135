"""Each asset says whether it is clear for commercial use (issue #35): from the licences of
the models that touched it and of what it was made from. The talking avatar finds its face
with InsightFace (non-commercial) only once the shop has accepted that licence; otherwise
with scikit-image's cascade (BSD-3), and its video says so."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from enfoads.core import licences
from enfoads.testing.faces import astronaut_rgb


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_the_strictest_licence_decides():
    import enfoads.core.pipelines.voice  # noqa: F401 - declares the voices it has checked

    said = licences.status(
        ["ByteDance/SDXL-Lightning/x.safetensors", "madebyollin/sdxl-vae-fp16-fix"]
    )
    assert said["commercial_use"] is True
    assert [row["licence"] for row in said["licences"]] == ["CreativeML Open RAIL++-M", "MIT"]
    assert licences.status(["piper/en_US-joe-medium"])["commercial_use"] is True  # CC0
    assert licences.status(["piper/es_MX-claude-high"])["commercial_use"] is None  # its card
    assert licences.status(["local:my-unet"])["commercial_use"] is None
    swap = licences.status(["insightface/buffalo_l", "piper/es_MX-claude-high"])
    assert swap["commercial_use"] is False
    assert licences.status([], parents=[True, None])["commercial_use"] is None
    assert licences.status([], parents=[True, False])["commercial_use"] is False
    assert licences.status([])["commercial_use"] is True  # an upload: no model touched it


def test_an_asset_inherits_the_status_of_what_it_was_made_from(media_settings):
    from enfoads.core.studio import Studio

    with Studio(media_settings()) as studio:
        photo = studio.upload_asset(png(astronaut_rgb()), "foto.png")
        assert photo.to_dict()["commercial_use"] is True and photo.meta["licences"] == []
        swapped = studio.assets.add_bytes(
            png(astronaut_rgb()[::-1]),
            "image",
            parents=[photo.id],
            model_ids=["insightface/buffalo_l", "insightface/inswapper_128"],
        )
        assert swapped.to_dict()["commercial_use"] is False
        # A video made from the swapped picture with commercial models is still not clear.
        ad = studio.assets.add_bytes(
            png(astronaut_rgb()[:, ::-1]),
            "image",
            parents=[swapped.id],
            model_ids=["faster-whisper/base"],
        )
        assert ad.to_dict()["commercial_use"] is False
        row = next(r for r in ad.meta["licences"] if r["model"] == "faster-whisper/base")
        assert row == {"model": "faster-whisper/base", "licence": "MIT", "commercial_use": True}


@pytest.mark.parametrize("accepted", [False, True])
def test_the_avatar_runs_insightface_only_once_its_licence_is_accepted(
    media_settings, accepted, monkeypatch
):
    """InsightFace's pack is on disk in both cases; without the shop's acceptance the avatar
    never runs it, finds the astronaut with the BSD cascade, and its video is clear for
    commercial use (the voice is CC0, whisper and the animator are the studio's or MIT); with
    it, the landmarks place the mouth and the video says it is not clear."""
    from enfoads.core.pipelines.faceswap import FaceSwapPipeline
    from enfoads.core.studio import Studio

    asked = []
    landmarks = FaceSwapPipeline.landmarks

    def spy(self, rgb):
        asked.append(rgb.shape)
        return landmarks(self, rgb)

    monkeypatch.setattr(FaceSwapPipeline, "landmarks", spy)
    with Studio(media_settings(faceswap_licence_accepted=accepted)) as studio:
        assert studio.capabilities["faceswap"].analysis_on_disk()
        avatar = studio.upload_asset(png(astronaut_rgb()), "presentadora.png")
        job = studio.render_video(script="Hola.", avatar_asset_id=avatar.id, size=240)
        done = studio.wait_job(job.id, timeout=300)
        assert done.state.value == "completed", done.error
        assert bool(asked) is accepted
        video = next(a for a in map(studio.get_asset, done.result_asset_ids) if a.kind == "video")
        said = video.to_dict()
        models = [row["model"] for row in video.meta["licences"]]
        assert "piper/en_US-joe-medium" in models and "enfoads/talking-photo" in models
        if accepted:  # InsightFace's landmarks placed the mouth: not for commercial use
            assert "insightface/buffalo_l" in models and said["commercial_use"] is False
        else:
            assert "scikit-image/lbp-frontal-face" in models
            assert not any(m.startswith("insightface/") for m in models)
            assert said["commercial_use"] is True
