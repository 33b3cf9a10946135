"""LivePortrait for the talking avatar: its networks loaded from safetensors by the studio's own
loader (random-weight stand-ins with the published modules and layout), driven by the joe
voice on the astronaut photo, pasted back without a seam, and chosen per video."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from enfoads.core.errors import ModelUnavailable
from enfoads.core.pipelines.avatar import DriveSignal
from enfoads.testing.faces import astronaut_rgb

SCRIPT = "Fresh coffee, every morning."


@pytest.fixture(scope="module")
def lp_folder(tmp_path_factory):
    from enfoads.testing.liveportrait import build_liveportrait

    return build_liveportrait(tmp_path_factory.mktemp("liveportrait") / "lp")


@pytest.fixture
def lp_studio(media_settings, lp_folder):
    from enfoads.core.studio import Studio

    settings = media_settings(
        faceswap_analysis_model="buffalo_l", liveportrait_model=str(lp_folder)
    )
    with Studio(settings) as st:
        yield st


def test_the_published_layout_loads_through_the_studios_loader(lp_folder, tmp_path):
    import torch

    from enfoads.core.pipelines.liveportrait import FILES, load_nets
    from enfoads.core.pipelines.liveportrait_nets import DEFAULT_CONFIG, LivePortraitNets

    nets = load_nets(str(lp_folder), tmp_path)
    assert sorted(p.stem for p in lp_folder.glob("*.safetensors")) == sorted(FILES)
    weight = nets.lip.mlp[0].weight
    assert weight.shape == (128, 65) and weight.abs().sum() > 0  # the file's values, not an init
    # The published configuration builds the published networks (parameter counts from the
    # real checkpoints' sizes: warping 45 M, decoder 55 M, motion 28 M).
    full = LivePortraitNets(DEFAULT_CONFIG)
    millions = {
        n: sum(p.numel() for p in getattr(full, n).parameters()) / 1e6
        for n in ("appearance", "motion", "warping", "decoder")
    }
    assert 0.5 < millions["appearance"] < 1.5 and 25 < millions["motion"] < 32
    assert 40 < millions["warping"] < 50 and 50 < millions["decoder"] < 60, millions
    # A damaged file is a clear model error, not a crash; a pickle is never read.
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in lp_folder.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "warping_module.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelUnavailable, match="warping_module"):
        load_nets(str(broken), tmp_path)
    (broken / "warping_module.safetensors").unlink()
    torch.save({}, broken / "warping_module.pth")
    with pytest.raises(ModelUnavailable, match="warping_module.safetensors not found"):
        load_nets(str(broken), tmp_path)


def frames_for(studio, drive: DriveSignal) -> tuple[list[np.ndarray], object]:
    portrait = astronaut_rgb()
    face = studio.capabilities["avatar"].locate(portrait, "astronaut")
    animator = studio.capabilities["liveportrait"].animator()
    animator.prepare(portrait, face)
    return [animator.frame(i, drive) for i in range(drive.frames)], animator


def test_the_voice_drives_the_face_and_the_photo_outside_it_stays(lp_studio):
    from enfoads.core.pipelines.avatar import drive_from_audio

    speech = lp_studio.pipelines["voice"].synthesize(SCRIPT)
    fps = 25
    voiced = drive_from_audio(speech.samples, speech.sample_rate, fps)
    n = voiced.frames
    zeros = np.zeros(n, np.float32)
    mouth_only = DriveSignal(fps, voiced.mouth_open, zeros, np.zeros((n, 3)))
    still = DriveSignal(fps, zeros, zeros, np.zeros((n, 3)))
    frames, animator = frames_for(lp_studio, mouth_only)
    rest, _ = frames_for(lp_studio, still)
    portrait = astronaut_rgb()
    x0, y0, side = animator.box
    outside = np.ones(portrait.shape[:2], bool)
    outside[max(0, y0) : y0 + side, max(0, x0) : x0 + side] = False
    # The seam: outside the crop the photo is untouched, in every frame.
    assert all(np.array_equal(f[outside], portrait[outside]) for f in frames)
    # The face moves with the voice: how far each frame is from the closed-mouth one follows
    # the mouth signal the speech gives.
    energy = np.array([np.abs(f.astype(float) - r).mean() for f, r in zip(frames, rest)])
    assert voiced.mouth_open.std() > 0.1
    r = np.corrcoef(energy, voiced.mouth_open)[0, 1]
    assert r > 0.8, r
    # Blinks: only the frames where the eyes close differ from the still face.
    blink = np.zeros(n, np.float32)
    blink[5:9] = [0.5, 1.0, 1.0, 0.5]
    blinking, _ = frames_for(lp_studio, DriveSignal(fps, zeros, blink, np.zeros((n, 3))))
    moved = [not np.array_equal(b, s) for b, s in zip(blinking, rest)]
    assert moved == [bool(v) for v in blink]


def streams(studio, job) -> tuple:
    """Codecs, size and fps of a render, and whether its frames span the job's own timeline
    (Piper's voice varies a little from one synthesis to the next: each job has its own)."""
    from enfoads.core import media

    path = studio.assets.file_path(job.result["asset_id"])
    info = media.probe_streams(path)
    frames = sum(1 for _ in media.read_frames(path))
    on_time = abs(frames - job.result["duration_s"] * info.fps) <= 1
    return info.video, info.audio, info.width, info.height, info.fps, on_time


@pytest.mark.slow
def test_a_video_picks_liveportrait_and_keeps_the_classic_ones_streams(lp_studio):
    from tests.helpers import read_tags

    buf = io.BytesIO()
    Image.fromarray(astronaut_rgb()).save(buf, "PNG")
    avatar = lp_studio.upload_asset(buf.getvalue(), "astronaut.png", "avatar")
    common = dict(
        script=SCRIPT, avatar_asset_id=avatar.id, size=144, subtitle_style={"enabled": False}
    )
    # On this CPU "auto" is the classic animator; LivePortrait is asked for by name.
    assert lp_studio.options("avatar")["default"] == "classic"
    jobs = {a: lp_studio.render_video(**common, animator=a) for a in ("auto", "liveportrait")}
    done = {a: lp_studio.wait_job(j.id, 600) for a, j in jobs.items()}
    for animator, job in done.items():
        assert job.state.value == "completed", (animator, job.error)
    videos = {a: j.result_asset_ids[0] for a, j in done.items()}
    assert streams(lp_studio, done["auto"]) == streams(lp_studio, done["liveportrait"])
    assert streams(lp_studio, done["auto"])[-1] is True
    models = {a: lp_studio.get_asset(v).model_ids for a, v in videos.items()}
    assert any("LivePortrait" in m for m in models["liveportrait"]), models
    assert "enfoads/talking-photo" in models["auto"] and not any(
        "LivePortrait" in m for m in models["auto"]
    )
    tags = read_tags(lp_studio.assets.file_path(videos["liveportrait"]))
    assert tags.get("ai_generated") == "true" and "LivePortrait" in tags.get("enfoads", "")


def test_without_its_models_the_classic_animator_stands_in(media_settings, tmp_path):
    from enfoads.core.studio import Studio

    settings = media_settings(
        faceswap_analysis_model="buffalo_l", liveportrait_model=str(tmp_path / "none")
    )
    with Studio(settings) as st:
        assert st.options("avatar")["default"] == "classic"
        row = next(m for m in st.model_inventory() if m["key"] == "liveportrait")
        assert row["on_disk"] is False and row["licence"].startswith("MIT")
        buf = io.BytesIO()
        Image.fromarray(astronaut_rgb()).save(buf, "PNG")
        avatar = st.upload_asset(buf.getvalue(), "astronaut.png", "avatar")
        job = st.render_video(
            script=SCRIPT, avatar_asset_id=avatar.id, size=144, animator="liveportrait"
        )
        failed = st.wait_job(job.id, 300)
        assert failed.state.value == "failed" and "LivePortrait" in failed.error, failed.error
        # the classic one renders with nothing to download
        job = st.render_video(script=SCRIPT, avatar_asset_id=avatar.id, size=144,
                              subtitle_style={"enabled": False})  # fmt: skip
        assert st.wait_job(job.id, 300).state.value == "completed"


def test_auto_falls_back_when_liveportrait_does_not_load(
    media_settings, lp_folder, tmp_path, monkeypatch
):
    from enfoads.core.pipelines.liveportrait import LivePortraitCapability
    from enfoads.core.studio import Studio

    broken = tmp_path / "broken"
    broken.mkdir()
    for f in lp_folder.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "spade_generator.safetensors").write_bytes(b"not a safetensors file")
    monkeypatch.setattr(LivePortraitCapability, "usable", lambda self: True)  # as on a GPU
    settings = media_settings(faceswap_analysis_model="buffalo_l", liveportrait_model=str(broken))
    rate = 22050
    samples = (0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)).astype(np.float32)
    with Studio(settings) as st:
        avatar = st.capabilities["avatar"]
        assert avatar.choose("auto") == "liveportrait"
        moving, drive, _face = avatar.animate(astronaut_rgb(), samples, rate, 25, animator="auto")
        assert moving.name == "talking-photo" and drive.frames == 25
        with pytest.raises(ModelUnavailable, match="spade_generator"):
            avatar.animate(astronaut_rgb(), samples, rate, 25, animator="liveportrait")


