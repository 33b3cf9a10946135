"""Video ads: script → voice → talking avatar → subtitles → MP4, in one or many scenes.

Scenes are a still image with a slow zoom or pan, a talking avatar, or a video clip, each with
its own script and duration, joined by cuts or crossfades. Over them: burned-in subtitles (the
script's own words on whisper's timings, inside the placement's safe zone), the brand's logo,
and an end card with the call to action. Under them: the voice-over and background music ducked
under the voice. Frames are composed with numpy/OpenCV and streamed into ffmpeg (x264 + AAC,
faststart); ``benchmarks/video.py`` compares this with MoviePy's ``CompositeVideoClip``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
from pydantic import Field

from enfoads.core import brand, media
from enfoads.core.assets import new_asset_id
from enfoads.core.capability import Capability, JobSpec, Services
from enfoads.core.errors import InvalidInput
from enfoads.core.i18n import Reason
from enfoads.core.jobs import JobContext, JobResult
from enfoads.core.pipelines import compose
from enfoads.core.pipelines.avatar import FACE_FINDERS
from enfoads.core.pipelines.base import ai_video_tags
from enfoads.core.pipelines.subtitles import Cue, CueRules, to_srt, to_vtt
from enfoads.core.pipelines.voice import RATE_MAX, RATE_MIN, VOICE_BYTES, Rate, check_script
from enfoads.core.provenance import COMPOSITE, TRAINED, Claim
from enfoads.core.validation import RequestModel, parse_request

if TYPE_CHECKING:
    from enfoads.core.pipelines.avatar import AvatarCapability
    from enfoads.core.pipelines.subtitles import SubtitlePipeline
    from enfoads.core.pipelines.voice import VoicePipeline

log = logging.getLogger(__name__)

SINGLE_JOB, MULTI_JOB = "render_video", "render_multi_scene"
SceneKind = Literal["image", "avatar", "video"]
Transition = Literal["cut", "crossfade"]
SCENE_KINDS: tuple[str, ...] = get_args(SceneKind)
TRANSITIONS: tuple[str, ...] = get_args(Transition)
MAX_SCENE_S = 120.0  # a scene's duration, given or its clip's own
MAX_AD_S = 300.0  # the whole ad
CROSSFADE_S = 0.5
END_CARD_S = 2.5
VOICE_LEAD_S, VOICE_TAIL_S = 0.2, 0.4


class SubtitleStyleModel(RequestModel):
    enabled: bool = True
    size: float = Field(
        0.055, ge=0.02, le=0.15, description="font size, a fraction of the frame width"
    )
    colour: str = brand.TEXT_COLOUR
    highlight_colour: str = brand.HIGHLIGHT_COLOUR
    outline_colour: str = "#000000"
    outline: float = Field(
        0.08, ge=0, le=0.3, description="outline width, a fraction of the font size"
    )
    position: Literal["bottom", "middle", "top"] = Field(
        "bottom", description="always inside the safe zone"
    )
    karaoke: bool = Field(False, description="highlight each word while it is said")
    max_chars: int = Field(0, ge=0, le=80, description="per line; 0: from the frame width")
    font_asset_id: str | None = Field(
        None, description="a font asset (TTF/OTF) for subtitles and end card"
    )

    def validated(self) -> SubtitleStyleModel:
        """The style checked: its fields' own bounds and choices (again, for a style built in
        code without validation), the colours are colours, and a karaoke highlight stands
        out from the text."""
        style = parse_request(type(self), self.model_dump())
        for name in ("colour", "highlight_colour", "outline_colour"):
            compose.hex_rgb(getattr(self, name), f"subtitle_style.{name}")
        if (
            style.karaoke
            and compose.colour_difference(style.colour, style.highlight_colour)
            < compose.MIN_HIGHLIGHT_DELTA_E
        ):
            raise InvalidInput(
                "error.highlight_contrast",
                field="subtitle_style.highlight_colour",
                colour=style.colour,
                highlight=style.highlight_colour,
            )
        return style


class SceneModel(RequestModel):
    kind: SceneKind = "image"
    asset_id: str
    script: str = ""
    duration: float | None = Field(
        None,
        ge=0.5,
        le=MAX_SCENE_S,
        description="seconds; none: the voice's length (or 3 s, or the clip's)",
    )
    motion: compose.Motion = "zoom_in"
    transition: Transition = Field("cut", description="into this scene")


class RenderOptions(RequestModel):
    """What every video render shares (the single avatar render and the multi-scene ad)."""

    voice: str | None = None
    rate: Rate = 1.0
    language: str = "auto"
    aspect: compose.Aspect = "9:16"
    size: int = Field(1080, ge=144, le=2160, description="short side in pixels")
    music_asset_id: str | None = None
    music_volume: float = Field(0.35, ge=0, le=1)
    logo_asset_id: str | None = None
    cta: str = Field("", max_length=compose.CTA_MAX, description="the end card's call to action")
    brand_colour: str = brand.BRAND_COLOUR
    subtitle_style: SubtitleStyleModel = Field(default_factory=SubtitleStyleModel)
    animator: Literal["auto", "lipsync", "liveportrait", "classic"] = Field(
        "auto",
        description="the talking avatar's animator: lipsync (MuseTalk: the mouth speaks the "
        "words, over LivePortrait's or the photo's motion), LivePortrait (a neural network), or "
        "the classic talking photo; auto: the first of them whose models are on disk where a "
        "GPU renders it, else the classic one",
    )
    ai_label: bool | None = Field(
        None,
        description="a visible 'Contenido generado con IA' mark at the top left ('Avatar "
        "generado con IA' where a scene is a talking avatar); none: on when a scene is a "
        "talking avatar (a person who did not say it)",
    )

    def labelled(self, scenes: list[Any]) -> bool:
        """Whether the visible AI mark is drawn."""
        if self.ai_label is not None:
            return self.ai_label
        return any(s.kind == "avatar" for s in scenes)


class RenderMultiSceneRequest(RenderOptions):
    """The ``render_multi_scene`` job: scenes (image with zoom/pan, talking avatar, clip)."""

    scenes: list[SceneModel]

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> RenderMultiSceneRequest:
        return parse_request(cls, params)


class RenderVideoRequest(RenderOptions):
    """The ``render_video`` job: one talking-avatar scene."""

    script: str
    avatar_asset_id: str

    def as_scenes(self) -> RenderMultiSceneRequest:
        options = self.model_dump(exclude={"script", "avatar_asset_id"})
        scene = {"kind": "avatar", "asset_id": self.avatar_asset_id, "script": self.script}
        return RenderMultiSceneRequest.model_validate({**options, "scenes": [scene]})


# The names the renderer's code reads best with.
SubtitleStyle, Scene, RenderRequest = SubtitleStyleModel, SceneModel, RenderMultiSceneRequest


@dataclass
class Timed:
    """A scene placed on the timeline with its voice."""

    scene: Scene
    start: float
    duration: float
    speech: Any = None  # voice.Speech
    voice_at: float = 0.0
    cues: list[Cue] = field(default_factory=list)
    source: Any = None  # a frame source (below)

    @property
    def end(self) -> float:
        return self.start + self.duration


# -- frame sources -------------------------------------------------------------------------
class StillSource:
    def __init__(self, rgb: np.ndarray, size: tuple[int, int], motion: str):
        self.rgb, self.size, self.motion = rgb, size, motion

    def frame(self, local_index: int, frames: int) -> np.ndarray:
        zoom, shift = compose.motion_at(self.motion, local_index / max(1, frames - 1))
        h, w = self.rgb.shape[:2]
        matrix = compose.cover_matrix(w, h, *self.size, zoom=zoom, shift=shift)
        return compose.warp_cover(self.rgb, matrix, self.size)


class AvatarSource:
    def __init__(
        self,
        animator: Any,
        drive: Any,
        face: Any,
        portrait: np.ndarray,
        size: tuple[int, int],
        offset: int,
    ):
        self.animator, self.drive, self.size, self.offset = animator, drive, size, offset
        self.face = face  # its ``source``: which face finder ran (the video's lineage)
        h, w = portrait.shape[:2]
        # Frame the face a little above the centre, as a presenter is framed.
        cx, cy = face.centre
        focus = (cx, cy + face.height * 0.35)
        self.matrix = compose.cover_matrix(w, h, *size, zoom=1.0, focus=focus)

    def frame(self, local_index: int, frames: int) -> np.ndarray:
        i = local_index - self.offset
        i = min(max(i, 0), self.drive.frames - 1)
        return compose.warp_cover(self.animator.frame(i, self.drive), self.matrix, self.size)


# A scene, and a whole ad, at most this long: every platform's ad fits (YouTube's in-stream
# ads run longest), and the render's memory stays what an ad needs.


def cover_size(width: int, height: int, out_w: int, out_h: int) -> tuple[int, int]:
    """The clip's size once scaled down to just cover an ``out_w`` × ``out_h`` frame (its own
    size when it is smaller already); even numbers, as ffmpeg's scaler likes."""
    scale = max(out_w / width, out_h / height)
    if scale >= 1:
        return width, height
    return max(2, 2 * math.ceil(width * scale / 2)), max(2, 2 * math.ceil(height * scale / 2))


