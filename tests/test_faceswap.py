"""Face swap through the Studio, with InsightFace-shaped ONNX fixtures and a real photograph."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
from PIL import Image

from enfoads.core.errors import InvalidInput, ModelNotDownloaded, ModelUnavailable
from enfoads.core.pipelines.faceswap import ImageInput
from enfoads.testing.faces import FACE_BOX, astronaut_rgb, scaled_face_patch
from tests.helpers import read_tags


@pytest.fixture
def face_studio(media_settings):
    from enfoads.core.studio import Studio

    with Studio(media_settings()) as st:
        yield st


def png(pixels: np.ndarray, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(out, "PNG")
    return out.getvalue()


def two_faces() -> np.ndarray:
    """Two copies of the astronaut's head on a grey 640 × 400 card (left one at x=20)."""
    patch = scaled_face_patch()
    canvas = np.full((400, 640, 3), 200, np.uint8)
    h, w = patch.shape[:2]
    canvas[50 : 50 + h, 20 : 20 + w] = patch
    canvas[100 : 100 + h, 400 : 400 + w] = patch
    return canvas


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.abs(before.astype(int) - after.astype(int)).sum(axis=2) > 0


def test_swap_changes_only_the_face_and_keeps_size_mode_and_lineage(face_studio):
    swap = face_studio.pipelines["faceswap"]
    target = astronaut_rgb()
    source = (astronaut_rgb().astype(np.float32) * 0.8 + 20).astype(
        np.uint8
    )  # same face, other light
    result = swap.swap_image(
        ImageInput(data=png(source), name="me.png"),
        ImageInput(data=png(target, "RGBA"), name="ad.png"),
    )
    asset = face_studio.get_asset(result["asset_id"])
    assert asset.name == "face swap: me.png → ad.png"
    out = Image.open(face_studio.assets.file_path(asset))
    assert out.size == (512, 512) and out.mode == "RGBA"
    diff = changed(target, np.asarray(out.convert("RGB")))
    assert diff.sum() > 5000  # the face really changed
    x0, y0, x1, y1 = FACE_BOX
    w, h = x1 - x0, y1 - y0
    ys, xs = np.nonzero(diff)
    assert xs.min() >= x0 - 0.4 * w and xs.max() <= x1 + 0.4 * w
    assert ys.min() >= y0 - 0.4 * h and ys.max() <= y1 + 0.4 * h
    assert result["faces"]["target"][0]["box"] == list(FACE_BOX)
    assert result["faces"]["target"][0]["score"] > 0.9
    assert -1 <= result["similarity"][0]["after"] <= 1
    assert result["providers"] == ["CPUExecutionProvider"]
    # lineage: both uploads were stored (on success only) and are the result's parents
    parents = [face_studio.get_asset(a) for a in asset.parents]
    assert [p.name for p in parents] == ["me.png", "ad.png"]
    assert (
        asset.meta["commercial_use"] is False and "non-commercial" in result["licence"]["licence"]
    )
    # a real photo edited by a model: IPTC says composite, not made from scratch
    assert "compositeWithTrainedAlgorithmicMedia" in out.text["XML:com.adobe.xmp"]


@pytest.mark.parametrize(
    ("choice", "left", "right"), [(0, True, False), (1, False, True), ("all", True, True)]
)
def test_target_face_choice_left_to_right(face_studio, choice, left, right):
    target = two_faces()
    source = face_studio.upload_asset(png(astronaut_rgb()), "source.png")
    dest = face_studio.upload_asset(png(target), "two.png")
    result = face_studio.pipelines["faceswap"].swap_image(
        ImageInput(asset_id=source.id), ImageInput(asset_id=dest.id), target_face=choice
    )
    assert [f["index"] for f in result["faces"]["target"]] == [0, 1]
    assert result["faces"]["target"][0]["box"][0] < result["faces"]["target"][1]["box"][0]
    out = np.asarray(face_studio.assets.open_image(result["asset_id"]))
    diff = changed(target, out)
    assert diff[:, :320].any() == left and diff[:, 320:].any() == right
    assert face_studio.get_asset(result["asset_id"]).parents == (source.id, dest.id)


def test_face_swap_job_through_the_queue(face_studio):
    source = face_studio.upload_asset(png(astronaut_rgb()), "source.png")
    job = face_studio.swap_faces(source_asset_id=source.id, target_asset_id=source.id)
    done = face_studio.wait_job(job.id, timeout=60)
    assert done.state.value == "completed", done.error
    assert done.result_asset_ids and done.result["target_faces"] == [0]


def count(studio) -> int:
    return studio.list_assets().total


