"""Voice, subtitles, talking avatar and video ads, with the real offline voice and whisper."""

from __future__ import annotations

import contextlib
import io
import re
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from enfoads.core.errors import InvalidInput, NotFound
from enfoads.testing.faces import astronaut_rgb
from tests.helpers import read_tags

SCRIPT = "Fresh coffee, every morning. Try our new espresso blend today! Visit us downtown."


@pytest.fixture
def av_studio(media_settings):
    """Haar-cascade faces (no InsightFace pack), the joe voice and whisper tiny.en."""
    from enfoads.core.studio import Studio

    with Studio(media_settings(faceswap_analysis_model="buffalo_l")) as st:
        yield st


def png(pixels: np.ndarray, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(out, "PNG")
    return out.getvalue()


# -- voice ------------------------------------------------------------------------------
def test_joe_speaks_the_script_as_a_valid_wav(av_studio):
    result = av_studio.speak(SCRIPT)
    data = av_studio.assets.read_bytes(result["asset_id"])
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)
        seconds = wav.getnframes() / wav.getframerate()
    words = len(SCRIPT.split())
    assert 1.5 <= words / seconds <= 4.5  # plausible speech rate (words per second)
    assert result["engine"] == "piper" and result["voice"] == "en_US-joe-medium"
    slow = av_studio.pipelines["voice"].synthesize(SCRIPT, rate=0.75)
    assert slow.duration_s > seconds * 1.15
    # three sentences with pauses between them
    speech = av_studio.pipelines["voice"].synthesize(SCRIPT, pause_s=0.5)
    spans = speech.sentences
    assert len(spans) == 3 and all(b[1] - a[2] >= 0.49 for a, b in zip(spans, spans[1:]))


def test_voice_preview_and_catalogue(av_studio):
    preview = av_studio.speak("", "en_US-joe-medium", preview=True)
    assert 1 < preview["duration_s"] < 6
    voices = {v["key"]: v for v in av_studio.voices()}
    assert {"es_ES-davefx-medium", "es_MX-claude-high"} <= set(voices)
    assert voices["en_US-joe-medium"]["available"] and not voices["es_MX-claude-high"]["available"]


@pytest.mark.parametrize(
    ("text", "voice", "language", "words"),
    [
        ("", None, None, ["script", "empty"]),
        ("x" * 2001, None, None, ["script", "too long", "2000"]),
        ("hola", "es_XX-nobody-low", None, ["voice", "es_XX-nobody-low"]),
        ("hola", "en_US-joe-medium", "es", ["'Joe · United States", "does not speak"]),
        ("hola", None, "fr", ["language", "fr"]),
    ],
)
def test_voice_bad_input(av_studio, text, voice, language, words):
    with pytest.raises(InvalidInput) as info:
        av_studio.pipelines["voice"].synthesize(text, voice, language=language)
    for word in words:
        assert word in info.value.message("en")


def test_a_missing_voice_fails_at_once_and_says_how_to_get_it(av_studio, monkeypatch):
    """Offline, a voice that is not on disk fails within a second (no 23 s hub timeout), in
    the user's language, naming the voice, Settings and the voices that are there; espeak-ng
    never speaks unless the settings allow it."""
    import time

    from enfoads.core.errors import VoiceNotDownloaded
    from enfoads.core.pipelines import voice as voice_mod

    started = time.monotonic()
    with pytest.raises(VoiceNotDownloaded) as info:
        av_studio.pipelines["voice"].synthesize("Hola a todos.", "es_ES-davefx-medium")
    assert time.monotonic() - started < 1.0
    es, en = info.value.message("es"), info.value.message("en")
    # the voices as the Video Studio's dropdown names them, never by their Piper keys
    assert "'Davefx · España · calidad media'" in es and "Ajustes" in es
    assert "Joe · Estados Unidos · calidad media" in es and "en_US-joe" not in es
    assert "Settings" in en and "not downloaded" in en and "Davefx · Spain" in en
    # the same through a job: its record holds the message
    still = av_studio.upload_asset(png(np.full((64, 64, 3), 90, np.uint8)), "fondo.png")
    job = av_studio.render_multi_scene(
        voice="es_ES-davefx-medium",
        scenes=[{"kind": "image", "asset_id": still.id, "script": "Hola a todos."}],
    )
    done = av_studio.wait_job(job.id, 60)
    assert done.state.value == "failed" and "Davefx · Spain" in done.error
    assert "Davefx · España" in done.localized("es").error  # stored with its key: any language
    # with the fallback chosen, espeak-ng speaks, and the result says so
    if voice_mod.espeak_exe() is not None:
        monkeypatch.setattr(
            av_studio,
            "settings",
            av_studio.settings.model_copy(update={"voice_fallback_espeak": True}),
        )
        speech = av_studio.pipelines["voice"].synthesize(
            "Hola a todos. Bienvenidos.", "es_ES-davefx-medium"
        )
        assert speech.engine == "espeak-ng" and speech.duration_s > 1


