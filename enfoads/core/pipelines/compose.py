"""Frame-level composition for the video pipeline: layers, text, and the audio mix.

Everything here works on numpy frames (RGB uint8) that are streamed straight into ffmpeg; no
clip objects and no per-frame PIL round trips. Text (subtitles, the call to action) is drawn once
per cue into a small RGBA sprite and alpha-blended into its rectangle on each frame.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from enfoads.core import media
from enfoads.core.errors import InvalidInput
from enfoads.core.i18n import Reason
from enfoads.core.pipelines import export_presets

FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/System/Library/Fonts/Supplemental/Arial Bold.ttf",
)
# Where text and logos may go, as fractions of the frame. A 9:16 master keeps out of every
# vertical placement's UI at once (the export presets' zones: Reels' 14 % top and 35 % bottom,
# TikTok's right-hand rail), so its subtitles and logo survive Reels, Stories, TikTok and Shorts.
SAFE_ZONES = {
    "9:16": export_presets.vertical_safe_zone(),
    "4:5": {"top": 0.06, "bottom": 0.10, "left": 0.06, "right": 0.06},
    "1:1": {"top": 0.06, "bottom": 0.08, "left": 0.06, "right": 0.06},
    "16:9": {"top": 0.06, "bottom": 0.08, "left": 0.05, "right": 0.05},
}
Aspect = Literal["9:16", "1:1", "4:5", "16:9"]
ASPECT_RATIOS = {"9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5), "16:9": (16, 9)}
assert tuple(ASPECT_RATIOS) == get_args(Aspect)  # one list of aspects


def frame_size(aspect: str, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side given, both even."""
    w, h = ASPECT_RATIOS[aspect]
    if w <= h:
        width = short_side
        height = round(short_side * h / w)
    else:
        height = short_side
        width = round(short_side * w / h)
    return width - width % 2, height - height % 2


@lru_cache(maxsize=32)
def font(size: int, path: str | None = None):
    from PIL import ImageFont

    for candidate in ([path] if path else []) + list(FONT_PATHS):
        if candidate and Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)  # Pillow's own scalable font


def hex_rgb(value: str, field_name: str = "colour") -> tuple[int, int, int]:
    text = value.strip().lstrip("#")
    if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise InvalidInput(
            "error.invalid", field=field_name, reason=Reason("reason.not_hex", value=value)
        )
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


# The karaoke highlight must stand out from the text: a CIE76 colour difference below this
# reads as the same colour at subtitle size (white against light grey is about 6, white
# against the default yellow about 88).
MIN_HIGHLIGHT_DELTA_E = 20.0