class ClipSource:
    """Frames of a video asset, decoded once in order; safe to ask from several threads (a
    window of recent frames is kept for requests that arrive slightly out of order)."""

    KEEP = 16  # frame workers (8 at most) ask within a few frames of each other

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        import threading
        from collections import OrderedDict

        self.path, self.size = path, size
        info = media.probe_video(path)
        decoded = cover_size(info.width, info.height, *size)
        # decoded at the size it covers the frame with, never larger (a 2048² clip in a
        # 1080×1920 ad: a third of the memory per kept frame)
        self.frames: Iterator[np.ndarray] = media.read_frames(
            path, decoded if decoded != (info.width, info.height) else None
        )
        self.step = (info.fps or fps) / fps
        self.read = 0
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()
        self.matrix = compose.cover_matrix(*decoded, *size)

    def decoded(self, want: int) -> np.ndarray:
        with self.lock:
            while self.read <= want:
                try:
                    self.cache[self.read] = next(self.frames)
                except StopIteration:
                    break
                self.read += 1
                while len(self.cache) > self.KEEP:
                    self.cache.popitem(last=False)
            if not self.cache:
                raise InvalidInput(
                    "error.invalid", field="scenes", reason=Reason("reason.no_frames")
                )
            usable = [k for k in self.cache if k <= want] or [next(iter(self.cache))]
            return self.cache[usable[-1]]

    def frame(self, local_index: int, frames: int) -> np.ndarray:
        raw = self.decoded(int(local_index * self.step))
        return compose.warp_cover(raw, self.matrix, self.size)