def test_offline_is_detected_without_waiting_for_the_hub(monkeypatch):
    """Without HF_HUB_OFFLINE, an unreachable hub answers within the probe's timeout."""
    import time

    from enfoads.core.pipelines import base

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    base._PROBE.clear()
    started = time.monotonic()
    assert base.hub_reachable(timeout_s=1.0) is False
    assert time.monotonic() - started < 1.5
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert base.hub_reachable() is False


# -- subtitles --------------------------------------------------------------------------
def cue_times(text: str) -> list[tuple[float, float, str]]:
    def secs(stamp: str) -> float:
        h, m, s = stamp.replace(",", ".").split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    out = []
    for block in text.strip().split("\n\n"):
        lines = block.strip().splitlines()
        if lines[0] == "WEBVTT":
            continue
        arrow = next(i for i, line in enumerate(lines) if "-->" in line)
        a, b = lines[arrow].split(" --> ")
        out.append((secs(a), secs(b), " ".join(lines[arrow + 1 :])))
    return out


def test_subtitles_show_exactly_the_script_on_whisper_timings(av_studio):
    from enfoads.core.pipelines.subtitles import CueRules, to_srt, to_vtt

    speech = av_studio.pipelines["voice"].synthesize(SCRIPT)
    subs = av_studio.pipelines["subtitles"]
    heard = subs.transcribe_words(speech.samples, speech.sample_rate, "en")
    assert len(heard) >= 10
    rules = CueRules(max_chars=20)
    cues = subs.subtitles(speech.samples, speech.sample_rate, SCRIPT, language="en", rules=rules)
    srt, vtt = to_srt(cues), to_vtt(cues)
    for parsed in (cue_times(srt), cue_times(vtt)):
        assert " ".join(text for _, _, text in parsed) == SCRIPT  # exactly the script
    starts = [w.start for w in heard]
    ends = [w.end for w in heard]
    for cue in cues:
        assert min(abs(cue.start - s) for s in starts) <= 0.3
        assert (
            cue.end - cue.start >= rules.min_duration - 1e-6
            or min(abs(cue.end - e) for e in ends) <= 0.3
        )
        assert len(cue.lines) <= rules.max_lines
        assert all(len(line) <= rules.max_chars for line in cue.lines)
        assert len(cue.words) > 1  # no orphan word alone in a cue
        assert cue.end - cue.start <= rules.max_duration
    assert all(a.end <= b.start + 1e-6 for a, b in zip(cues, cues[1:]))
    karaoke = to_vtt(cues, karaoke=True)
    assert re.search(r"<00:00:\d\d\.\d{3}>\w", karaoke)


def test_alignment_keeps_script_spelling_when_whisper_mishears():
    from enfoads.core.pipelines.subtitles import Word, align_script

    heard = [
        Word("Fresh", 0.0, 0.3),
        Word("cofee", 0.3, 0.7),
        Word("every", 0.7, 1.0),
        Word("mourning.", 1.0, 1.5),
    ]
    words = align_script("Fresh coffee, every morning at Café Luna.", heard, 3.0)
    assert [w.text for w in words] == "Fresh coffee, every morning at Café Luna.".split()
    assert words[1].start == pytest.approx(0.3) and words[3].start == pytest.approx(1.0)
    assert 1.5 <= words[4].start < words[5].start < words[6].start < 3.0  # shared by length


# -- avatar -----------------------------------------------------------------------------
def test_avatar_mouth_follows_the_voice_and_the_background_stays(av_studio):
    from enfoads.core.pipelines import avatar

    speech = av_studio.pipelines["voice"].synthesize(SCRIPT)
    portrait = astronaut_rgb()
    fps = 25
    animator, drive, face = av_studio.capabilities["avatar"].animate(
        portrait, speech.samples, speech.sample_rate, fps
    )
    frames = list(avatar.render_frames(animator, drive))
    assert len(frames) == round(speech.duration_s * fps)
    assert face.source == "cascade"
    mx, my = (int(v) for v in face.mouth)
    half = int(face.mouth_width * 0.6)
    mouth = np.stack([f[my - 5 : my + half, mx - half : mx + half].astype(float) for f in frames])
    change = np.abs(mouth - portrait[my - 5 : my + half, mx - half : mx + half]).mean(
        axis=(1, 2, 3)
    )
    hop = speech.sample_rate / fps
    energy = np.array(
        [
            np.sqrt(np.mean(speech.samples[int(i * hop) : int((i + 1) * hop)] ** 2))
            for i in range(len(frames))
        ]
    )
    assert np.corrcoef(change, energy)[0, 1] > 0.5
    assert change[energy < 1e-3].mean() < change[energy > np.percentile(energy, 60)].mean() / 3
    far = (slice(400, 512), slice(0, 120))  # the flag and the suit, far from the face
    assert all(np.array_equal(f[far], portrait[far]) for f in frames)
    # Blinks: with the head and mouth held still, the eyes change exactly when the lids close.
    from dataclasses import replace

    still = replace(
        drive, head=np.zeros_like(drive.head), mouth_open=np.zeros_like(drive.mouth_open)
    )
    ex, ey = (int(v) for v in face.left_eye)
    eye = (slice(ey - 3, ey + 4), slice(ex - 6, ex + 7))
    eye_change = np.array(
        [
            np.abs(animator.frame(i, still)[eye].astype(int) - portrait[eye]).mean()
            for i in range(still.frames)
        ]
    )
    assert (still.blink > 0.5).any()
    assert eye_change[still.blink > 0.5].min() > 10 and eye_change[still.blink == 0].max() == 0