def _lab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """sRGB (0-255) to CIE L*a*b* (D65)."""

    def linear(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def colour_difference(a: str, b: str) -> float:
    """How different two ``#RRGGBB`` colours look (CIE76 ΔE: 0 the same, ~100 black/white)."""
    la, lb = _lab(hex_rgb(a)), _lab(hex_rgb(b))
    return sum((p - q) ** 2 for p, q in zip(la, lb)) ** 0.5


def relative_luminance(rgb: np.ndarray | tuple[int, int, int]) -> np.ndarray | float:
    """WCAG 2's relative luminance of sRGB colours (0 black, 1 white), per pixel or one."""
    c = np.asarray(rgb, np.float64)[..., :3] / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def contrast_ratio(a: float, b: float) -> float:
    """WCAG 2's contrast ratio of two luminances (1 the same, 21 black on white)."""
    hi, lo = max(a, b), min(a, b)
    return (hi + 0.05) / (lo + 0.05)


# WCAG's ratio for graphics a person must make out (a logo); text needs 4.5.
LOGO_CONTRAST = 3.0


def on_plate(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """``rgba`` (a logo) as it can be seen on ``background``: unchanged where its opaque pixels
    contrast with it enough, else on a rounded plate of the opposite lightness (a dark logo on
    a dark brand colour no longer vanishes)."""
    from PIL import Image, ImageDraw

    alpha = rgba[..., 3].astype(np.float64) / 255.0
    if alpha.sum() == 0:
        return rgba
    logo_lum = float((relative_luminance(rgba) * alpha).sum() / alpha.sum())
    back_lum = float(relative_luminance(background))
    if contrast_ratio(logo_lum, back_lum) >= LOGO_CONTRAST:
        return rgba
    plate_rgb = (255, 255, 255) if logo_lum < 0.18 else (17, 17, 17)
    h, w = rgba.shape[:2]
    pad = max(4, round(0.12 * max(h, w)))
    plate = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    ImageDraw.Draw(plate).rounded_rectangle(
        (0, 0, w + 2 * pad - 1, h + 2 * pad - 1), radius=pad, fill=(*plate_rgb, 255)
    )
    plate.alpha_composite(Image.fromarray(rgba), (pad, pad))
    return np.asarray(plate)


@dataclass(frozen=True)
class Sprite:
    """An RGBA image placed at (x, y); ``blend`` draws it onto a frame in place."""

    rgba: np.ndarray
    x: int
    y: int

    def blend(self, frame: np.ndarray, opacity: float = 1.0) -> None:
        h, w = self.rgba.shape[:2]
        fh, fw = frame.shape[:2]
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(fw, self.x + w), min(fh, self.y + h)
        if x1 <= x0 or y1 <= y0:
            return
        part = self.rgba[y0 - self.y : y1 - self.y, x0 - self.x : x1 - self.x]
        alpha = part[..., 3:4].astype(np.float32) * (opacity / 255.0)
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = (region + (part[..., :3] - region) * alpha).astype(np.uint8)


def ai_label(
    size: tuple[int, int], safe: tuple[int, int, int, int], lang: str, avatar: bool = False
) -> Sprite:
    """The visible "Contenido generado con IA" mark ("Avatar generado con IA" over a talking
    avatar): small white text with a dark outline at the top left of the safe zone (the logo
    takes the top right)."""
    from enfoads.core.i18n import t

    width, height = size
    px = max(10, int(min(width, height) * 0.032))
    words = t("video.ai_label_avatar" if avatar else "video.ai_label", lang).split()
    rgba = text_sprite([words], px, (255, 255, 255), (0, 0, 0), max(1, px // 8))
    return Sprite(rgba, safe[0], safe[1])


def text_sprite(
    lines: list[list[str]],
    size: int,
    colour: tuple[int, int, int],
    outline: tuple[int, int, int],
    outline_px: int,
    *,
    highlight: int | None = None,
    highlight_colour: tuple[int, int, int] = (255, 212, 0),
    box: tuple[int, int, int, int] | None = None,
    font_path: str | None = None,
) -> np.ndarray:
    """Centred lines of words as RGBA; word number ``highlight`` (counted over all lines) in
    ``highlight_colour``; an optional rounded backing ``box`` colour (RGBA)."""
    from PIL import Image, ImageDraw

    face = font(size, font_path)
    space = face.getlength(" ")
    widths = [[face.getlength(w) for w in line] for line in lines]
    line_w = [sum(ws) + space * (len(ws) - 1) for ws in widths]
    ascent, descent = face.getmetrics()
    line_h = int((ascent + descent) * 1.12)
    pad = outline_px + max(4, size // 5)
    width = int(max(line_w) + 2 * pad)
    height = int(line_h * len(lines) + 2 * pad)
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if box is not None:
        draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=size // 3, fill=box)
    k = 0
    for row, (line, ws) in enumerate(zip(lines, widths)):
        x = pad + (width - 2 * pad - line_w[row]) / 2
        y = pad + row * line_h
        for word, w in zip(line, ws):
            fill = highlight_colour if highlight == k else colour
            draw.text(
                (x, y),
                word,
                font=face,
                fill=fill + (255,),
                stroke_width=outline_px,
                stroke_fill=outline + (255,),
            )
            x += w + space
            k += 1
    return np.asarray(image)


def cover_matrix(
    src_w: int,
    src_h: int,
    dst_w: int,
    dst_h: int,
    *,
    zoom: float = 1.0,
    focus: tuple[float, float] | None = None,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """The affine matrix that fills ``dst`` with ``src`` (cropping, never letterboxing),
    scaled by ``zoom`` ≥ 1 about ``focus`` (source pixels; the centre by default), moved by
    ``shift`` (fractions of the spare room, -1 … 1)."""
    scale = max(dst_w / src_w, dst_h / src_h) * zoom
    fx, fy = focus if focus is not None else (src_w / 2, src_h / 2)
    tx = dst_w / 2 - fx * scale
    ty = dst_h / 2 - fy * scale
    # Keep the frame covered: clamp the translation to the source's edges, then shift.
    tx = min(0.0, max(dst_w - src_w * scale, tx))
    ty = min(0.0, max(dst_h - src_h * scale, ty))
    room_x, room_y = src_w * scale - dst_w, src_h * scale - dst_h
    tx = min(0.0, max(-room_x, tx + shift[0] * room_x / 2))
    ty = min(0.0, max(-room_y, ty + shift[1] * room_y / 2))
    return np.array([[scale, 0, tx], [0, scale, ty]], np.float64)


def warp_cover(src: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    # INTER_AREA would be nicer for big reductions but warpAffine does not offer it.
    return cv2.warpAffine(
        src, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


CTA_MAX = 80  # the end card's call to action, in characters (what fits its two lines)
Motion = Literal["zoom_in", "zoom_out", "pan_left", "pan_right", "none"]
MOTIONS: tuple[str, ...] = get_args(Motion)  # the UI offers them in this order


def motion_at(motion: str, progress: float) -> tuple[float, tuple[float, float]]:
    """(zoom, shift) of a slow Ken Burns move at ``progress`` 0 … 1 of the scene."""
    p = 0.5 - 0.5 * math.cos(math.pi * min(max(progress, 0.0), 1.0))  # ease in and out
    if motion == "zoom_in":
        return 1.0 + 0.12 * p, (0.0, 0.0)
    if motion == "zoom_out":
        return 1.12 - 0.12 * p, (0.0, 0.0)
    if motion == "pan_left":
        return 1.10, (0.9 - 1.8 * p, 0.0)
    if motion == "pan_right":
        return 1.10, (-0.9 + 1.8 * p, 0.0)
    return 1.0, (0.0, 0.0)


# -- audio --------------------------------------------------------------------------------
MIX_RATE = 44100


def resample(samples: np.ndarray, rate: int, target: int = MIX_RATE) -> np.ndarray:
    if rate == target or samples.size == 0:
        return samples.astype(np.float32)
    n = int(round(len(samples) * target / rate))
    return np.interp(np.arange(n) * rate / target, np.arange(len(samples)), samples).astype(
        np.float32
    )


def decode_audio(path: Path, rate: int = MIX_RATE, max_s: float | None = None) -> np.ndarray:
    """Any audio file ffmpeg reads, as mono float32 at ``rate``; with ``max_s`` only its first
    seconds (a 1000 s song under a 30 s ad costs 30 s of samples, not 500 MB)."""
    limit = ["-t", f"{max_s:.3f}"] if max_s is not None else []
    proc = subprocess.run(
        [
            media.ffmpeg_exe(),
            "-v",
            "error",
            *limit,
            "-i",
            str(path),
            "-vn",
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-f",
            "f32le",
            "-",
        ],
        capture_output=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise InvalidInput("error.invalid", field="music", reason=Reason("reason.unreadable_audio"))
    samples = np.frombuffer(proc.stdout, np.float32)
    if samples.size == 0:
        raise InvalidInput("error.silent_audio", field="music")
    return samples


ENVELOPE_BLOCK_S = 0.02  # the voice's presence is measured in 20 ms RMS blocks
MIX_BLOCK_S = 10.0  # the mix is made and written this many seconds at a time


def envelope_levels(
    samples: np.ndarray, rate: int, attack_s: float = 0.05, release_s: float = 0.4
) -> np.ndarray:
    """The voice's presence 0 … 1 per 20 ms block: RMS above a floor, fast attack, slow
    release (one float per block: a 300 s voice is 15,000 of them)."""
    block = max(1, int(rate * ENVELOPE_BLOCK_S))
    n = int(math.ceil(len(samples) / block))
    level = np.zeros(n, np.float32)
    for i in range(0, n, 4096):  # in slices: no squared copy of the whole voice
        part = samples[i * block : (i + 4096) * block]
        pad = np.zeros(int(math.ceil(len(part) / block)) * block, np.float32)
        pad[: len(part)] = part
        rms = np.sqrt((pad.reshape(-1, block) ** 2).mean(axis=1))
        level[i : i + len(rms)] = rms > 0.01
    up, down = 1 - math.exp(-0.02 / attack_s), 1 - math.exp(-0.02 / release_s)
    out, value = np.zeros(n, np.float32), 0.0
    for i, target in enumerate(level):
        value += (target - value) * (up if target > value else down)
        out[i] = value
    return out


def envelope(
    samples: np.ndarray, rate: int, attack_s: float = 0.05, release_s: float = 0.4
) -> np.ndarray:
    """The voice's presence 0 … 1 per sample (``envelope_levels`` spread over its blocks)."""
    block = max(1, int(rate * ENVELOPE_BLOCK_S))
    return np.repeat(envelope_levels(samples, rate, attack_s, release_s), block)[: len(samples)]


def mix_blocks(
    voice: np.ndarray,
    music: np.ndarray | None,
    *,
    music_volume: float = 0.35,
    ducked_volume: float = 0.08,
    rate: int = MIX_RATE,
    block_s: float = MIX_BLOCK_S,
) -> Iterator[np.ndarray]:
    """Voice plus music looped to length, the music ducked to ``ducked_volume`` under speech
    and faded out over the last second, ``block_s`` seconds at a time: the mix of a long ad
    is never whole in memory (only the voice and the seconds of music it plays are)."""
    size = max(1, int(rate * block_s))
    total = len(voice)
    if music is None or music.size == 0:
        for a in range(0, total, size):
            yield np.clip(voice[a : a + size], -1, 1)
        return
    peak = float(np.abs(music).max()) or 1.0
    levels = envelope_levels(voice, rate)
    env_block = max(1, int(rate * ENVELOPE_BLOCK_S))
    fade = min(total, int(rate * 1.0))  # the music fades out over the last second
    for a in range(0, total, size):
        b = min(total, a + size)
        index = np.arange(a, b)
        bed = music[index % len(music)] / peak
        gain = music_volume - (music_volume - ducked_volume) * levels[index // env_block]
        tail = index >= total - fade
        if tail.any():
            gain[tail] *= 1 - (index[tail] - (total - fade)) / max(1, fade - 1)
        yield np.clip(voice[a:b] + bed * gain, -1, 1).astype(np.float32)


def mix(
    voice: np.ndarray,
    music: np.ndarray | None,
    *,
    music_volume: float = 0.35,
    ducked_volume: float = 0.08,
    rate: int = MIX_RATE,
) -> np.ndarray:
    """The whole of ``mix_blocks`` as one array (short clips and tests)."""
    parts = list(
        mix_blocks(voice, music, music_volume=music_volume, ducked_volume=ducked_volume, rate=rate)
    )
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def write_wav(path: Path, blocks: Iterable[np.ndarray], rate: int = MIX_RATE) -> None:
    """Mono 16-bit WAV from float blocks, written as they come."""
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        for block in blocks:
            w.writeframes((np.clip(block, -1, 1) * 32767).astype(np.int16).tobytes())


def wav_bytes(samples: np.ndarray, rate: int = MIX_RATE) -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    return out.getvalue()