@pytest.mark.gpu
def test_on_a_gpu_auto_picks_liveportrait_and_the_model_manager_holds_it(lp_folder, tmp_path):
    import torch

    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    settings = load_settings(
        data_dir=tmp_path / "data", device="auto", liveportrait_model=str(lp_folder)
    )
    with Studio(settings) as st:
        avatar = st.capabilities["avatar"]
        assert st.options("avatar")["default"] == "liveportrait"
        rate = 22050
        t = np.arange(2 * rate) / rate
        samples = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(
            np.float32
        )
        moving, drive, _face = avatar.animate(astronaut_rgb(), samples, rate, 25, animator="auto")
        assert moving.name == "liveportrait"
        frames = [moving.frame(i, drive) for i in range(drive.frames)]
        stats = st.gpu_status()
        held = {m["name"]: m for m in stats["models"]}
        assert held["liveportrait"]["where"] == "cuda"
        portrait = astronaut_rgb()
        x0, y0, side = moving.box
        outside = np.ones(portrait.shape[:2], bool)
        outside[max(0, y0) : y0 + side, max(0, x0) : x0 + side] = False
        assert all(np.array_equal(f[outside], portrait[outside]) for f in frames)
        assert len({f.tobytes() for f in frames}) > drive.frames // 2  # the face moves
