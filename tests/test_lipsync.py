"""Lip-sync (issue #35): MuseTalk 1.5's networks, loaded from their published layout with only
tensors read from the pickle, inpaint the mouth of each frame of another animator from the
voice's Whisper features. CPU tests with small random-weight stand-ins of the same classes."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from PIL import Image

from enfoads.core.errors import ModelNotDownloaded, ModelUnavailable
from enfoads.testing.faces import astronaut_rgb


@pytest.fixture(scope="module")
def musetalk(tmp_path_factory):
    from enfoads.testing.musetalk import build_musetalk

    return build_musetalk(tmp_path_factory.mktemp("musetalk"))


@pytest.fixture
def lip_settings(media_settings, musetalk):
    def make(**overrides):
        values = dict(
            lipsync_model=str(musetalk["unet"]),
            lipsync_vae_model=str(musetalk["vae"]),
            lipsync_audio_model=str(musetalk["audio"]),
            faceswap_licence_accepted=False,  # the licence-clean face chain
        )
        return media_settings(**{**values, **overrides})

    return make


def test_the_published_unet_has_musetalks_shapes():
    """musetalkV15/musetalk.json builds Stable Diffusion's UNet with 8 input channels (masked
    and reference latents) and cross-attention to whisper-tiny's 384-wide features."""
    import torch
    from diffusers import UNet2DConditionModel

    from enfoads.core.pipelines.lipsync import UNET_CONFIG

    with torch.device("meta"):
        unet = UNet2DConditionModel(**UNET_CONFIG)
    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    assert shapes["conv_in.weight"] == (320, 8, 3, 3)
    assert shapes["conv_out.weight"] == (4, 320, 3, 3)
    assert shapes["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"] == (320, 384)
    assert shapes["mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight"] == (1280, 384)
    assert "down_blocks.3.attentions.0.proj_in.weight" not in shapes  # DownBlock2D: no attention
    assert 780e6 < sum(v.numel() for v in unet.parameters()) < 860e6


def test_the_unet_file_gives_tensors_only_and_must_keep_its_checksum(lip_settings, tmp_path):
    from enfoads.core.pipelines.lipsync import checked_state

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    hostile = tmp_path / "unet.pth"
    hostile.write_bytes(pickle.dumps({"conv_in.weight": Payload()}))
    with pytest.raises(ModelUnavailable, match="unet.pth"):
        checked_state(hostile, "")
    settings = lip_settings()
    path = settings.lipsync_model + "/musetalkV15/unet.pth"
    from pathlib import Path

    copy = tmp_path / "copy" / "unet.pth"
    copy.parent.mkdir()
    copy.write_bytes(Path(path).read_bytes())
    assert checked_state(copy, "")  # first use: its hash recorded beside it
    assert (copy.parent / "unet.pth.sha256").is_file()
    with open(copy, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelUnavailable, match="SHA-256"):
        checked_state(copy, "")
    with pytest.raises(ModelUnavailable, match="SHA-256"):
        checked_state(Path(path), "0" * 64)  # the setting's hash wins


def test_the_mouth_follows_the_voice_and_the_rest_is_the_base_animators(lip_settings):
    from dataclasses import replace

    from enfoads.core.studio import Studio

    with Studio(lip_settings()) as studio:
        speech = studio.pipelines["voice"].synthesize("Hola, mamá. Ahí está el café.")
        portrait = astronaut_rgb()
        animator, drive, face = studio.capabilities["avatar"].animate(
            portrait, speech.samples, speech.sample_rate, 25, animator="lipsync"
        )
        assert animator.name == "lipsync" and animator.base.name == "talking-photo"
        assert face.source == "cascade"  # no InsightFace: its licence is not accepted
        closed = replace(drive, mouth_open=np.zeros_like(drive.mouth_open))
        x0, y0, x1, y1 = animator.box
        middle = y0 + (y1 - y0) // 2
        loud = int(np.argmax(drive.mouth_open))
        quiet = int(np.argmin(drive.mouth_open[: drive.frames // 2]))
        mouths = []
        for index in (quiet, loud):
            made, base = animator.frame(index, drive), animator.base.frame(index, closed)
            assert np.array_equal(made[:middle], base[:middle])  # eyes, forehead, background
            assert np.array_equal(made[:, :x0], base[:, :x0])
            lower = (slice(middle + (y1 - y0) // 6, y1 - 4), slice(x0 + 8, x1 - 8))
            assert np.abs(made[lower].astype(int) - base[lower]).mean() > 2  # inpainted
            mouths.append(made[lower].astype(int))
        assert np.abs(mouths[0] - mouths[1]).mean() > 0.5  # another sound, another mouth


def test_a_lipsynced_avatar_video_renders_and_names_its_models(lip_settings):
    from enfoads.core.studio import Studio

    with Studio(lip_settings()) as studio:
        out = io.BytesIO()
        Image.fromarray(astronaut_rgb()).save(out, "PNG")
        avatar = studio.upload_asset(out.getvalue(), "presentadora.png")
        job = studio.render_video(
            script="Hola. Esta es nuestra oferta de hoy, solo por esta semana.",
            avatar_asset_id=avatar.id,
            animator="lipsync",
            size=240,
        )
        done = studio.wait_job(job.id, timeout=300)
        assert done.state.value == "completed", done.error
        video = next(a for a in map(studio.get_asset, done.result_asset_ids) if a.kind == "video")
        models = [row["model"] for row in video.meta["licences"]]
        assert "local:musetalk/musetalkV15" in models and "enfoads/talking-photo" in models
        assert "scikit-image/lbp-frontal-face" in models
        actions = studio.asset_provenance(video.id)["actions"]
        assert any("synthetic person" in a.get("description", "") for a in actions), actions
    # Without its weights, asked for by name: the job says which model to download.
    with Studio(lip_settings(lipsync_model="TMElyralab/MuseTalk")) as studio:
        out = io.BytesIO()
        Image.fromarray(astronaut_rgb()).save(out, "PNG")
        avatar = studio.upload_asset(out.getvalue(), "presentadora.png")
        with pytest.raises(ModelNotDownloaded, match="MuseTalk"):
            studio.capabilities["avatar"].lipsync.animator(None, np.zeros(10), 16000)
        job = studio.render_video(script="Hola.", avatar_asset_id=avatar.id, animator="lipsync")
        done = studio.wait_job(job.id, timeout=120)
        assert done.state.value == "failed" and "MuseTalk 1.5" in done.error