def test_the_jaw_opens_under_the_teeth_and_the_upper_lip_stays():
    """On a smile that shows the upper teeth, the mouth opens below them: the rows above the
    line stay as in the photo, a dark lens opens under it, widest in the middle."""
    from enfoads.core.pipelines import avatar

    portrait = astronaut_rgb()
    face = avatar.cascade_face(portrait)
    mx, my = (int(round(v)) for v in face.mouth)
    assert 146 <= my <= 150  # under the teeth (rows 144-148), not across them
    animator = avatar.TalkingPhotoAnimator()
    animator.prepare(portrait, face)
    still = np.zeros((2, 3), np.float32)
    drive = avatar.DriveSignal(25, np.array([0.0, 1.0], np.float32), np.zeros(2, np.float32), still)
    closed, opened = animator.frame(0, drive), animator.frame(1, drive)
    assert np.array_equal(closed, portrait)
    upper = (slice(my - 8, my), slice(mx - 15, mx + 16))
    assert np.array_equal(opened[upper], portrait[upper])
    gap = opened[my + 1 : my + 5, mx - 4 : mx + 5].astype(float).mean()
    assert gap < 80 < portrait[my + 1 : my + 5, mx - 4 : mx + 5].astype(float).mean()
    height = [
        int((opened[my : my + 15, x].astype(int).sum(axis=1) < 250).sum())
        for x in (mx - 18, mx - 9, mx)
    ]
    assert height[0] < height[1] < height[2]  # a lens: closed towards the corners


def test_use_as_avatar_needs_a_face(av_studio):
    from skimage import data

    photo = av_studio.upload_asset(png(astronaut_rgb()), "me.png")
    coffee = av_studio.upload_asset(png(data.coffee()), "coffee.png")
    assert "avatar" in av_studio.use_as_avatar(photo.id).tags
    with pytest.raises(InvalidInput, match="No face"):
        av_studio.use_as_avatar(coffee.id)
    assert [a.id for a in av_studio.list_avatars().items] == [photo.id]


# -- video ------------------------------------------------------------------------------
SERIF = "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"  # fonts-dejavu-core (make test)


