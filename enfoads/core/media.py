"""Media helpers shared by the asset store and the pipelines: safe decoding, thumbnails, probes.

Upload checks happen here once: size cap, pixel cap (decompression bombs), real decoding.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from enfoads.core.errors import InvalidInput, TooLarge, UnsafePath
from enfoads.core.i18n import Reason

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
    (b"\x00\x01\x00\x00", 0, "ttf", "font/ttf"),
    (b"OTTO", 0, "otf", "font/otf"),
)
IMAGE_EXTS = {"png", "jpg", "gif", "webp"}
VIDEO_EXTS = {"mp4", "webm"}
AUDIO_EXTS = {"wav", "mp3", "ogg"}
FONT_EXTS = {"ttf", "otf"}
FONT_SAMPLE = "Aa Ññ 123"
MIME_BY_EXT = {ext: mime for _, _, ext, mime in _SIGNATURES} | {
    "srt": "application/x-subrip",
    "json": "application/json",
    "zip": "application/zip",  # an export (the studio writes it; never sniffed from an upload)
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


# The comment every thumbnail carries: a re-index of the store tells a thumbnail from a photo.
THUMBNAIL_COMMENT = b"enfoads-thumbnail"


def make_thumbnail(image: Image.Image, px: int) -> bytes:
    """A JPEG no larger than px × px, keeping the aspect ratio."""
    thumb = image.convert("RGB")
    thumb.thumbnail((px, px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=85, optimize=True, comment=THUMBNAIL_COMMENT)
    return out.getvalue()


def is_thumbnail(data: bytes, px: int) -> bool:
    """Whether JPEG ``data`` is one of the store's thumbnails: its comment says so, or (older
    thumbnails had none) it fits in ``px`` × ``px`` with one side exactly ``px``."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                return False
            if image.info.get("comment") == THUMBNAIL_COMMENT:
                return True
            return max(image.size) == px
    except (OSError, ValueError, SyntaxError):
        return False


def read_tags(path: Path) -> dict[str, str]:
    """A media file's container tags as ffmpeg reads them (``-f ffmetadata``; what ffprobe
    shows under ``format.tags``), unescaped; {} for a file ffmpeg cannot read."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        return {}
    text = proc.stdout.decode("utf-8", "replace")
    tags: dict[str, str] = {}
    lines = iter(text.split("\n")[1:])  # the first line is the format's header
    for line in lines:
        while line.endswith("\\") and not line.endswith("\\\\"):  # an escaped newline
            line = line[:-1] + "\n" + next(lines, "")
        if not line or line.startswith((";", "#", "[")) or "=" not in line:
            continue
        key, value = _split_unescaped(line)
        tags[key] = value
    return tags


def _split_unescaped(line: str) -> tuple[str, str]:
    """``key=value`` of an ffmetadata line, with ``\\=``, ``\\;``, ``\\#`` and ``\\\\`` undone."""
    key, value, out, escaped = None, "", [], False
    for ch in line:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "=" and key is None:
            key, out = "".join(out), []
        else:
            out.append(ch)
    value = "".join(out)
    return (key or "", value)


def check_font(data: bytes, name: str) -> None:
    """A TrueType/OpenType font FreeType can draw with; otherwise an error naming the file."""
    from PIL import ImageFont

    try:
        ImageFont.truetype(io.BytesIO(data), 24).getbbox(FONT_SAMPLE)
    except (OSError, ValueError) as exc:
        raise InvalidInput("error.corrupt_font", name=name, reason=str(exc)[:200]) from exc