# -- the renderer ----------------------------------------------------------------------------
class VideoPipeline(Capability):
    """Voiced, subtitled talking-avatar ads and multi-scene ads."""

    name = "video"
    needs = ("voice", "subtitles", "avatar")

    def __init__(self, services: Services):
        super().__init__(services)
        self.voice: VoicePipeline = services.need("voice")
        self.subtitles: SubtitlePipeline = services.need("subtitles")
        self.avatar: AvatarCapability = services.need("avatar")

    def jobs(self) -> list[JobSpec]:
        return [
            JobSpec(
                SINGLE_JOB,
                RenderVideoRequest,
                self.run_single,
                check=self.check_single,
                route="/render-video",
                queue="video",
                summary="Script + avatar → voiced, subtitled talking-avatar MP4, as a job. "
                "Progress: 10% voice, 30% animating face, 70% subtitles, then rendering, 100% "
                "with ``video_url``.",
            ),
            JobSpec(
                MULTI_JOB,
                RenderMultiSceneRequest,
                self.run_multi,
                check=self.validate,
                route="/render-multi-scene",
                queue="video",
                summary="Several scenes (image with zoom/pan, talking avatar, video clip), each "
                "with its own script, joined into one ad, as a job.",
            ),
        ]

    def options(self) -> dict[str, Any]:
        return {
            "aspects": list(compose.ASPECT_RATIOS),
            "motions": list(compose.MOTIONS),
            "transitions": list(TRANSITIONS),
            "scene_kinds": list(SCENE_KINDS),
            "max_scenes": self.settings.max_scenes,
            "max_script_chars": self.settings.max_script_chars,
            "rate": {"min": RATE_MIN, "max": RATE_MAX},  # the voice's speed
        }

    def check_single(self, request: RenderVideoRequest) -> RenderVideoRequest:
        if not request.script.strip():
            raise InvalidInput("error.empty", field="script")
        if not request.avatar_asset_id:
            raise InvalidInput("error.empty", field="avatar_asset_id")
        checked = self.validate(request.as_scenes())
        return request.model_copy(update={"subtitle_style": checked.subtitle_style})

    # checked once, before queueing (the job runs the stored request)
    def validate(self, request: RenderRequest) -> RenderRequest:
        """What the request model cannot say alone (its bounds and choices are its fields'):
        the limits from the settings, the voice, and the assets each field names."""
        s = self.settings
        if not request.scenes:
            raise InvalidInput("error.empty", field="scenes")
        if len(request.scenes) > s.max_scenes:
            raise InvalidInput(
                "error.too_many", field="scenes", count=len(request.scenes), limit=s.max_scenes
            )
        compose.hex_rgb(request.brand_colour, "brand_colour")
        self.voice.resolve_voice(request.voice, request.language)
        for i, scene in enumerate(request.scenes):
            self._check_scene(scene, f"scenes[{i}]")
        if not any(scene.script.strip() for scene in request.scenes):
            raise InvalidInput("error.empty", field="script")
        total = sum(len(sc.script) for sc in request.scenes)
        if total > s.max_script_chars:
            raise InvalidInput(
                "error.too_long", field="script", length=total, limit=s.max_script_chars
            )
        self._check_media(request)
        return request.model_copy(update={"subtitle_style": request.subtitle_style.validated()})

    def _check_scene(self, scene: Scene, where: str) -> None:
        """A scene's script and its asset: of the scene's kind, and a clip no longer than a
        scene may be when its own length would be the scene's."""
        if scene.script.strip():
            check_script(scene.script, self.settings.max_script_chars, f"{where}.script")
        elif scene.kind == "avatar":
            raise InvalidInput("error.empty", field=f"{where}.script")
        if not scene.asset_id:
            raise InvalidInput("error.empty", field=f"{where}.asset_id")
        want = "video" if scene.kind == "video" else "image"
        asset = self._asset_of(scene.asset_id, f"{where}.asset_id", want, scene.kind)
        clip_s = asset.duration_s or 0.0
        if scene.kind == "video" and scene.duration is None and clip_s > MAX_SCENE_S:
            # its own length would be the scene's: a 2-hour clip planned 180,000 frames
            raise InvalidInput(
                "error.clip_too_long",
                field=f"{where}.duration",
                name=asset.name or asset.id,
                seconds=round(clip_s),
                limit=MAX_SCENE_S,
            )

    def _check_media(self, request: RenderRequest) -> None:
        """The music is audio (or a video's sound), the logo an image, the font a font."""
        if request.music_asset_id:
            self._asset_of(request.music_asset_id, "music_asset_id", "audio", "audio")
        if request.logo_asset_id:
            self._asset_of(request.logo_asset_id, "logo_asset_id", "image", "logo")
        font_id = request.subtitle_style.font_asset_id
        if font_id and self.services.assets.get(font_id).kind != "font":
            raise InvalidInput(
                "error.invalid",
                field="subtitle_style.font_asset_id",
                reason=Reason("reason.not_font", id=font_id),
            )

    _EXTS = {
        "video": media.VIDEO_EXTS,
        "image": media.IMAGE_EXTS,
        "audio": media.AUDIO_EXTS | media.VIDEO_EXTS,
    }

    def _asset_of(self, asset_id: str, field: str, files: str, want: str) -> Any:
        """The asset ``asset_id`` (NotFound names it), if its file is of ``files``' kind."""
        asset = self.services.assets.get(asset_id)
        if asset.ext not in self._EXTS[files]:
            raise InvalidInput(
                "error.invalid",
                field=field,
                reason=Reason("reason.kind_mismatch", id=asset.id, have=asset.kind, want=want),
            )
        return asset

    # -- stages --------------------------------------------------------------------------
    def build_timeline(
        self, request: RenderRequest, ctx: JobContext, fps: int, size: tuple[int, int]
    ) -> list[Timed]:
        voice = self.voice
        timeline, t = [], 0.0
        for i, scene in enumerate(request.scenes):
            ctx.check_cancelled()
            ctx.progress(10 + 15 * i / len(request.scenes), ctx.t("stage.voice"))
            speech = None
            if scene.script.strip():
                name = request.voice or self.settings.voice_default
                with ctx.watching_downloads(self.settings.models_dir, name, VOICE_BYTES):
                    speech = voice.synthesize(
                        scene.script, request.voice, rate=request.rate, language=request.language
                    )
            spoken = speech.duration_s + VOICE_LEAD_S + VOICE_TAIL_S if speech else 0.0
            natural = spoken or 3.0
            if scene.kind == "video" and not speech and scene.duration is None:
                natural = media.probe_video(
                    self.services.assets.file_path(scene.asset_id)
                ).duration_s
            duration = max(scene.duration or 0.0, natural)
            duration = round(duration * fps) / fps
            timeline.append(Timed(scene, t, duration, speech, t + VOICE_LEAD_S))
            t += duration
            if t > MAX_AD_S:  # before a frame or a sample is made
                raise InvalidInput(
                    "error.ad_too_long", field="scenes", seconds=round(t), limit=MAX_AD_S
                )
        return timeline

    def animate(
        self,
        timeline: list[Timed],
        ctx: JobContext,
        fps: int,
        size: tuple[int, int],
        animator: str = "auto",
    ) -> None:
        ctx.progress(30, ctx.t("stage.animating"))
        for item in timeline:
            ctx.check_cancelled()
            scene = item.scene
            path = self.services.assets.file_path(scene.asset_id)
            if scene.kind == "video":
                item.source = ClipSource(path, size, fps)
                continue
            image = self.services.assets.open_image(scene.asset_id).convert("RGB")
            rgb = np.asarray(image)
            if scene.kind == "avatar":
                samples, rate = item.speech.samples, item.speech.sample_rate
                moving, drive, face = self.avatar.animate(
                    rgb, samples, rate, fps, name=scene.asset_id, animator=animator
                )
                offset = int(round(VOICE_LEAD_S * fps))
                item.source = AvatarSource(moving, drive, face, rgb, size, offset)
            else:
                item.source = StillSource(rgb, size, scene.motion)

    def subtitle(self, timeline: list[Timed], request: RenderRequest, ctx: JobContext) -> list[Cue]:
        ctx.progress(70, ctx.t("stage.subtitles"))
        subs = self.subtitles
        style = request.subtitle_style
        size = compose.frame_size(request.aspect, request.size)
        font_path = (
            str(self.services.assets.file_path(style.font_asset_id))
            if style.font_asset_id
            else None
        )
        # Lines are measured with the font they are drawn in, against the placement's safe
        # zone (a character count put 9:16 subtitles under TikTok's buttons).
        geometry = SubtitleGeometry(request, size, font_path)
        rules = CueRules(max_chars=style.max_chars or 42, fits=geometry.fits)
        cues: list[Cue] = []
        for item in timeline:
            ctx.check_cancelled()
            if item.speech is None:
                continue
            with ctx.watching_downloads(
                self.settings.models_dir, "faster-whisper", subs.estimate_bytes()
            ):
                local = subs.subtitles(
                    item.speech.samples,
                    item.speech.sample_rate,
                    item.scene.script,
                    language=request.language,
                    rules=rules,
                )
            shift = item.voice_at
            for c in local:
                words = tuple(replace(w, start=w.start + shift, end=w.end + shift) for w in c.words)
                end = min(c.end + shift, item.end)
                cues.append(Cue(c.start + shift, end, c.lines, words))
        return cues

    def voice_track(self, timeline: list[Timed], total_s: float) -> np.ndarray:
        track = np.zeros(int(round(total_s * compose.MIX_RATE)) + 1, np.float32)
        for item in timeline:
            if item.speech is None:
                continue
            samples = compose.resample(item.speech.samples, item.speech.sample_rate)
            at = int(round(item.voice_at * compose.MIX_RATE))
            end = min(len(track), at + len(samples))
            track[at:end] += samples[: end - at]
        return track

    def prepare(self, request: RenderRequest, ctx: JobContext) -> tuple[list[Timed], list[Cue]]:
        """Voice, face animation set-up and subtitles: everything before the frames."""
        fps = self.settings.video_fps
        size = compose.frame_size(request.aspect, request.size)
        timeline = self.build_timeline(request, ctx, fps, size)
        self.animate(timeline, ctx, fps, size, request.animator)
        cues = self.subtitle(timeline, request, ctx) if request.subtitle_style.enabled else []
        return timeline, cues

    def encode(
        self,
        request: RenderRequest,
        timeline: list[Timed],
        cues: list[Cue],
        out: Path,
        ctx: JobContext,
        tags: dict[str, str] | None = None,
    ) -> tuple[np.ndarray, float]:
        """Mix the audio and stream the composed frames into ``out`` (tagged with ``tags``);
        (the voice alone, duration)."""
        fps = self.settings.video_fps
        size = compose.frame_size(request.aspect, request.size)
        end_card = END_CARD_S if request.cta.strip() else 0.0
        content_s = timeline[-1].end
        frames = int(round((content_s + end_card) * fps))
        music = None
        if request.music_asset_id:
            music = compose.decode_audio(  # only the seconds the ad plays
                self.services.assets.file_path(request.music_asset_id), max_s=frames / fps
            )
        voice = self.voice_track(timeline, frames / fps)
        audio_path = out.with_suffix(".wav")
        compose.write_wav(  # mixed and written in blocks: never the whole mix in memory
            audio_path,
            compose.mix_blocks(
                voice,
                music,
                music_volume=request.music_volume,
                ducked_volume=request.music_volume * 0.25,
            ),
        )
        del music
        overlay = Overlay(self.services, request, size, cues, content_s, fps, ctx.lang)
        ctx.progress(72, ctx.t("stage.rendering", frame=0, total=frames))
        with media.FrameWriter(
            out, *size, fps, audio=audio_path, duration_s=frames / fps, metadata=tags
        ) as writer:
            for i, frame in enumerate(self.frames(timeline, overlay, fps, frames, size)):
                if i % 10 == 0:
                    ctx.check_cancelled()
                    ctx.progress(
                        72 + 26 * i / frames, ctx.t("stage.rendering", frame=i, total=frames)
                    )
                writer.write(frame)
        return voice, frames / fps

    def render(self, request: RenderRequest, ctx: JobContext) -> JobResult:
        request = self.validate(request)
        timeline, cues = self.prepare(request, ctx)
        models = self.model_ids(timeline, bool(cues))
        script = " ".join(s.script for s in request.scenes if s.script.strip())
        video_id = new_asset_id("video")
        tags = ai_video_tags(
            f"AI-generated ad video ({ctx.kind}). Script: {script[:300]}",
            {
                "models": models,
                "voices": self.voices_used(timeline),
                "job_id": ctx.job_id,
                "aspect": request.aspect,
                "asset_id": video_id,
                "name": script[:60],
                "prompt": script,
            },
        )
        with media.work_dir(self.settings.work_dir, "render-") as tmp:
            out = Path(tmp) / "ad.mp4"
            voice, duration = self.encode(request, timeline, cues, out, ctx, tags)
            ctx.check_cancelled()
            ctx.progress(99, ctx.t("stage.saving"))
            return self.store(request, ctx, out, voice, cues, duration, timeline, video_id)

    def frames(
        self,
        timeline: list[Timed],
        overlay: Overlay,
        fps: int,
        frames: int,
        size: tuple[int, int],
        workers: int | None = None,
    ) -> Iterator[np.ndarray]:
        """The finished frames in order. Each frame is a pure function of its index, so they
        are composed on ``workers`` threads (OpenCV and numpy release the GIL) while ffmpeg
        encodes; a bounded window keeps memory flat."""
        starts = [int(round(item.start * fps)) for item in timeline]
        lengths = [int(round(item.duration * fps)) for item in timeline]
        content = sum(lengths)
        fade = int(round(CROSSFADE_S * fps))

        def scene_frame(index: int, local: int) -> np.ndarray:
            item = timeline[index]
            frame = item.source.frame(local, lengths[index])
            if item.scene.transition == "crossfade" and index > 0 and local < fade:
                before = scene_frame(index - 1, lengths[index - 1] - 1)
                a = (local + 1) / (fade + 1)
                frame = (frame.astype(np.float32) * a + before * (1 - a)).astype(np.uint8)
            return frame

        def frame_at(i: int) -> np.ndarray:
            if i >= content:
                fading = i - content < fade
                last = scene_frame(len(timeline) - 1, lengths[-1] - 1) if fading else None
                return overlay.end_card(i, last)
            index = max(k for k, start in enumerate(starts) if start <= i)
            return overlay.apply(scene_frame(index, i - starts[index]).copy(), i / fps)

        yield from media.ordered_map(frame_at, range(frames), workers or media.frame_workers())

    def store(
        self,
        request: RenderRequest,
        ctx: JobContext,
        video_path: Path,
        voice: np.ndarray,
        cues: list[Cue],
        duration: float,
        timeline: list[Timed],
        video_id: str | None = None,
    ) -> JobResult:
        """Store the video (its mixed audio inside; ``video_id``: the id its tags carry), the
        voice-over alone (a clean stem: no music), SRT and VTT; on any failure remove what
        was stored."""
        assets = self.services.assets
        script = " ".join(s.script for s in request.scenes if s.script.strip())
        spoke = self.voices_used(timeline)
        stored: list[str] = []
        try:
            video = assets.add_bytes(
                video_path.read_bytes(),
                "video",
                ext="mp4",
                asset_id=video_id,
                name=f"{script[:60]}",
                prompt=script,
                job_id=ctx.job_id,
                parents=self.inputs(request),
                meta={
                    "ai_generated": True,
                    "kind": ctx.kind,
                    "voices": spoke,
                    "voice": spoke[0]["voice"] if spoke else None,
                    "engine": spoke[0]["engine"] if spoke else None,
                    "aspect": request.aspect,
                    "scenes": len(request.scenes),
                    "duration_s": round(duration, 3),
                    "captions_burned": bool(cues),  # an export does not burn them again
                },
                model_ids=self.model_ids(timeline, bool(cues)),
                claim=Claim(self.source_type(request), self.describe(request, ctx.kind)),
            )
            stored.append(video.id)
            parts = self._store_parts(request, ctx, video, voice, cues, script)
            stored += [a.id for a in parts.values()]
        except BaseException:
            for asset_id in stored:
                assets.delete(asset_id)
            raise
        return JobResult(
            tuple(stored),
            {
                "video_url": video.url,
                "asset_id": video.id,
                "thumbnail_url": video.thumbnail_url,
                "audio_url": parts["wav"].url,
                "srt_url": parts["srt"].url if "srt" in parts else None,
                "vtt_url": parts["vtt"].url if "vtt" in parts else None,
                "duration_s": duration,
                "width": video.width,
                "height": video.height,
                "fps": self.settings.video_fps,
                "voices": spoke,  # which voice and engine actually spoke
            },
        )

    def source_type(self, request: RenderRequest) -> str:
        """Made by models from models' images, or a composite with real media (an uploaded
        photo, clip, logo or song)."""
        assets = self.services.assets
        made = all(assets.get(a).model_ids for a in self.inputs(request) if assets.exists(a))
        return TRAINED if made else COMPOSITE

    @staticmethod
    def describe(request: RenderRequest, kind: str) -> str:
        """The manifest's description of the render: a talking avatar is said to be a
        synthetic person (a voice and face motion made by models, not a recording)."""
        said = f"{kind}: {len(request.scenes)} scenes"
        if any(scene.kind == "avatar" for scene in request.scenes):
            said += "; AI-generated talking avatar: a synthetic person (voice and face motion made by models, not a recording)"
        return said

    @staticmethod
    def inputs(request: RenderRequest) -> list[str]:
        """The assets a render was made from (its lineage), each once."""
        ids = [s.asset_id for s in request.scenes] + [
            request.music_asset_id,
            request.logo_asset_id,
            request.subtitle_style.font_asset_id,
        ]
        return list(dict.fromkeys(a for a in ids if a))

    def _store_parts(
        self,
        request: RenderRequest,
        ctx: JobContext,
        video: Any,
        voice: np.ndarray,
        cues: list[Cue],
        script: str,
    ) -> dict[str, Any]:
        """The video's own files (shown on its card): the voice-over, SRT and VTT, by type."""
        extra = [
            ("audio", "wav", compose.wav_bytes(voice), "voice-over"),
            ("subtitle", "srt", to_srt(cues).encode(), "SRT"),
            ("subtitle", "vtt", to_vtt(cues, request.subtitle_style.karaoke).encode(), "VTT"),
        ]
        parts: dict[str, Any] = {}
        try:
            for kind, ext, data, label in extra:
                if kind == "subtitle" and not cues:
                    continue
                parts[ext] = self.services.assets.add_bytes(
                    data,
                    kind,
                    ext=ext,
                    name=f"{label}: {script[:50]}",
                    job_id=ctx.job_id,
                    parents=[video.id],
                    prompt=script,
                    part_of=video.id,
                    meta={"ai_generated": True, "of": video.id},
                    claim=Claim(description="text to speech") if ext == "wav" else None,
                )
        except BaseException:
            for asset in parts.values():
                self.services.assets.delete(asset.id)
            raise
        return parts

    @staticmethod
    def voices_used(timeline: list[Timed]) -> list[dict[str, str]]:
        """Each voice that spoke, with its engine, in order of first use."""
        seen: dict[tuple[str, str], None] = {}
        for item in timeline:
            if item.speech is not None:
                seen[(item.speech.voice, item.speech.engine)] = None
        return [{"voice": v, "engine": e} for v, e in seen]

    def model_ids(self, timeline: list[Timed], subtitled: bool) -> list[str]:
        """The models that made this video: the voices that actually spoke (Piper's, or
        espeak-ng's), whisper when it timed subtitles, the animator for an avatar scene."""
        ids = [
            f"piper/{v['voice']}" if v["engine"] == "piper" else v["voice"]
            for v in self.voices_used(timeline)
        ]
        if subtitled:
            ids.append(f"faster-whisper/{Path(self.settings.subtitle_model).name}")
        # the animators that actually ran (an "auto" LivePortrait may have fallen back)
        ran = set()
        for item in timeline:
            if isinstance(item.source, AvatarSource):
                animator = item.source.animator
                ran |= {animator.name, getattr(getattr(animator, "base", None), "name", "")}
        if "lipsync" in ran:
            ids += self.avatar.lipsync.model_ids()
        if "liveportrait" in ran:
            ids.append(f"KwaiVGI/LivePortrait ({self.settings.liveportrait_model})")
        if "talking-photo" in ran:
            ids.append("enfoads/talking-photo")
        ids += list(  # the face finders: InsightFace's landmarks are non-commercial
            dict.fromkeys(
                FACE_FINDERS[item.source.face.source]
                for item in timeline
                if isinstance(item.source, AvatarSource)
            )
        )
        return ids

    # -- job handlers ----------------------------------------------------------------------
    def run_single(self, ctx: JobContext, request: RenderVideoRequest) -> JobResult:
        return self.render(request.as_scenes(), ctx)

    def run_multi(self, ctx: JobContext, request: RenderMultiSceneRequest) -> JobResult:
        return self.render(request, ctx)