def tone_wav(seconds: float = 3.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.4 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def scene_assets(studio):
    avatar = studio.upload_asset(png(astronaut_rgb()), "presenter.png", kind="avatar")
    product = studio.upload_asset(
        png(np.asarray(Image.open(io.BytesIO(png(astronaut_rgb()))).resize((640, 400)))),
        "product.png",
    )
    music = studio.upload_asset(tone_wav(), "music.wav", kind="audio")
    logo = Image.new("RGBA", (120, 60), (255, 255, 255, 0))
    logo.paste((220, 20, 60, 255), (10, 10, 110, 50))
    out = io.BytesIO()
    logo.save(out, "PNG")
    logo_asset = studio.upload_asset(out.getvalue(), "logo.png", kind="logo")
    return avatar, product, music, logo_asset


def test_two_scene_render_with_music_logo_and_subtitles(av_studio):
    from enfoads.core import media

    avatar, product, music, logo = scene_assets(av_studio)
    font = av_studio.upload_asset(Path(SERIF).read_bytes(), "Marca.ttf")
    updates = []
    av_studio.subscribe(
        lambda e: updates.append((e.payload["progress"], e.payload["stage"])), "job_update"
    )
    job = av_studio.render_multi_scene(
        scenes=[
            {"kind": "avatar", "asset_id": avatar.id, "script": "Fresh coffee, every morning."},
            {
                "kind": "image",
                "asset_id": product.id,
                "script": "Try our new espresso blend!",
                "transition": "crossfade",
                "motion": "pan_left",
                "duration": 3.0,
            },
        ],
        aspect="9:16",
        size=360,
        music_asset_id=music.id,
        logo_asset_id=logo.id,
        cta="Visit us downtown",
        subtitle_style={"karaoke": True, "position": "bottom", "font_asset_id": font.id},
    )
    done = av_studio.wait_job(job.id, timeout=300)
    assert done.state.value == "completed", done.error
    video = av_studio.get_asset(done.result["asset_id"])
    info = media.probe_streams(av_studio.assets.file_path(video))
    assert (info.video, info.audio, info.width, info.height, info.fps) == (
        "h264",
        "aac",
        360,
        640,
        25.0,
    )
    frames = list(media.read_frames(av_studio.assets.file_path(video)))
    assert abs(len(frames) - done.result["duration_s"] * 25) <= 1
    assert abs(info.duration_s - done.result["duration_s"]) <= 1 / 25 + 0.05
    assert done.result["duration_s"] >= 3.0 + 2.5  # the image scene's 3 s and the end card
    # progress arrived in order, through the seed's stages
    progress = [p for p, _ in updates]
    assert progress == sorted(progress) and progress[-1] == 100
    stages = " | ".join(s for _, s in updates)
    for stage in (
        "Generating the voice",
        "Animating the face",
        "Generating subtitles",
        "Rendering the video",
    ):
        assert stage in stages
    assert 30 in progress and 70 in progress
    # assets with lineage: video from its inputs; voice-over, SRT and VTT from the video
    assert set(video.parents) == {avatar.id, product.id, music.id, logo.id, font.id}
    kinds = sorted(av_studio.get_asset(a).ext for a in done.result_asset_ids)
    assert kinds == ["mp4", "srt", "vtt", "wav"]
    srt = av_studio.assets.read_bytes(done.result_asset_ids[2]).decode()
    assert "Fresh coffee" in srt and "espresso" in srt
    assert video.has_thumbnail
    # the logo sits inside the 9:16 safe zone (top right: below Reels' 14 %, left of TikTok's
    # 15 % rail), drawn in its red
    first = frames[5]
    x0, x1, y0 = int(360 * (1 - 0.15)) - int(360 * 0.16), int(360 * (1 - 0.15)), int(640 * 0.14)
    patch = first[y0 + 12 : y0 + 20, x0 + 10 : x1 - 10].astype(int)
    assert patch[..., 0].mean() > 150 and patch[..., 1].mean() < 110
    # lineage names the voice and engine that spoke, and what else made the video
    assert list(video.model_ids) == [
        "piper/en_US-joe-medium",
        "faster-whisper/" + Path(av_studio.settings.subtitle_model).name,
        "enfoads/talking-photo",
        "scikit-image/lbp-frontal-face",  # the face finder (InsightFace's pack is not here)
    ]
    assert video.meta["voices"] == [{"voice": "en_US-joe-medium", "engine": "piper"}]
    assert done.result["voices"] == video.meta["voices"]
    # the MP4 says what it is, as ffmpeg/ffprobe read it
    tags = read_tags(av_studio.assets.file_path(video))
    assert tags["ai_generated"] == "true" and tags["comment"].startswith("AI-generated with")
    assert "piper/en_US-joe-medium" in tags["enfoads"] and "Fresh coffee" in tags["comment"]
    # ... and carries its own vault record, for a re-index after a lost database
    from enfoads.core.assets import embedded_record

    record = embedded_record(av_studio.assets.file_path(video), "mp4")
    assert record["asset_id"] == video.id and record["job_id"] == done.id
    assert record["prompt"] == video.prompt and record["ai_generated"] is True
    # the voice-over WAV is the voice alone: silent where only the music plays
    from enfoads.core.pipelines.compose import MIX_RATE
    from enfoads.core.pipelines.voice import read_wav

    wav_id = next(a for a in done.result_asset_ids if av_studio.get_asset(a).ext == "wav")
    stem, rate = read_wav(av_studio.assets.read_bytes(wav_id))
    assert rate == MIX_RATE
    lead = stem[: int(0.15 * rate)]  # before the voice starts: the music alone in the mix
    assert np.abs(lead).max() < 1e-3
    assert np.abs(stem).max() > 0.05


def test_single_render_and_cancel_leaves_no_asset(av_studio):
    avatar, *_ = scene_assets(av_studio)
    before = av_studio.list_assets().total
    job = av_studio.render_video(script=SCRIPT, avatar_asset_id=avatar.id, size=720)
    seen = []

    def cancel_when_rendering(event):
        if event.payload["id"] == job.id and "Rendering" in event.payload["stage"] and not seen:
            seen.append(1)
            av_studio.cancel_job(job.id)

    av_studio.subscribe(cancel_when_rendering, "job_update")
    done = av_studio.wait_job(job.id, timeout=300)
    assert done.state.value == "cancelled" and seen
    assert av_studio.list_assets().total == before


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"script": "", "avatar_asset_id": "AVATAR"}, InvalidInput, ["script", "empty"]),
        ({"script": "x" * 2001, "avatar_asset_id": "AVATAR"}, InvalidInput, ["too long"]),
        ({"script": "Hi.", "avatar_asset_id": "ava_nope"}, NotFound, ["ava_nope"]),
        (
            {"script": "Hi.", "avatar_asset_id": "AVATAR", "voice": "xx"},
            InvalidInput,
            ["voice", "xx"],
        ),
        ({"script": "Hi.", "avatar_asset_id": "AVATAR", "aspect": "2:1"}, InvalidInput, ["aspect"]),
    ],
)
def test_render_bad_input(av_studio, params, error, words):
    avatar, *_ = scene_assets(av_studio)
    params = {k: (avatar.id if v == "AVATAR" else v) for k, v in params.items()}
    with pytest.raises(error) as info:
        av_studio.render_video(**params)
    for word in words:
        assert word in info.value.message("en")
    assert av_studio.list_jobs() == []


