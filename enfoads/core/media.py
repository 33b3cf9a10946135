"""Media helpers shared by the asset store and the pipelines: safe decoding, thumbnails, probes.

Upload checks happen here once: size cap, pixel cap (decompression bombs), real decoding.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from enfoads.core.errors import InvalidInput, TooLarge, UnsafePath

# Magic numbers of the formats the studio stores: (prefix, offset, ext, mime).
_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "png", "image/png"),
    (b"\xff\xd8\xff", 0, "jpg", "image/jpeg"),
    (b"GIF8", 0, "gif", "image/gif"),
    (b"WEBP", 8, "webp", "image/webp"),
    (b"WAVE", 8, "wav", "audio/wav"),
    (b"ftyp", 4, "mp4", "video/mp4"),
    (b"\x1aE\xdf\xa3", 0, "webm", "video/webm"),
    (b"ID3", 0, "mp3", "audio/mpeg"),
    (b"OggS", 0, "ogg", "audio/ogg"),
    (b"WEBVTT", 0, "vtt", "text/vtt"),
)
IMAGE_EXTS = {"png", "jpg", "gif", "webp"}
VIDEO_EXTS = {"mp4", "webm"}
MIME_BY_EXT = {ext: mime for _, _, ext, mime in _SIGNATURES} | {
    "srt": "application/x-subrip",
    "json": "application/json",
}


def sniff(data: bytes) -> tuple[str, str] | None:
    """(ext, mime) from the file's first bytes, or None when the format is not one we store."""
    for prefix, offset, ext, mime in _SIGNATURES:
        if data[offset : offset + len(prefix)] == prefix:
            return ext, mime
    return None


def check_upload_size(data: bytes, name: str, limit_bytes: int) -> None:
    if len(data) > limit_bytes:
        raise TooLarge(
            "error.file_too_large",
            name=name,
            size_mb=len(data) / 2**20,
            limit_mb=limit_bytes / 2**20,
        )


def decode_image(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Decode an uploaded image, refusing corrupt files and pixel bombs before decoding them.

    The pixel count is read from the header, so a 50 000 × 50 000 PNG of a few KB never
    allocates its pixels. EXIF orientation is applied.
    """
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInput("error.corrupt_image", name=name, reason=type(exc).__name__) from exc
    except Image.DecompressionBombError as exc:
        raise TooLarge("error.too_many_pixels", name=name, pixels="?", limit=max_pixels) from exc
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise TooLarge("error.too_many_pixels", name=name, pixels=pixels, limit=max_pixels)
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInput("error.corrupt_image", name=name, reason=str(exc)[:120]) from exc
    return ImageOps.exif_transpose(image)


def make_thumbnail(image: Image.Image, px: int) -> bytes:
    """A JPEG no larger than px × px, keeping the aspect ratio."""
    thumb = image.convert("RGB")
    thumb.thumbnail((px, px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped by imageio-ffmpeg (no system ffmpeg needed on Colab or CI)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    duration_s: float


def probe_video(path: Path) -> VideoInfo:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as exc:
        raise InvalidInput("error.invalid", field="file", reason=f"unreadable video: {exc}")
    finally:
        reader.close()
    width, height = meta["size"]
    return VideoInfo(int(width), int(height), float(meta.get("fps") or 0), float(meta["duration"]))


def video_thumbnail(path: Path, px: int) -> bytes:
    """A JPEG of the frame one tenth of a second in (the first frame is often black)."""
    cmd = [
        ffmpeg_exe(), "-v", "error", "-ss", "0.1", "-i", str(path), "-frames:v", "1",
        "-vf", f"scale='min({px},iw)':-2:force_original_aspect_ratio=decrease",
        "-f", "image2pipe", "-vcodec", "mjpeg", "-",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0 or not proc.stdout:
        # Very short clips: take the first frame instead.
        cmd[cmd.index("-ss") + 1] = "0"
        proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise InvalidInput(
            "error.invalid", field="file", reason=proc.stderr.decode(errors="replace")[:200]
        )
    return proc.stdout


def resolve_inside(root: Path, relative: str | Path) -> Path:
    """``root / relative``, refusing anything that resolves outside ``root`` (``..``, links)."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise UnsafePath(str(relative))
    return candidate