class SubtitleGeometry:
    """Where subtitles go and how big: the placement's safe zone, the font's pixel size and
    outline, and whether a line fits the zone's width in that font (what the sprite will be:
    the text's advance width plus the sprite's padding on both sides)."""

    def __init__(self, request: RenderRequest, size: tuple[int, int], font_path: str | None):
        width, height = size
        zone = compose.SAFE_ZONES[request.aspect]
        self.safe = (
            int(zone["left"] * width),
            int(zone["top"] * height),
            int(width - zone["right"] * width),
            int(height - zone["bottom"] * height),
        )
        style = request.subtitle_style
        self.font_px = max(10, int(style.size * width))
        self.outline_px = max(1, int(self.font_px * style.outline))
        self.pad = self.outline_px + max(4, self.font_px // 5)
        self.face = compose.font(self.font_px, font_path)
        self.max_chars = style.max_chars

    def fits(self, line: str) -> bool:
        if self.max_chars and len(line) > self.max_chars:
            return False
        return self.face.getlength(line) + 2 * self.pad <= self.safe[2] - self.safe[0]


class Overlay:
    """Subtitles, logo and the end card, drawn onto frames."""

    def __init__(
        self,
        services: Services,
        request: RenderRequest,
        size: tuple[int, int],
        cues: list[Cue],
        content_s: float,
        fps: int,
        lang: str = "es",
    ):
        self.size, self.cues, self.content_s, self.fps = size, cues, content_s, fps
        self.request = request
        width, height = size
        self.style = request.subtitle_style
        self.font_path = (
            str(services.assets.file_path(self.style.font_asset_id))
            if self.style.font_asset_id
            else None
        )
        geometry = SubtitleGeometry(request, size, self.font_path)
        self.safe, self.font_px, self.outline_px = (
            geometry.safe,
            geometry.font_px,
            geometry.outline_px,
        )
        self.sprites: dict[tuple[int, int | None], compose.Sprite] = {}
        self.logo = None
        if request.logo_asset_id:
            logo = services.assets.open_image(request.logo_asset_id).convert("RGBA")
            target_w = int(width * 0.16)
            logo = logo.resize((target_w, max(1, round(logo.height * target_w / logo.width))))
            self.logo_rgba = np.asarray(logo)
            x1, y0 = self.safe[2], self.safe[1]
            self.logo = compose.Sprite(self.logo_rgba, x1 - target_w, y0)
        avatar = any(s.kind == "avatar" for s in request.scenes)
        self.label = (
            compose.ai_label(size, self.safe, lang, avatar)
            if request.labelled(request.scenes)
            else None
        )
        self.card = None

    def cue_at(self, t: float) -> int | None:
        for i, cue in enumerate(self.cues):
            if cue.start <= t < cue.end:
                return i
        return None

    def sprite(self, index: int, word: int | None) -> compose.Sprite:
        key = (index, word)
        if key not in self.sprites:
            cue = self.cues[index]
            st = self.style
            lines = [line.split() for line in cue.lines]
            rgba = compose.text_sprite(
                lines,
                self.font_px,
                compose.hex_rgb(st.colour),
                compose.hex_rgb(st.outline_colour),
                self.outline_px,
                highlight=word,
                highlight_colour=compose.hex_rgb(st.highlight_colour),
                font_path=self.font_path,
            )
            x0, y0, x1, y1 = self.safe
            if rgba.shape[1] > x1 - x0:  # one word wider than the zone (a long web address)
                from PIL import Image

                scale = (x1 - x0) / rgba.shape[1]
                rgba = np.asarray(
                    Image.fromarray(rgba).resize(
                        (x1 - x0, max(1, round(rgba.shape[0] * scale))), Image.LANCZOS
                    )
                )
            h, w = rgba.shape[:2]
            x = x0 + (x1 - x0 - w) // 2
            y = {"bottom": y1 - h, "top": y0, "middle": (y0 + y1 - h) // 2}[st.position]
            self.sprites[key] = compose.Sprite(rgba, x, y)
        return self.sprites[key]

    def apply(self, frame: np.ndarray, t: float) -> np.ndarray:
        if self.logo is not None:
            self.logo.blend(frame, 0.9)
        if self.label is not None:
            self.label.blend(frame)
        index = self.cue_at(t)
        if index is not None:
            word = None
            if self.style.karaoke:
                words = self.cues[index].words
                word = max((k for k, w in enumerate(words) if w.start <= t), default=0)
            self.sprite(index, word).blend(frame)
        return frame

    def end_card(self, i: int, last: np.ndarray | None) -> np.ndarray:
        if self.card is None:
            width, height = self.size
            card = np.empty((height, width, 3), np.uint8)
            background = compose.hex_rgb(self.request.brand_colour)
            card[:] = background
            x0, y0, x1, y1 = self.safe
            words = self.request.cta.split()
            lines = [ws.split() for ws in _wrap_words(words, 18)]
            rgba = compose.text_sprite(
                lines,
                int(width * 0.075),
                (255, 255, 255),
                (0, 0, 0),
                max(1, width // 360),
                font_path=self.font_path,
            )
            h, w = rgba.shape[:2]
            compose.Sprite(rgba, (width - w) // 2, (y0 + y1) // 2).blend(card)
            if self.logo is not None:
                logo = compose.on_plate(self.logo_rgba, background)  # seen on any brand colour
                lh, lw = logo.shape[:2]
                compose.Sprite(logo, (width - lw) // 2, (y0 + y1) // 2 - lh - 20).blend(card)
            self.card = card
        fade = int(round(CROSSFADE_S * self.fps))
        k = i - int(round(self.content_s * self.fps))
        if last is not None and k < fade:
            a = (k + 1) / (fade + 1)
            return (self.card * a + last * (1 - a)).astype(np.uint8)
        return self.card.copy()


def _wrap_words(words: list[str], max_chars: int) -> list[str]:
    from enfoads.core.pipelines.subtitles import wrap

    return wrap(words, max_chars) or [""]