def test_multi_scene_bad_lists(av_studio):
    with pytest.raises(InvalidInput, match="scenes"):
        av_studio.render_multi_scene(scenes=[])
    avatar, *_ = scene_assets(av_studio)
    many = [{"kind": "image", "asset_id": avatar.id, "script": "Hi."}] * 13
    with pytest.raises(InvalidInput, match="13 items; the limit is 12"):
        av_studio.render_multi_scene(scenes=many)


def test_faceless_avatar_fails_the_job_clearly(av_studio):
    from skimage import data

    coffee = av_studio.upload_asset(png(data.coffee()), "coffee.png")
    before = av_studio.list_assets().total
    job = av_studio.render_video(script="Hello there.", avatar_asset_id=coffee.id, size=360)
    done = av_studio.wait_job(job.id, timeout=120)
    assert done.state.value == "failed" and "No face" in done.error and coffee.id in done.error
    assert av_studio.list_assets().total == before


def test_parallel_composition_gives_the_same_frames(av_studio):
    """Frames are composed on worker threads; the result must not depend on their number."""
    from enfoads.core.i18n import t
    from enfoads.core.pipelines import compose
    from enfoads.core.pipelines.video import Overlay, RenderRequest

    class Ctx:
        job_id, kind, lang = "test", "render_multi_scene", "en"

        def progress(self, *_a):
            pass

        def check_cancelled(self):
            pass

        def t(self, key, **params):
            return t(key, "en", **params)

        def watching_downloads(self, *_args, **_kwargs):
            return contextlib.nullcontext()

    avatar, product, _music, logo = scene_assets(av_studio)
    video = av_studio.pipelines["video"]
    request = video.validate(
        RenderRequest.from_params(
            {
                "scenes": [
                    {"kind": "avatar", "asset_id": avatar.id, "script": "Fresh coffee."},
                    {
                        "kind": "image",
                        "asset_id": product.id,
                        "script": "Try it today!",
                        "transition": "crossfade",
                    },
                ],
                "size": 240,
                "logo_asset_id": logo.id,
                "cta": "Visit us",
            }
        )
    )
    timeline, cues = video.prepare(request, Ctx())
    size = compose.frame_size(request.aspect, request.size)
    fps = av_studio.settings.video_fps
    total = int(round((timeline[-1].end + 2.5) * fps))
    overlay = Overlay(av_studio, request, size, cues, timeline[-1].end, fps)
    one = list(video.frames(timeline, overlay, fps, total, size, workers=1))
    four = list(video.frames(timeline, overlay, fps, total, size, workers=4))
    assert len(one) == len(four) == total
    assert all(np.array_equal(a, b) for a, b in zip(one, four))


def test_a_video_clip_scene_and_faststart(av_studio, tmp_path):
    from enfoads.core import media

    clip = tmp_path / "clip.mp4"
    with media.FrameWriter(clip, 320, 240, 10) as writer:
        for i in range(15):  # 1.5 s of a moving gradient
            frame = np.zeros((240, 320, 3), np.uint8)
            frame[:, :, 0] = (np.arange(320) + 10 * i) % 256
            writer.write(frame)
    video = av_studio.upload_asset(clip.read_bytes(), "clip.mp4")
    job = av_studio.render_multi_scene(
        scenes=[
            {"kind": "video", "asset_id": video.id, "script": "Look at this.", "duration": 2.0}
        ],
        aspect="16:9",
        size=180,
    )
    done = av_studio.wait_job(job.id, timeout=120)
    assert done.state.value == "completed", done.error
    path = av_studio.assets.file_path(done.result["asset_id"])
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: playable while downloading
    frames = list(media.read_frames(path))
    assert frames[0].shape == (180, 320, 3)
    assert not np.array_equal(frames[0], frames[10])  # the clip plays, not a still


def test_music_is_ducked_under_the_voice():
    from enfoads.core.pipelines.compose import MIX_RATE, mix

    rate = MIX_RATE
    voice = np.zeros(rate * 4, np.float32)
    voice[rate : 2 * rate] = 0.5 * np.sin(np.arange(rate) * 2 * np.pi * 200 / rate)
    music = 0.5 * np.sin(np.arange(rate) * 2 * np.pi * 440 / rate).astype(np.float32)
    out = mix(voice, music, music_volume=0.4, ducked_volume=0.1)
    bed = out - voice
    loud = np.abs(bed[int(0.2 * rate) : int(0.8 * rate)]).max()  # before the voice
    ducked = np.abs(bed[int(1.5 * rate) : int(1.9 * rate)]).max()  # under the voice
    assert loud == pytest.approx(0.4, rel=0.05) and ducked < 0.15
    assert np.abs(bed[-100:]).max() < 0.01  # faded out at the end


