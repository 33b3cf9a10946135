"""What each ad platform accepts, as data: one row per placement, dated, with its source.

The platforms change their specs; the export job and the checker read only this table, so an
update is an edit here. Facts as gathered for issue #32 (2026-12) from the platforms' own help
pages and spec aggregators; ``source`` names where, ``checked`` when.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Platform = Literal["meta", "tiktok", "youtube", "google", "linkedin", "pinterest"]
PLATFORMS: tuple[str, ...] = ("meta", "tiktok", "youtube", "google", "linkedin", "pinterest")

MB = 1024 * 1024
# The encode every video placement gets (H.264 High, yuv420p, constant 30 fps, closed GOP of 2 s,
# faststart, AAC-LC 48 kHz stereo 128 kbps): what Meta, TikTok, YouTube, LinkedIn and Pinterest
# all take.
VIDEO_FPS = 30
GOP_FRAMES = 2 * VIDEO_FPS
AUDIO_RATE = 48_000
AUDIO_KBPS = 128


@dataclass(frozen=True)
class SafeZone:
    """The share of the canvas each side keeps clear of text and logos (platform UI there)."""

    top: float = 0.0
    bottom: float = 0.0
    left: float = 0.0
    right: float = 0.0


# Meta Reels: 14 % top, 35 % bottom, 6 % each side: the tightest 9:16 zone; a master inside it
# passes Stories, TikTok and Shorts too.
REELS_SAFE = SafeZone(top=0.14, bottom=0.35, left=0.06, right=0.06)
TIKTOK_SAFE = SafeZone(top=0.10, bottom=0.30, left=0.05, right=0.15)  # the right-hand rail
SHORTS_SAFE = SafeZone(top=0.10, bottom=0.25, left=0.05, right=0.10)


def vertical_safe_zone() -> dict[str, float]:
    """The part of a 9:16 frame that every vertical placement leaves clear (each side's
    largest margin): where the studio draws subtitles and the logo of a 9:16 video."""
    zones = (REELS_SAFE, TIKTOK_SAFE, SHORTS_SAFE)
    return {
        side: max(getattr(z, side) for z in zones) for side in ("top", "bottom", "left", "right")
    }


@dataclass(frozen=True)
class Preset:
    platform: str
    placement: str  # the platform's name for it
    media: Literal["image", "video"]
    width: int
    height: int
    max_bytes: int
    min_s: float = 0.0  # videos: the duration range
    max_s: float = 0.0
    captions: Literal["none", "sidecar"] = "none"  # a plain UTF-8 .srt beside the video
    safe: SafeZone = SafeZone()
    copy_limit: int = 0  # characters of the ad's main text (0: none given)
    source: str = ""
    checked: str = "2026-12"

    @property
    def key(self) -> str:
        return f"{self.platform}/{self.placement}"

    @property
    def ratio(self) -> float:
        return self.width / self.height


PRESETS: tuple[Preset, ...] = (
    # -- Meta (Facebook, Instagram) -------------------------------------------------------
    Preset(
        "meta",
        "feed-4x5",
        "image",
        1080,
        1350,
        30 * MB,
        copy_limit=125,
        source="facebook.com/business/ads-guide",
    ),
    Preset(
        "meta",
        "feed-1x1",
        "image",
        1080,
        1080,
        30 * MB,
        copy_limit=125,
        source="facebook.com/business/ads-guide",
    ),
    Preset(
        "meta",
        "stories-9x16",
        "image",
        1080,
        1920,
        30 * MB,
        safe=REELS_SAFE,
        copy_limit=125,
        source="facebook.com/business/ads-guide",
    ),
    Preset(
        "meta",
        "reels-9x16",
        "video",
        1080,
        1920,
        4096 * MB,
        1,
        90,
        "sidecar",
        REELS_SAFE,
        72,
        source="facebook.com/business/ads-guide (Reels)",
    ),
    Preset(
        "meta",
        "feed-video-4x5",
        "video",
        1080,
        1350,
        4096 * MB,
        1,
        240,
        "sidecar",
        copy_limit=125,
        source="facebook.com/business/ads-guide",
    ),
    # -- TikTok ---------------------------------------------------------------------------
    Preset(
        "tiktok",
        "in-feed-9x16",
        "video",
        1080,
        1920,
        500 * MB,
        5,
        60,
        "sidecar",
        TIKTOK_SAFE,
        100,
        source="ads.tiktok.com/help (video ad specifications)",
    ),
    # -- YouTube / Google Ads ---------------------------------------------------------------
    Preset(
        "youtube",
        "in-stream-16x9",
        "video",
        1920,
        1080,
        256 * 1024 * MB,
        6,
        180,
        "sidecar",
        source="support.google.com/youtube (video ad specs)",
    ),
    Preset(
        "youtube",
        "shorts-9x16",
        "video",
        1080,
        1920,
        256 * 1024 * MB,
        6,
        60,
        "sidecar",
        SHORTS_SAFE,
        source="support.google.com/google-ads (Shorts ads)",
    ),
    Preset(
        "youtube",
        "bumper-16x9",
        "video",
        1920,
        1080,
        256 * 1024 * MB,
        1,
        6,
        "sidecar",
        source="support.google.com/google-ads (bumper ads)",
    ),
    Preset(
        "google",
        "landscape-1.91x1",
        "image",
        1200,
        628,
        5120 * 1024,
        copy_limit=30,
        source="support.google.com/google-ads (Performance Max assets)",
    ),
    Preset(
        "google",
        "square-1x1",
        "image",
        1200,
        1200,
        5120 * 1024,
        copy_limit=30,
        source="support.google.com/google-ads (Performance Max assets)",
    ),
    Preset(
        "google",
        "portrait-4x5",
        "image",
        960,
        1200,
        5120 * 1024,
        copy_limit=30,
        source="support.google.com/google-ads (Performance Max assets)",
    ),
    # -- LinkedIn --------------------------------------------------------------------------
    Preset(
        "linkedin",
        "single-image-1.91x1",
        "image",
        1200,
        628,
        5 * MB,
        copy_limit=150,
        source="linkedin.com/help/lms (ad specs)",
    ),
    Preset(
        "linkedin",
        "single-image-1x1",
        "image",
        1200,
        1200,
        5 * MB,
        copy_limit=150,
        source="linkedin.com/help/lms (ad specs)",
    ),
    Preset(
        "linkedin",
        "video-1x1",
        "video",
        1080,
        1080,
        200 * MB,
        3,
        1800,
        "sidecar",
        copy_limit=150,
        source="linkedin.com/help/lms (video ads: SRT captions)",
    ),
    # -- Pinterest -------------------------------------------------------------------------
    Preset(
        "pinterest",
        "pin-2x3",
        "image",
        1000,
        1500,
        20 * MB,
        copy_limit=100,
        source="help.pinterest.com (ad specs)",
    ),
    Preset(
        "pinterest",
        "video-pin-2x3",
        "video",
        1000,
        1500,
        2048 * MB,
        4,
        900,
        "sidecar",
        copy_limit=100,
        source="help.pinterest.com (ad specs)",
    ),
)


def presets_for(platforms: list[str] | tuple[str, ...]) -> list[Preset]:
    return [p for p in PRESETS if p.platform in platforms]