@pytest.mark.parametrize(
    ("source", "target", "options", "words"),
    [
        ("blank", "face", {}, ["No face", "source", "blank.png"]),
        ("face", "blank", {}, ["No face", "target", "blank.png"]),
        ("face", "two", {"target_face": 5}, ["target_face", "face 5", "there are 2"]),
        ("face", "face", {"source_face": "all"}, ["source_face", "all"]),
        ("corrupt", "face", {}, ["not a readable image"]),
    ],
)
def test_bad_input_names_the_problem_and_stores_nothing(
    face_studio, source, target, options, words
):
    from skimage import data

    files = {
        "face": png(astronaut_rgb()),
        "two": png(two_faces()),
        "blank": png(data.coffee()),
        "corrupt": b"\x89PNG\r\n\x1a\nnot really",
    }
    before = count(face_studio)
    with pytest.raises(InvalidInput) as info:
        face_studio.pipelines["faceswap"].swap_image(
            ImageInput(data=files[source], name=f"{source}.png"),
            ImageInput(data=files[target], name=f"{target}.png"),
            **options,
        )
    for word in words:
        assert word in info.value.message("en")
    assert count(face_studio) == before


def test_missing_models_are_named(tmp_path, face_models):
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    settings = load_settings(
        data_dir=tmp_path / "d",
        device="cpu",
        language="es",
        faceswap_swapper_model=str(face_models["swapper"]),
    )
    with Studio(settings) as st:
        with pytest.raises(ModelNotDownloaded) as info:
            st.pipelines["faceswap"].detect(ImageInput(data=png(astronaut_rgb())))
    es = info.value.message("es")
    assert "buffalo_l" in es and "no está descargado" in es and "Ajustes" in es


def test_swapper_sha256_is_checked(tmp_path, face_models):
    from enfoads.core.pipelines.faceswap import swapper_file
    from enfoads.core.settings import load_settings

    settings = load_settings(
        data_dir=tmp_path / "d",
        faceswap_swapper_model=str(face_models["swapper"]),
        faceswap_swapper_sha256="0" * 64,
    )
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        swapper_file(settings)