def test_a_long_ad_is_mixed_in_blocks_never_whole_in_memory(tmp_path):
    """A 300 s ad (the longest allowed) with music: the mix streams into its WAV block by
    block, the same samples as the whole-array mix, with a few blocks' memory on top of the
    voice and music it is given (the whole mix was built several times over: +400 MB)."""
    import tracemalloc
    import wave

    from enfoads.core.pipelines.compose import MIX_RATE, mix, mix_blocks, write_wav

    rate = MIX_RATE
    rng = np.random.default_rng(0)
    short = (0.3 * rng.standard_normal(rate * 25)).astype(np.float32)
    short[: rate * 5] = 0  # silence, then speech: the ducking moves across block borders
    music = (0.5 * np.sin(np.arange(rate * 7) * 2 * np.pi * 330 / rate)).astype(np.float32)
    whole = mix(short, music, music_volume=0.4, ducked_volume=0.1)
    blocks = np.concatenate(
        list(mix_blocks(short, music, music_volume=0.4, ducked_volume=0.1, block_s=1.3))
    )
    np.testing.assert_allclose(blocks, whole, atol=1e-6)

    voice = np.zeros(rate * 300, np.float32)  # 53 MB
    voice[::7] = 0.2
    out = tmp_path / "ad.wav"
    tracemalloc.start()
    try:
        write_wav(out, mix_blocks(voice, music, music_volume=0.4, ducked_volume=0.1))
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB"  # one 10 s block's arrays, not 300 s
    with wave.open(str(out)) as w:
        assert w.getnframes() == len(voice) and w.getframerate() == rate


def test_silent_or_empty_audio_is_refused():
    from enfoads.core.pipelines.avatar import drive_from_audio

    for samples in (np.zeros(0, np.float32), np.zeros(22050, np.float32)):
        with pytest.raises(InvalidInput, match="empty or silent"):
            drive_from_audio(samples, 22050, 25)


def test_ordered_map_keeps_order_bounds_the_window_and_raises_in_turn():
    import threading
    import time

    from enfoads.core import media

    started: list[int] = []
    lock = threading.Lock()

    def slow_first(i: int) -> int:
        with lock:
            started.append(i)
        time.sleep(0.02 if i % 3 == 0 else 0.001)  # later items finish first
        return i * i

    results = media.ordered_map(slow_first, range(40), workers=3)
    assert next(results) == 0
    assert len(started) <= 2 * 3 + 1  # the window, not the whole input
    assert [0, *results] == [i * i for i in range(40)]

    def fails_at_five(i: int) -> int:
        if i == 5:
            raise ValueError("frame 5")
        return i

    got = []
    with pytest.raises(ValueError, match="frame 5"):
        for value in media.ordered_map(fails_at_five, range(100), workers=4):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]


def test_the_chosen_font_draws_subtitles_and_end_card(av_studio):
    from enfoads.core.pipelines.subtitles import Cue
    from enfoads.core.pipelines.video import Overlay, RenderRequest

    font = av_studio.upload_asset(Path(SERIF).read_bytes(), "Marca.ttf")
    avatar, *_ = scene_assets(av_studio)
    video = av_studio.pipelines["video"]
    cues = [Cue(0.0, 1.0, ("Fresh coffee",), ())]
    drawn = []
    for style in ({}, {"font_asset_id": font.id}):
        request = video.validate(
            RenderRequest.from_params(
                {
                    "scenes": [
                        {"kind": "avatar", "asset_id": avatar.id, "script": "Fresh coffee."}
                    ],
                    "size": 240,
                    "cta": "Visit us",
                    "subtitle_style": style,
                }
            )
        )
        overlay = Overlay(av_studio, request, (240, 426), cues, 1.0, 25)
        overlay.end_card(0, None)
        drawn.append((overlay.sprite(0, None).rgba, overlay.card))
    (sub_default, card_default), (sub_font, card_font) = drawn
    assert sub_default.shape != sub_font.shape or not np.array_equal(sub_default, sub_font)
    assert not np.array_equal(card_default, card_font)
    with pytest.raises(InvalidInput, match="not a font"):
        video.validate(
            RenderRequest.from_params(
                {
                    "scenes": [{"kind": "avatar", "asset_id": avatar.id, "script": "Hi."}],
                    "subtitle_style": {"font_asset_id": avatar.id},
                }
            )
        )


