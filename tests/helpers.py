"""Small helpers shared by the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def missing_model(response) -> bool:
    """The one 5xx a request may get in the offline tests: a 503 that names a model or voice
    not on disk (only the joe voice is), never a crash."""
    return response.status_code == 503 and response.json().get("error") in (
        "model_not_downloaded",
        "voice_not_downloaded",
    )


def read_tags(path: Path) -> dict[str, str]:
    """A media file's container tags as ffmpeg reads them (``-f ffmetadata``): what ffprobe
    shows as ``format.tags``."""
    from enfoads.core.media import read_tags as tags

    return tags(path)


def png(colour=(200, 30, 30), size=(64, 48)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def wav(seconds: float = 0.1) -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * int(16000 * seconds))
    return out.getvalue()


def lavfi_clip(path, source: str) -> bytes:
    """An H.264 MP4 made by ffmpeg from a lavfi ``source`` (``testsrc=size=160x120:rate=10:
    duration=1``, ``color=c=red:s=16x16:r=5:d=7200``), its bytes."""
    from enfoads.core import media

    subprocess.run(
        [media.ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", source]
        + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
        timeout=300,
    )
    return path.read_bytes()


def video_with_files(studio, name: str = "Anuncio de campaña") -> tuple:
    """A video asset with its voice-over and subtitles, stored as the video pipeline stores
    them (``part_of`` the video)."""
    path = studio.settings.data_dir / "clip.mp4"
    data = lavfi_clip(path, "testsrc=size=160x120:rate=10:duration=1")
    video = studio.assets.add_bytes(data, "video", ext="mp4", name=name)
    path.unlink()
    files = (
        ("audio", "wav", wav()),
        ("subtitle", "srt", b"1\n00:00:00,000 --> 00:00:01,000\nHola\n"),
        ("subtitle", "vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nHola\n"),
    )
    parts = [
        studio.assets.add_bytes(
            data, kind, ext=ext, name=f"{ext}: {name}", part_of=video.id, meta={"of": video.id}
        )
        for kind, ext, data in files
    ]
    return video, parts