def font_thumbnail(data: bytes, px: int) -> bytes:
    """A sample of the font (letters, ñ, digits) as a JPEG ``px`` wide."""
    from PIL import ImageDraw, ImageFont

    image = Image.new("RGB", (px, px // 2), "white")
    font = ImageFont.truetype(io.BytesIO(data), max(12, px // 7))
    ImageDraw.Draw(image).text(
        (px // 2, px // 4), FONT_SAMPLE, font=font, fill="black", anchor="mm"
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, comment=THUMBNAIL_COMMENT)
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


def ffmpeg_reader(path: Path, **options: Any) -> Iterator[Any]:
    """``imageio_ffmpeg.read_frames``, its ffmpeg started without a Python ``preexec_fn``.
    With one (its default, to keep Ctrl+C from ffmpeg), each start forks and runs Python in
    the child before ``exec``: the at-fork handlers of every library the process has loaded,
    and a lock some thread holds at that moment hangs the child for good (seen in the full
    suite: every video read of a face swap then waited forever). Its own switch turns it
    off; ffmpeg then gets a terminal's Ctrl+C with the studio, which stops that job."""
    import imageio_ffmpeg

    os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")
    return imageio_ffmpeg.read_frames(str(path), **options)


def probe_video(path: Path, name: str = "video") -> VideoInfo:
    """Size, fps and duration; a clear error naming the video (never its path, never ffmpeg's
    own output, which is logged) when ffmpeg cannot read it."""
    import logging

    reader = ffmpeg_reader(path)
    try:
        meta = next(reader)
        width, height = meta["size"]
        info = VideoInfo(
            int(width), int(height), float(meta.get("fps") or 0), float(meta["duration"])
        )
    except (RuntimeError, OSError, StopIteration, KeyError, TypeError, ValueError) as exc:
        logging.getLogger(__name__).info("unreadable video %r: %s", name, exc)
        raise InvalidInput("error.corrupt_video", field="file", name=name) from None
    finally:
        reader.close()
    if not (info.width > 0 and info.height > 0 and info.duration_s > 0):
        raise InvalidInput("error.corrupt_video", field="file", name=name)
    return info


def video_thumbnail(path: Path, px: int, name: str = "video") -> bytes:
    """A JPEG of the frame one tenth of a second in (the first frame is often black)."""
    cmd = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-ss",
        "0.1",
        "-i",
        str(path),
        "-frames:v",
        "1",
        "-vf",
        f"scale='min({px},iw)':-2:force_original_aspect_ratio=decrease",
        "-f",
        "image2pipe",
        "-vcodec",
        "mjpeg",
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0 or not proc.stdout:
        # Very short clips: take the first frame instead.
        cmd[cmd.index("-ss") + 1] = "0"
        proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise InvalidInput("error.corrupt_video", field="file", name=name)
    try:  # the thumbnails' comment (``is_thumbnail``)
        with Image.open(io.BytesIO(proc.stdout)) as frame:
            out = io.BytesIO()
            frame.convert("RGB").save(out, "JPEG", quality=85, comment=THUMBNAIL_COMMENT)
            return out.getvalue()
    except (OSError, ValueError, SyntaxError):
        raise InvalidInput("error.corrupt_video", field="file", name=name) from None


@contextmanager
def work_dir(root: Path, prefix: str) -> Iterator[Path]:
    """A temp folder under ``root`` named after this process (``<pid>-<prefix>…``), removed on
    exit; ``sweep_work_dirs`` removes those of processes that died (kill -9) at start-up."""
    import shutil
    import tempfile

    from enfoads.core.files import private_dir

    private_dir(root)
    path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{prefix}", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stop_process(proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """Ask a child process to end (SIGTERM), then kill it if it has not within ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def sweep_work_dirs(root: Path) -> int:
    """Remove the work folders of processes that are no longer alive; return how many."""
    import shutil

    from enfoads.core.engine import pid_alive

    removed = 0
    for path in root.glob("*-*") if root.is_dir() else ():
        pid = path.name.split("-", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def resolve_inside(root: Path, relative: str | Path) -> Path:
    """``root / relative``, refusing anything that resolves outside ``root`` (``..``, links)."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise UnsafePath(str(relative))
    return candidate


# Videos at most 4K, and at most 4K at 60 fps per second of pixels: what ad platforms take.
# An 8192² clip uploaded fine and a render kept its frames at native size (≈12 GB).
MAX_VIDEO_PIXELS = 3840 * 2160
MAX_VIDEO_PIXEL_RATE = MAX_VIDEO_PIXELS * 60


def check_video_pixels(info: VideoInfo, name: str) -> None:
    pixels = info.width * info.height
    if pixels > MAX_VIDEO_PIXELS or pixels * (info.fps or 0) > MAX_VIDEO_PIXEL_RATE:
        raise InvalidInput(
            "error.video_too_many_pixels",
            field="file",
            name=name,
            width=info.width,
            height=info.height,
        )


def read_frames(path: Path, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """The video's frames as RGB uint8 arrays (H, W, 3), decoded by ffmpeg as a stream; with
    ``size`` (width, height) ffmpeg scales them first, so a frame never costs more memory than
    the size it will be drawn at."""
    params = ["-vf", f"scale={size[0]}:{size[1]}"] if size else None
    reader = ffmpeg_reader(path, output_params=params)
    try:
        meta = next(reader)
        width, height = size or meta["size"]
        for raw in reader:
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


def first_frame(path: Path, name: str) -> Image.Image:
    """A video's first frame as a PIL image (where the UI numbers a video target's faces)."""
    frames = read_frames(path)
    try:
        frame = next(frames, None)
    finally:
        frames.close()
    if frame is None:
        raise InvalidInput(
            "error.invalid",
            field="video_asset_id",
            reason=Reason("reason.named_no_frames", name=name),
        )
    return Image.fromarray(np.array(frame))


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity (a container or ``taskset`` limited to 2
    of a host's 16), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def frame_workers(limit: int = 8) -> int:
    """Threads for per-frame work: one core is left to ffmpeg's encoder."""
    return max(1, min(limit, usable_cpus() - 1))


def ordered_map(fn: Callable, items: Iterable, workers: int) -> Iterator:
    """``map(fn, items)`` on ``workers`` threads, results in input order.

    For per-frame work whose heavy parts release the GIL (OpenCV, numpy, ONNX Runtime). At most
    ``2 × workers`` items are in flight, so memory stays flat on long videos; an exception in
    ``fn`` is raised here, at its item's turn, and the rest is cancelled.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="enfoads-frames") as pool:
        window: deque = deque()
        try:
            for item in items:
                window.append(pool.submit(fn, item))
                if len(window) >= 2 * workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for future in window:
                future.cancel()


class FrameWriter:
    """Stream RGB frames into ffmpeg: H.264 (yuv420p) + AAC in an MP4 with faststart.

    ``audio`` is a file whose first audio stream is muxed in (none when it has none);
    ``duration_s`` trims audio and video to a length. ``metadata`` becomes the MP4's tags (what
    ffprobe shows under ``format.tags``; keys beyond MP4's own are kept as ``mdta`` tags). Use
    as a context manager: the file exists only after a clean exit.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        audio: Path | None = None,
        duration_s: float | None = None,
        crf: int = 20,
        preset: str = "veryfast",
        threads: int = 0,
        metadata: dict[str, str] | None = None,
    ):
        if width % 2 or height % 2:
            raise InvalidInput(
                "error.invalid",
                field="size",
                reason=Reason("reason.even_sides", size=f"{width}x{height}"),
            )
        self.path, self.size = Path(path), (width, height)
        cmd = [
            ffmpeg_exe(),
            "-y",
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-r",
            f"{fps}",
            "-i",
            "-",
        ]
        if audio is not None:
            cmd += [
                "-i",
                str(audio),
                "-map",
                "0:v:0",
                "-map",
                "1:a:0?",
                "-c:a",
                "aac",
                "-b:a",
                "160k",
            ]
        if duration_s is not None:
            cmd += ["-t", f"{duration_s:.3f}"]
        for key, value in (metadata or {}).items():
            cmd += ["-metadata", f"{key}={' '.join(str(value).split())}"]
        cmd += [
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-crf",
            str(crf),
            "-pix_fmt",
            "yuv420p",
            "-threads",
            str(threads),
            "-movflags",
            "+faststart+use_metadata_tags",
            str(self.path),
        ]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.shape[:2] != (self.size[1], self.size[0]):
            raise ValueError(f"frame {frame.shape} does not match {self.size}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        except BrokenPipeError as exc:
            raise RuntimeError(f"ffmpeg stopped: {self._stderr()}") from exc
        self.frames += 1

    def _stderr(self) -> str:
        return self._proc.stderr.read().decode(errors="replace")[-500:] if self._proc.stderr else ""

    def close(self, ok: bool = True) -> None:
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        if not ok:
            self._proc.kill()
            self._proc.wait()
            self.path.unlink(missing_ok=True)
            return
        code = self._proc.wait()
        if code != 0:
            self.path.unlink(missing_ok=True)
            raise RuntimeError(f"ffmpeg failed ({code}): {self._stderr()}")

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(ok=exc_type is None)


@dataclass(frozen=True)
class StreamInfo:
    video: str | None  # codec name
    audio: str | None
    width: int
    height: int
    fps: float
    duration_s: float


def probe_streams(path: Path) -> StreamInfo:
    """Codecs, size, fps and duration as ffmpeg reads them (imageio-ffmpeg ships no ffprobe)."""
    import re

    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    text = proc.stderr.decode(errors="replace")
    video = re.search(r"Stream #\S+.*?: Video: (\w+).*?, (\d+)x(\d+).*?, ([\d.]+) fps", text)
    audio = re.search(r"Stream #\S+.*?: Audio: (\w+)", text)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    if video is None and audio is None:
        raise InvalidInput("error.invalid", field="file", reason=Reason("reason.no_streams"))
    h, m, s = duration.groups() if duration else (0, 0, 0)
    return StreamInfo(
        video=video.group(1) if video else None,
        audio=audio.group(1) if audio else None,
        width=int(video.group(2)) if video else 0,
        height=int(video.group(3)) if video else 0,
        fps=float(video.group(4)) if video else 0.0,
        duration_s=int(h) * 3600 + int(m) * 60 + float(s),
    )