@pytest.mark.parametrize("aspect", ["9:16", "1:1", "4:5", "16:9"])
@pytest.mark.parametrize("position", ["bottom", "top"])
def test_subtitle_ink_stays_inside_the_safe_zone(av_studio, aspect, position):
    """Lines are wrapped with the real font's metrics: every drawn pixel of every cue (and of
    every karaoke state) lies inside the placement's safe zone, at full size (1080 px)."""
    from enfoads.core.pipelines import compose
    from enfoads.core.pipelines.subtitles import CueRules, Word, make_cues
    from enfoads.core.pipelines.video import Overlay, RenderRequest, SubtitleGeometry

    script = (
        "¡Descubre nuestras zapatillas ultraligeras! Transpirables, resistentes y "
        "sostenibles, fabricadas artesanalmente en Guanajuato. Compra hoy en "
        "www.tiendaonline-zapatillas-ultraligeras-ejemplo.com con envío gratuito "
        "internacionalmente garantizado."
    )
    words = [Word(w, 0.4 * i, 0.4 * i + 0.35) for i, w in enumerate(script.split())]
    request = RenderRequest.from_params(
        {
            "scenes": [{"kind": "image", "asset_id": "x", "script": script}],
            "aspect": aspect,
            "size": 1080,
            "subtitle_style": {"position": position, "karaoke": True},
        }
    )
    size = compose.frame_size(aspect, 1080)
    geometry = SubtitleGeometry(request, size, None)
    cues = make_cues(words, CueRules(fits=geometry.fits))
    assert len(cues) >= 4 and all(len(c.lines) <= 2 for c in cues)
    for cue in cues:  # wrapped by the font: only a word wider than the zone is shrunk to fit
        assert all(geometry.fits(line) for line in cue.lines if "www." not in line), cue.lines
    overlay = Overlay(av_studio, request, size, cues, words[-1].end + 1, 25)
    x0, y0, x1, y1 = overlay.safe
    for cue in cues:
        for word in cue.words:
            frame = overlay.apply(np.zeros((size[1], size[0], 3), np.uint8), word.start + 0.01)
            ys, xs = np.nonzero(frame.max(axis=2) > 0)
            assert xs.size, cue.text
            assert x0 <= xs.min() and xs.max() < x1, (cue.text, xs.min(), xs.max(), (x0, x1))
            assert y0 <= ys.min() and ys.max() < y1, (cue.text, ys.min(), ys.max(), (y0, y1))
    if aspect == "9:16":  # every vertical placement's UI: Reels' 35 % bottom, TikTok's rail
        assert x1 <= int(size[0] * 0.85) and x0 >= int(size[0] * 0.06)
        assert y0 >= int(size[1] * 0.14) and y1 <= int(size[1] * 0.65)


@pytest.mark.parametrize("brand", ["#111111", "#FFFFFF", "#E63946"])
def test_the_end_card_shows_a_dark_logo_on_any_brand_colour(av_studio, brand):
    """A dark logo on the default dark end card vanished: it sits on a plate of the opposite
    lightness when its contrast with the card is under WCAG's 3:1 for graphics, measured on
    the drawn pixels."""
    from enfoads.core.pipelines import compose
    from enfoads.core.pipelines.subtitles import Cue
    from enfoads.core.pipelines.video import Overlay, RenderRequest

    avatar, *_ = scene_assets(av_studio)
    logo = Image.new("RGBA", (120, 60), (0, 0, 0, 0))
    logo.paste((40, 10, 60, 255), (10, 10, 110, 50))  # a near-black purple mark
    out = io.BytesIO()
    logo.save(out, "PNG")
    logo_asset = av_studio.upload_asset(out.getvalue(), "logo-oscuro.png", kind="logo")
    request = av_studio.pipelines["video"].validate(
        RenderRequest.from_params(
            {
                "scenes": [{"kind": "avatar", "asset_id": avatar.id, "script": "Hola."}],
                "size": 360,
                "cta": "Visítanos",
                "brand_colour": brand,
                "logo_asset_id": logo_asset.id,
            }
        )
    )
    overlay = Overlay(av_studio, request, (360, 640), [Cue(0.0, 1.0, ("Hola",), ())], 1.0, 25)
    card = overlay.end_card(0, None)
    background = compose.hex_rgb(brand)
    mark = np.all(np.abs(card.astype(int) - (40, 10, 60)) < 10, axis=-1)
    assert mark.sum() > 500  # the logo is drawn (57 px wide at 360)
    ys, xs = np.nonzero(mark)
    ring = card[max(0, ys.min() - 3), xs.min() : xs.max()]  # just above the mark
    around = float(np.median(compose.relative_luminance(ring)))
    inside = float(compose.relative_luminance((40, 10, 60)))
    assert compose.contrast_ratio(inside, around) >= compose.LOGO_CONTRAST, (brand, around)
    needs_plate = compose.contrast_ratio(inside, compose.relative_luminance(background)) < 3
    on_brand = bool(np.all(np.abs(ring.astype(int) - background) <= 2))
    assert on_brand != needs_plate  # a plate only where the brand colour was too close