def write_wav(path, seconds: float, rate: int = 16000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def two_frame_kinds_clip(tmp_path, frames: int = 12):
    from enfoads.core import media

    wav = tmp_path / "tone.wav"
    write_wav(wav, 1.0)
    clip = tmp_path / "clip.mp4"
    with media.FrameWriter(clip, 512, 512, 12, audio=wav) as writer:
        for i in range(frames):
            frame = np.roll(astronaut_rgb(), i, axis=1) if i % 2 else astronaut_rgb()
            writer.write(frame)
    return clip


def test_video_swap_keeps_frames_fps_and_audio(face_studio, tmp_path):
    from enfoads.core import media

    frames = 12
    video = face_studio.upload_asset(
        two_frame_kinds_clip(tmp_path, frames).read_bytes(), "clip.mp4"
    )
    source = face_studio.upload_asset(png(astronaut_rgb()), "me.png")
    events = []
    face_studio.subscribe(lambda e: events.append(e.payload.get("progress")), "job_update")
    job = face_studio.swap_faces_video(source_asset_id=source.id, video_asset_id=video.id)
    done = face_studio.wait_job(job.id, timeout=120)
    assert done.state.value == "completed", done.error
    out = face_studio.assets.file_path(done.result_asset_ids[0])
    info = media.probe_streams(out)
    assert (info.video, info.width, info.height, info.fps) == ("h264", 512, 512, 12.0)
    assert info.audio == "aac"
    swapped = list(media.read_frames(out))
    assert len(swapped) == frames and done.result["frames_swapped"] == frames
    assert changed(astronaut_rgb(), swapped[0]).sum() > 5000
    progress = [p for p in events if p is not None]
    assert progress == sorted(progress) and progress[-1] == 100
    assert face_studio.get_asset(done.result_asset_ids[0]).parents == (source.id, video.id)
    # labelled as AI-generated, with InsightFace's non-commercial licence, in the MP4 itself
    tags = read_tags(out)
    assert tags["ai_generated"] == "true" and "insightface/inswapper_128" in tags["enfoads"]
    assert "non-commercial" in tags["copyright"]


def test_a_swapped_video_is_marked_as_ai_on_screen_and_in_its_credentials(face_studio, tmp_path):
    """On by default: "Contenido generado con IA" at the top left of every frame (off when
    asked); the MP4's C2PA manifest names the clip it edited as its parent."""
    from enfoads.core import media

    video = face_studio.upload_asset(two_frame_kinds_clip(tmp_path, 4).read_bytes(), "clip.mp4")
    source = face_studio.upload_asset(png(astronaut_rgb()), "me.png")
    corner = []
    for label in (True, False):
        job = face_studio.swap_faces_video(
            source_asset_id=source.id, video_asset_id=video.id, ai_label=label
        )
        done = face_studio.wait_job(job.id, timeout=120)
        assert done.state.value == "completed", done.error
        first = next(media.read_frames(face_studio.assets.file_path(done.result_asset_ids[0])))
        diff = np.abs(astronaut_rgb()[15:45, 15:250].astype(int) - first[15:45, 15:250])
        corner.append((diff.sum(axis=2) > 150).mean())  # more than the encoder's noise
    marked, plain = corner
    assert marked > 0.05 and plain < 0.01, corner  # text drawn there only when asked
    said = face_studio.asset_provenance(done.result_asset_ids[0])
    assert said["state"] == "trusted"
    assert said["source_type"] == "compositeWithTrainedAlgorithmicMedia"
    assert {"title": "clip.mp4", "relationship": "parentOf", "signed": False} in said["ingredients"]


def test_video_swap_on_threads_gives_the_frames_of_one_thread(face_studio, tmp_path, monkeypatch):
    """Frames are swapped on worker threads and written in order: the result is the same."""
    from enfoads.core import media

    clip = two_frame_kinds_clip(tmp_path)
    video = face_studio.upload_asset(clip.read_bytes(), "clip.mp4")
    source = face_studio.upload_asset(png(astronaut_rgb()), "me.png")
    outputs = []
    for workers in (1, 3):
        monkeypatch.setattr(media, "frame_workers", lambda limit=8, n=workers: n)
        job = face_studio.swap_faces_video(source_asset_id=source.id, video_asset_id=video.id)
        done = face_studio.wait_job(job.id, timeout=120)
        assert done.state.value == "completed", done.error
        outputs.append(
            list(media.read_frames(face_studio.assets.file_path(done.result_asset_ids[0])))
        )
    one, three = outputs
    assert len(one) == len(three) == 12
    assert all(np.array_equal(a, b) for a, b in zip(one, three))
    original = list(media.read_frames(clip))
    assert all(changed(o, s).sum() > 5000 for o, s in zip(original, three))  # every frame swapped


def test_upload_over_the_size_cap_is_refused(media_settings):
    from enfoads.core.errors import TooLarge
    from enfoads.core.studio import Studio

    with Studio(media_settings(max_upload_mb=0.05)) as st:
        with pytest.raises(TooLarge) as info:
            st.pipelines["faceswap"].swap_image(
                ImageInput(data=png(astronaut_rgb()), name="big.png"),
                ImageInput(data=png(astronaut_rgb()), name="t.png"),
            )
        assert "big.png" in info.value.message("en") and st.list_assets().total == 0


def test_a_video_over_the_length_cap_is_refused_before_any_work(media_settings, tmp_path):
    from enfoads.core.studio import Studio

    with Studio(media_settings(max_swap_video_s=0.5)) as st:
        video = st.upload_asset(two_frame_kinds_clip(tmp_path).read_bytes(), "anuncio.mp4")  # 1 s
        source = st.upload_asset(png(astronaut_rgb()), "me.png")
        with pytest.raises(InvalidInput) as info:
            st.swap_faces_video(source_asset_id=source.id, video_asset_id=video.id)
        assert "anuncio.mp4" in info.value.message("es") and "0.5 s" in info.value.message("es")
        assert st.list_jobs() == []


def test_cancelling_a_video_swap_stops_it_and_stores_nothing(face_studio, tmp_path):
    from enfoads.core import media

    clip = tmp_path / "long.mp4"
    with media.FrameWriter(clip, 512, 512, 12) as writer:
        for i in range(60):
            writer.write(np.roll(astronaut_rgb(), i, axis=1))
    video = face_studio.upload_asset(clip.read_bytes(), "long.mp4")
    source = face_studio.upload_asset(png(astronaut_rgb()), "me.png")
    before = face_studio.list_assets().total
    started: list[str] = []

    def cancel_once_swapping(event):  # subscribed first: no progress event can slip by
        if started and event.payload.get("id") == started[0] and 5 < event.payload["progress"] < 50:
            face_studio.cancel_job(started[0])

    face_studio.subscribe(cancel_once_swapping, "job_update")
    job = face_studio.swap_faces_video(source_asset_id=source.id, video_asset_id=video.id)
    started.append(job.id)
    done = face_studio.wait_job(job.id, timeout=120)
    assert done.state.value == "cancelled"
    assert face_studio.list_assets().total == before  # no partial video


@pytest.mark.slow
def test_full_size_stand_ins_weigh_what_the_real_files_do_and_swap(tmp_path, media_settings):
    """``build_face_models(size="full")`` (the T4 session's benchmark: the real files' memory
    on the GPU) loads through InsightFace's own router and swaps through the studio."""
    from enfoads.core.studio import Studio
    from enfoads.testing.faces import build_face_models

    models = build_face_models(tmp_path / "full", size="full")
    real_mb = {models["analysis"] / "w600k_r50.onnx": 174, models["swapper"]: 554}
    for path, mb in real_mb.items():
        assert abs(path.stat().st_size / 1e6 - mb) / mb < 0.05, (path.name, path.stat().st_size)
    settings = media_settings(
        faceswap_analysis_model=str(models["analysis"]),
        faceswap_swapper_model=str(models["swapper"]),
    )
    with Studio(settings) as st:
        photo = st.upload_asset(png(astronaut_rgb()), "astronaut.png")
        done = st.wait_job(
            st.swap_faces(source_asset_id=photo.id, target_asset_id=photo.id).id, 120
        )
        assert done.state.value == "completed", done.error
        before = astronaut_rgb()
        after = np.asarray(Image.open(st.assets.file_path(done.result_asset_ids[0])).convert("RGB"))
        x0, y0, x1, y1 = (int(v) for v in FACE_BOX)
        assert changed(before, after)[y0:y1, x0:x1].mean() > 0.5  # the face was replaced