def ffmpeg_clip(path: Path, size: str, seconds: float, fps: int = 25) -> bytes:
    from tests.helpers import lavfi_clip

    return lavfi_clip(path, f"color=c=red:s={size}:r={fps}:d={seconds}")


def test_hostile_media_costs_what_the_ad_needs(av_studio, tmp_path):
    """A 2-hour clip of a few KB planned 180,000 frames; a 1000 s song was decoded whole; an
    oversized video uploaded and was decoded at native size. Each is now bounded by the ad:
    refused before anything is queued, or decoded only as far and as large as it is drawn."""
    import resource

    from enfoads.core.errors import InvalidInput
    from enfoads.core.pipelines import compose
    from enfoads.core.pipelines.video import ClipSource

    studio = av_studio
    long_clip = studio.upload_asset(
        ffmpeg_clip(tmp_path / "long.mp4", "16x16", 7200, fps=5), "dos-horas.mp4"
    )
    assert long_clip.duration_s > 7000 and long_clip.size_bytes < 2_000_000
    still = studio.upload_asset(png(np.full((64, 64, 3), 90, np.uint8)), "fondo.png")
    jobs_before = len(studio.list_jobs())
    with pytest.raises(InvalidInput) as refused:
        studio.render_multi_scene(
            scenes=[
                {"kind": "image", "asset_id": still.id, "script": "Hola."},
                {"kind": "video", "asset_id": long_clip.id},
            ]
        )
    assert refused.value.key == "error.clip_too_long" and "dos-horas.mp4" in str(refused.value)
    assert len(studio.list_jobs()) == jobs_before  # nothing queued
    # A 1000 s song under a short ad: only the ad's seconds are decoded.
    song = tmp_path / "song.wav"
    song.write_bytes(tone_wav(1000, 8000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    samples = compose.decode_audio(song, max_s=4.0)
    assert len(samples) == 4 * compose.MIX_RATE
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, grown_mb  # whole, it was 1000 s × 44.1 kHz × 4 B ≈ 176 MB and copies
    with pytest.raises(InvalidInput) as not_music:
        studio.render_multi_scene(
            scenes=[{"kind": "image", "asset_id": still.id, "script": "Hola."}],
            music_asset_id=still.id,
        )
    assert not_music.value.field == "music_asset_id"
    # Past 4K: refused at upload, naming its size; a large clip is decoded at the size it
    # covers the frame with.
    with pytest.raises(InvalidInput) as huge:
        studio.upload_asset(ffmpeg_clip(tmp_path / "huge.mp4", "4096x4096", 0.2), "enorme.mp4")
    assert huge.value.key == "error.video_too_many_pixels" and "4096×4096" in str(huge.value)
    assert studio.list_assets(kind="video").total == 1
    big = studio.upload_asset(ffmpeg_clip(tmp_path / "big.mp4", "2048x2048", 0.5), "grande.mp4")
    source = ClipSource(studio.assets.file_path(big), (360, 640), 25)
    assert source.decoded(3).shape == (640, 640, 3)  # not 2048², and still covering 360×640
    assert source.frame(3, 12).shape == (640, 360, 3)


@pytest.mark.parametrize(
    ("kind", "ai_label", "drawn"),
    [
        ("avatar", None, True),
        ("image", None, False),
        ("image", True, True),
        ("avatar", False, False),
    ],
)
def test_the_visible_ai_mark_is_on_for_a_talking_avatar_unless_turned_off(
    av_studio, kind, ai_label, drawn
):
    """A talking avatar says words a person did not say: "Avatar generado con IA" at the
    top left of the safe zone by default (the logo has the top right); a product video
    ("Contenido generado con IA") only when asked."""
    from enfoads.core.pipelines import compose
    from enfoads.core.pipelines.video import Overlay, RenderRequest

    request = RenderRequest.from_params(
        {"scenes": [{"kind": kind, "asset_id": "x", "script": "Hola"}], "ai_label": ai_label}
    )
    size = compose.frame_size("9:16", 540)
    overlay = Overlay(av_studio, request, size, [], 3.0, 25, "es")
    frame = overlay.apply(np.zeros((size[1], size[0], 3), np.uint8), 1.0)
    ys, xs = np.nonzero(frame.max(axis=2) > 0)
    assert bool(xs.size) is drawn
    if drawn:
        x0, y0, x1, _ = overlay.safe
        assert xs.min() >= x0 and ys.min() >= y0 and xs.max() < (x0 + x1) / 2 + 60
        words = compose.ai_label(size, overlay.safe, "es", avatar=kind == "avatar").rgba
        assert np.array_equal(overlay.label.rgba, words)
        other = compose.ai_label(size, overlay.safe, "es", avatar=kind != "avatar").rgba
        assert other.shape != words.shape or not np.array_equal(other, words)
