"""Publish-ready export: a campaign's images and videos as the files each ad platform takes.

One job (``export_campaign``) turns chosen assets into every placement of every chosen platform
(``export_presets.PRESETS``): an image from the generated placement of the nearest ratio,
cropped to cover the exact canvas and encoded as a JPEG whose quality is searched down until
it fits the platform's size cap; a video scaled and cropped to the canvas and encoded to the
platforms' common spec (H.264 High, yuv420p, constant 30 fps, closed 2 s GOP, faststart,
AAC-LC 48 kHz stereo), trimmed to the placement's longest duration (said in the job's notices)
or refused when shorter than its shortest, its subtitles beside it as a UTF-8 ``.srt`` named
with the locale (``…es_ES.srt``). Every file is read back by the checker (``check_file``) and
its verdict goes into the platform's ZIP with a ``manifest.json`` (file, placement, size,
duration, checksum, source asset, checks) and a ``files.csv`` for bulk upload. Every file is
labelled AI-generated: IPTC ``DigitalSourceType`` in the JPEG's XMP (a face swap is
``compositeWithTrainedAlgorithmicMedia``), the studio's record in the MP4's tags.

A capability like any other: this module and its translations are all there is (the route
``POST /api/exports``, the queue, the client's types come from its ``JobSpec``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import subprocess
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from pydantic import Field

from enfoads.core import media, provenance
from enfoads.core.capability import Capability, JobSpec, ModelSpec
from enfoads.core.errors import InvalidInput
from enfoads.core.i18n import Reason, t
from enfoads.core.jobs import JobContext, JobResult
from enfoads.core.pipelines import export_presets as presets
from enfoads.core.pipelines.base import ai_video_tags
from enfoads.core.pipelines.export_presets import Platform, Preset
from enfoads.core.provenance import xmp_source_type
from enfoads.core.validation import RequestModel

log = logging.getLogger(__name__)

JOB_KIND = "export_campaign"
JPEG_QUALITIES = (92, 86, 80, 72, 64, 55, 45)  # tried in turn until the file fits its cap
KEEP_MIN = 0.8  # a crop that keeps less of the picture than this asks for a new generation
SIGNATURE_ROOM = 256 * 1024  # what the C2PA manifest (with its thumbnails) adds, at most


class ExportRequest(RequestModel):
    """Platform-ready files from a campaign's images and videos: one ZIP per platform, each
    file checked against its placement's spec."""

    asset_ids: list[str] = Field(min_length=1, max_length=50, description="images and videos")
    platforms: list[Platform] = Field(min_length=1, description="the platforms to export for")
    regenerate: bool = Field(
        True,
        description="when none of a generated image's placements is near a canvas's ratio (its "
        "crop would cut more than a fifth), generate that ratio again from its prompt and seed",
    )


@dataclass
class Exported:
    """One file of a platform's ZIP, and what the checker said of it."""

    preset: Preset
    name: str
    path: Path
    source: str  # the asset it came from
    failures: list[str] = field(default_factory=list)
    duration_s: float | None = None
    # the text the studio knows is in the picture, in the file's pixels: (what, box)
    texts: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    captions: str = ""  # a video's captions: "burned" here, "source" (its own), or ""

    def row(self) -> dict[str, Any]:
        data = self.path.read_bytes()
        return {
            "file": self.name,
            "placement": self.preset.key,
            "width": self.preset.width,
            "height": self.preset.height,
            "bytes": len(data),
            "duration_s": self.duration_s,
            "sha256": hashlib.sha256(data).hexdigest(),
            "source_asset_id": self.source,
            "passed": not self.failures,
            "failures": self.failures,
            **({"captions": self.captions} if self.captions else {}),
        }


class ExportCapability(Capability):
    """``export_campaign``: presets as data, the renders, the checker and the ZIPs."""

    name = "export"
    # a ratio no placement has is generated again; a video without captions is heard
    needs = ("image", "subtitles")

    def models(self) -> list[ModelSpec]:
        return []  # ffmpeg and Pillow, no model

    def asset_kinds(self) -> dict[str, tuple[str, ...]]:
        return {"export": ("zip",)}  # a platform's ZIP of ready files

    def jobs(self) -> list[JobSpec]:
        return [
            JobSpec(
                JOB_KIND,
                ExportRequest,
                self.run,
                check=self.check,
                route="/api/exports",
                queue="video",
                timeout_s=3600.0,
            )
        ]

    def options(self) -> dict[str, Any]:
        return {
            "platforms": list(presets.PLATFORMS),
            "presets": [
                {
                    "platform": p.platform,
                    "placement": p.placement,
                    "media": p.media,
                    "width": p.width,
                    "height": p.height,
                    "max_bytes": p.max_bytes,
                    "duration_s": [p.min_s, p.max_s] if p.media == "video" else None,
                    "copy_limit": p.copy_limit,
                    "source": p.source,
                    "checked": p.checked,
                }
                for p in presets.PRESETS
            ],
        }

    def check(self, request: ExportRequest) -> ExportRequest:
        """Every asset exists and is an image or a video (NotFound names a missing one)."""
        for i, asset_id in enumerate(request.asset_ids):
            asset = self.services.assets.get(asset_id)
            if asset.ext not in media.IMAGE_EXTS | media.VIDEO_EXTS:
                raise InvalidInput(
                    "error.invalid",
                    field=f"asset_ids[{i}]",
                    reason=Reason(
                        "reason.kind_mismatch", id=asset.id, have=asset.kind, want="image"
                    ),
                )
        unique = list(dict.fromkeys(request.asset_ids))
        return request.model_copy(
            update={"asset_ids": unique, "platforms": list(dict.fromkeys(request.platforms))}
        )

    # -- the job -----------------------------------------------------------------------
    def run(self, ctx: JobContext, request: ExportRequest) -> JobResult:
        assets = [self.services.assets.get(a) for a in request.asset_ids]
        notices: list[str] = []
        stored, exports = [], []
        groups = self.groups(assets)
        if request.regenerate:  # the new images are this job's too
            stored += self.fill_ratios(groups, request.platforms, ctx, notices)
        heard: dict[str, tuple[list[Any], bool]] = {}  # each video's captions, once a job
        with media.work_dir(self.settings.work_dir, "export-") as tmp:
            plan = self.plan(groups, assets, request.platforms)
            done = 0
            for platform in request.platforms:
                files: list[Exported] = []
                for preset, asset in plan.get(platform, []):
                    done += 1
                    ctx.check_cancelled()
                    ctx.progress(
                        5 + 85 * done / max(1, sum(map(len, plan.values()))),
                        ctx.t(
                            "stage.exporting",
                            placement=preset.key,
                            n=done,
                            total=sum(map(len, plan.values())),
                        ),
                    )
                    made = self.render(preset, asset, Path(tmp), ctx, notices, heard)
                    files.extend(made)
                if not files:
                    notices.append(ctx.t("export.nothing", platform=platform))
                    continue
                zipped = self.store_zip(platform, files, request, ctx)
                stored.append(zipped.id)
                exports.append(
                    {
                        "platform": platform,
                        "asset_id": zipped.id,
                        "url": zipped.url,
                        "files": [f.row() for f in files],
                    }
                )
        ctx.progress(99, ctx.t("stage.saving"))
        return JobResult(tuple(stored), {"exports": exports, "notices": notices})

    @staticmethod
    def groups(assets: list[Any]) -> dict[str, list[Any]]:
        """The chosen images as sets made together (one job's placements; an A/B variant's
        placements, each variant its own set)."""
        groups: dict[str, list[Any]] = {}
        for asset in assets:
            if asset.ext in media.IMAGE_EXTS:
                key = f"{asset.job_id or asset.id}/{asset.meta.get('variant', '')}"
                groups.setdefault(key, []).append(asset)
        return groups

    def fill_ratios(
        self, groups: dict[str, list[Any]], platforms: list[str], ctx: JobContext, notices: list
    ) -> list[str]:
        """Generate again, from the same prompt and seed, the SDXL placement nearest each
        canvas that none of a generated set is near (its crop would keep under ``KEEP_MIN``
        of the picture: a square cut to 9:16 loses 44 %); the new images join their set."""
        from enfoads.core.pipelines.image import ASPECTS, GenerateImageRequest

        canvases = [p for p in presets.presets_for(platforms) if p.media == "image"]
        new: list[str] = []
        for group in groups.values():
            made = next((a for a in group if regenerable(a)), None)
            wanted = {
                min(ASPECTS, key=lambda a: abs(ASPECTS[a][0] / ASPECTS[a][1] - p.ratio))
                for p in canvases
                if max(kept(a, p.ratio) for a in group) < KEEP_MIN
            }
            if made is None or not wanted:
                continue
            request = GenerateImageRequest(
                prompt=made.prompt,
                seed=made.seed,
                placements=sorted(wanted),
                style=made.meta.get("style", "none"),
            )
            ctx.stage(
                ctx.t(
                    "export.regenerating",
                    name=made.name or made.id,
                    ratios=", ".join(sorted(wanted)),
                )
            )
            result = self.services.need("image").run(ctx, request)
            group += [self.services.assets.get(a) for a in result.asset_ids]
            new += result.asset_ids
            notices.append(
                ctx.t(
                    "export.regenerated",
                    name=made.name or made.id,
                    ratios=", ".join(sorted(wanted)),
                )
            )
        return new

    @staticmethod
    def plan(
        groups: dict[str, list[Any]], assets: list[Any], platforms: list[str]
    ) -> dict[str, list[tuple[Preset, Any]]]:
        """Which asset each placement takes: of each set of images made together (one job's
        placements), the one whose ratio is nearest the canvas; every video for each video
        placement."""
        videos = [a for a in assets if a.ext in media.VIDEO_EXTS]
        plan: dict[str, list[tuple[Preset, Any]]] = {}
        for preset in presets.presets_for(platforms):
            chosen = (
                videos
                if preset.media == "video"
                else [
                    min(group, key=lambda a: abs((a.width or 1) / (a.height or 1) - preset.ratio))
                    for group in groups.values()
                ]
            )
            plan.setdefault(preset.platform, []).extend((preset, a) for a in chosen)
        return plan

    def render(
        self,
        preset: Preset,
        asset: Any,
        tmp: Path,
        ctx: JobContext,
        notices: list[str],
        heard: dict[str, tuple[list[Any], bool]] | None = None,
    ) -> list[Exported]:
        """The placement's file (and its captions) from ``asset``, checked; [] when refused."""
        heard = {} if heard is None else heard
        stem = f"{preset.platform}-{preset.placement}-{asset.id}"
        if preset.media == "image":
            if not keeps_layers(asset, preset.ratio):  # a variant's copy would be cut
                reason = ctx.t("export.cuts_copy", variant=asset.meta.get("variant", asset.id))
                notices.append(ctx.t("export.refused", placement=preset.key, reason=reason))
                return []
            out = tmp / f"{stem}.jpg"
            self.render_image(preset, asset, out)
            texts = [
                (layer["role"], cover_box(layer["box"], asset, preset))
                for layer in asset.meta.get("layers") or []
                if layer["role"] != "logo"
            ]
            made = [Exported(preset, out.name, out, asset.id, texts=texts)]
        else:
            duration = asset.duration_s or 0.0
            if duration < preset.min_s:
                reason = t(
                    "check.duration",
                    ctx.lang,
                    got=round(duration, 1),
                    platform=preset.platform,
                    min_s=preset.min_s,
                    max_s=preset.max_s,
                )
                notices.append(ctx.t("export.refused", placement=preset.key, reason=reason))
                return []
            if duration > preset.max_s:
                notices.append(
                    ctx.t(
                        "export.trimmed",
                        name=asset.name or asset.id,
                        max_s=preset.max_s,
                        placement=preset.key,
                    )
                )
            out = tmp / f"{stem}.mp4"
            cues, burned = [], False
            if vertical(preset) or preset.captions == "sidecar":
                cues, burned = self.source_captions(asset, ctx, notices, heard)
            burn = cues if vertical(preset) and not burned else []
            texts = self.render_video(preset, asset, out, ctx, burn)
            video = Exported(
                preset,
                out.name,
                out,
                asset.id,
                duration_s=min(duration, preset.max_s),
                texts=texts,
                captions="burned" if texts else ("source" if burned else ""),
            )
            made = [video]
            made += self.captions(preset, asset, tmp / f"{stem}.{locale(ctx.lang)}.srt", cues)
        for item in made:
            item.failures = check_file(
                item.path, preset, ctx.lang, captions=len(made) > 1, texts=item.texts
            )
        return made

    def render_image(self, preset: Preset, asset: Any, out: Path) -> None:
        """Cover-crop to the canvas, then the best JPEG quality that fits the cap."""
        image = self.services.assets.open_image(asset).convert("RGB")
        canvas = ImageOps.fit(image, (preset.width, preset.height), Image.Resampling.LANCZOS)
        source = self.source_type(asset)
        xmp = xmp_source_type(source).encode() if source else b""
        room = preset.max_bytes - SIGNATURE_ROOM
        for quality in JPEG_QUALITIES:
            buffer = io.BytesIO()
            canvas.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True, xmp=xmp)
            if buffer.tell() <= room:
                break
        out.write_bytes(buffer.getvalue())
        self.sign(out, asset, preset, "c2pa.cropped", source)

    def source_type(self, asset: Any) -> str | None:
        """The source's IPTC digital source type: what its own manifest says, else what the
        studio recorded (a model made it, or edited a photo), else none (a real photo)."""
        said = self.services.assets.provenance_of(asset).source_type
        if said or not asset.model_ids:
            return said
        return provenance.COMPOSITE if asset.meta.get("source_asset_id") else provenance.TRAINED

    def sign(self, out: Path, asset: Any, preset: Preset, action: str, source: str | None) -> None:
        """The exported file's C2PA manifest: the source asset as its parent ingredient (its
        own manifest carried along), the crop or re-encode as the action."""
        store = self.services.assets
        parent = provenance.Ingredient(
            asset.name or asset.file_name, store.file_path(asset), asset.ext, "parentOf"
        )
        definition = provenance.manifest(
            out.name,
            source_type=source,
            agents=["Enfoads Studio export"],
            ingredients=[parent],
            action=action,
            description=f"{preset.key}: {preset.width}x{preset.height}",
        )
        store.credentials.sign_file(out, definition, (parent,))

    def render_video(
        self, preset: Preset, asset: Any, out: Path, ctx: JobContext, burn: list[Any] = ()
    ) -> list[tuple[str, tuple[int, int, int, int]]]:
        """Scale and crop to the canvas, ``burn`` (cues) drawn at the bottom of the
        placement's safe zone, the platforms' common encode, trimmed to the placement's
        longest duration, tagged AI-generated; the burned captions' boxes."""
        w, h = preset.width, preset.height
        fit = f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1"
        overlays, boxes = caption_overlays(burn, preset, out.parent / out.stem)
        graph = [f"[0:v]{fit}[v0]"]
        for n, (_png, x, y, start, end) in enumerate(overlays, 1):
            graph.append(
                f"[v{n - 1}][{n}:v]overlay=x={x}:y={y}:enable='between(t,{start:.3f},{end:.3f})'"
                f"[v{n}]"
            )
        inputs = [a for png, *_ in overlays for a in ("-i", str(png))]
        tags = ai_video_tags(
            f"AI-generated ad ({preset.key}) from {asset.name or asset.id}"[:200],
            {"job_id": ctx.job_id, "source_asset_id": asset.id, "placement": preset.key},
        )
        cmd = [
            media.ffmpeg_exe(), "-y", "-v", "error",
            "-i", str(self.services.assets.file_path(asset)), *inputs,
            "-t", f"{preset.max_s:.3f}",
            "-filter_complex", ";".join(graph), "-map", f"[v{len(overlays)}]", "-map", "0:a?",
            "-r", str(presets.VIDEO_FPS), "-fps_mode", "cfr",
            "-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p",
            "-preset", "veryfast", "-crf", "21",
            "-g", str(presets.GOP_FRAMES), "-keyint_min", str(presets.GOP_FRAMES),
            "-sc_threshold", "0", "-flags", "+cgop",
            "-c:a", "aac", "-ar", str(presets.AUDIO_RATE), "-ac", "2",
            "-b:a", f"{presets.AUDIO_KBPS}k",
            "-movflags", "+faststart+use_metadata_tags",
        ]  # fmt: skip
        for key, value in tags.items():
            cmd += ["-metadata", f"{key}={' '.join(str(value).split())}"]
        done = subprocess.run([*cmd, str(out)], capture_output=True, timeout=1800, check=False)
        if done.returncode != 0:
            log.warning("export of %s failed: %s", asset.id, done.stderr[-400:])
            raise InvalidInput(
                "error.corrupt_video", field="asset_ids", name=asset.name or asset.id
            )
        self.sign(out, asset, preset, "c2pa.transcoded", self.source_type(asset))
        return boxes

    def source_captions(
        self,
        asset: Any,
        ctx: JobContext,
        notices: list[str],
        heard: dict[str, tuple[list[Any], bool]],
    ) -> tuple[list[Any], bool]:
        """The video's captions and whether its picture has them already: its own SRT (the
        studio's renders burn theirs in), else what the subtitles model hears in its sound
        (an upload, a face swap); none, with a notice, when that model is not on disk. Once
        a job per video."""
        from enfoads.core.pipelines.subtitles import from_srt

        if asset.id in heard:
            return heard[asset.id]
        srt, burned = self.caption_source(asset)
        cues: list[Any] = []
        if srt is not None:
            cues = from_srt(self.services.assets.read_bytes(srt).decode("utf-8", "replace"))
        elif not burned:
            cues = self.hear(asset, ctx, notices)
        heard[asset.id] = (cues, burned)
        return heard[asset.id]

    def hear(self, asset: Any, ctx: JobContext, notices: list[str]) -> list[Any]:
        """Cues of what is said in a video, by the studio's subtitles model; [] when it has no
        voice (no sound, silence), or with a notice when the model is not downloaded."""
        from enfoads.core.pipelines import compose
        from enfoads.core.pipelines.subtitles import WHISPER_RATE, CueRules, make_cues

        name = asset.name or asset.id
        subs = self.services.need("subtitles")
        if not subs.on_disk():
            notices.append(ctx.t("export.no_captions_model", name=name))
            return []
        try:
            samples = compose.decode_audio(
                self.services.assets.file_path(asset), WHISPER_RATE, max_s=CAPTION_MAX_S
            )
        except InvalidInput:  # no sound, or silence
            return []
        if float(abs(samples).max(initial=0.0)) < 1e-3:
            return []
        ctx.stage(ctx.t("export.hearing", name=name))
        try:
            words = subs.transcribe_words(samples, WHISPER_RATE, "auto")
        except InvalidInput:
            return []
        return make_cues(words, CueRules(max_chars=30))

    def caption_source(self, asset: Any, depth: int = 0) -> tuple[Any | None, bool]:
        """The video's SRT (its own, or the one of the video it edits: a face swap of a
        render keeps the render's words and picture) and whether its picture has them."""
        srt = self.srt_part(asset)
        if "captions_burned" in asset.meta:
            return srt, bool(asset.meta["captions_burned"])
        if asset.meta.get("kind") in STUDIO_RENDERS:
            return srt, srt is not None  # renders from before the record said so
        store = self.services.assets
        for parent_id in asset.parents if srt is None and depth < 3 else ():
            parent = store.get(parent_id) if store.exists(parent_id) else None
            if parent is not None and parent.ext in media.VIDEO_EXTS:
                return self.caption_source(parent, depth + 1)
        return srt, False

    def srt_part(self, asset: Any) -> Any | None:
        parts = self.services.assets.parts_of([asset.id]).get(asset.id, [])
        return next((part for part in parts if part.ext == "srt"), None)

    def captions(
        self, preset: Preset, asset: Any, out: Path, cues: list[Any] = ()
    ) -> list[Exported]:
        """The video's SRT beside it (a plain UTF-8 sidecar), where the placement takes one:
        its own, else the one heard from its sound."""
        from enfoads.core.pipelines.subtitles import to_srt

        if preset.captions != "sidecar":
            return []
        part = self.caption_source(asset)[0]
        if part is not None:
            out.write_bytes(self.services.assets.read_bytes(part))
            return [Exported(preset, out.name, out, part.id)]
        if cues:
            out.write_text(to_srt(list(cues)), encoding="utf-8")
            return [Exported(preset, out.name, out, asset.id)]
        return []

    def store_zip(
        self, platform: str, files: list[Exported], request: ExportRequest, ctx: JobContext
    ) -> Any:
        """One ZIP per platform: the files, ``manifest.json`` and ``files.csv``."""
        rows = [f.row() for f in files]
        for row in rows:  # an A/B variant's ID and copy travel with its files (bulk upload)
            meta = self.services.assets.get(row["source_asset_id"]).meta
            row.update({k: meta.get(k) for k in ("variant", "headline", "cta") if meta.get(k)})
        table = io.StringIO()
        writer = csv.writer(table)
        columns = ["file", "placement", "width", "height", "duration_s", "passed"]
        writer.writerow([*columns, "variant", "headline", "cta"])
        for row in rows:
            writer.writerow(
                [row[c] if row[c] is not None else "" for c in columns]
                + [row.get(k, "") for k in ("variant", "headline", "cta")]
            )
        manifest = {
            "platform": platform,
            "job_id": ctx.job_id,
            "ai_generated": True,
            "sources": request.asset_ids,
            "presets_checked": presets.PRESETS[0].checked,
            "files": rows,
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for item in files:
                archive.write(item.path, item.name)
            archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
            archive.writestr("files.csv", table.getvalue())
        return self.services.assets.add_bytes(
            buffer.getvalue(),
            "export",
            ext="zip",
            name=ctx.t("asset.export", platform=platform, files=len(files)),
            job_id=ctx.job_id,
            parents=list(dict.fromkeys(f.source for f in files)),
            meta={"platform": platform, "files": rows, "ai_generated": True},
        )


def regenerable(asset: Any) -> bool:
    """A picture a model made from its prompt and seed alone, nothing drawn on it since (a
    variant's typeset copy or a face swap would be lost by generating it again)."""
    return bool(asset.model_ids and asset.prompt and asset.seed is not None and not asset.parents)


def keeps_layers(asset: Any, ratio: float) -> bool:
    """Whether a centred cover-crop to ``ratio`` keeps every typeset layer of the picture (an
    A/B variant's headline, price, button and logo, as its record places them)."""
    layers = asset.meta.get("layers") or []
    w, h = asset.width or 1, asset.height or 1
    if w / h > ratio:
        keep_w = h * ratio
        x0, y0, x1, y1 = (w - keep_w) / 2, 0, (w + keep_w) / 2, h
    else:
        keep_h = w / ratio
        x0, y0, x1, y1 = 0, (h - keep_h) / 2, w, (h + keep_h) / 2
    return all(
        x0 <= b[0] and y0 <= b[1] and b[2] <= x1 and b[3] <= y1
        for b in (layer["box"] for layer in layers)
    )


STUDIO_RENDERS = ("render_video", "render_multi_scene")  # they burn their own captions
CAPTION_MAX_S = 600.0  # of a video's sound heard for captions (the longest placement)
CAPTION_SIZE = (0.05, 0.03)  # captions' type as a share of the canvas's width: largest, least


def vertical(preset: Preset) -> bool:
    """A vertical video placement: captions burned in (Reels, Stories, TikTok, Shorts play
    muted by default)."""
    return preset.media == "video" and preset.ratio < 1


def safe_pixels(preset: Preset) -> tuple[int, int, int, int]:
    """The placement's safe zone in its canvas's pixels."""
    z, w, h = preset.safe, preset.width, preset.height
    return (
        int(z.left * w),
        int(z.top * h),
        int(w - z.right * w),
        int(h - z.bottom * h),
    )


def cover_box(box: list[int], asset: Any, preset: Preset) -> tuple[int, int, int, int]:
    """A box of ``asset``'s pixels where it lands in ``preset``'s canvas after the centred
    cover-crop (``ImageOps.fit``)."""
    w, h = asset.width or 1, asset.height or 1
    if w / h > preset.ratio:
        crop_w, crop_h = h * preset.ratio, h
    else:
        crop_w, crop_h = w, w / preset.ratio
    x0, y0, scale = (w - crop_w) / 2, (h - crop_h) / 2, preset.width / crop_w
    return tuple(  # type: ignore[return-value]
        round((v - (x0 if i % 2 == 0 else y0)) * scale) for i, v in enumerate(box)
    )


def caption_overlays(
    cues: list[Any], preset: Preset, stem: Path
) -> tuple[list[tuple[Path, int, int, float, float]], list[tuple[str, tuple[int, int, int, int]]]]:
    """Each cue as a PNG (white type, black outline) placed at the bottom of the safe zone,
    centred in it, its lines shrunk or wrapped to the zone's width; and the boxes drawn."""
    from PIL import Image

    from enfoads.core.pipelines import compose
    from enfoads.core.pipelines.subtitles import wrap

    if not cues:
        return [], []
    x0, _y0, x1, y1 = safe_pixels(preset)
    room = x1 - x0
    overlays, boxes = [], []
    for n, cue in enumerate(cues):
        words = " ".join(cue.lines).split()
        size = int(CAPTION_SIZE[0] * preset.width)
        while True:
            face = compose.font(size)
            outline = max(2, size // 14)

            pad = 2 * (outline + max(4, size // 5))

            def fits(text: str, face: Any = face, pad: int = pad) -> bool:
                return face.getlength(text) + pad <= room

            lines = [line.split() for line in cue.lines]
            if not all(fits(" ".join(line)) for line in lines):
                lines = [line.split() for line in wrap(words, fits)]
            if all(fits(" ".join(line)) for line in lines) and len(lines) <= 3:
                break
            if size <= int(CAPTION_SIZE[1] * preset.width):
                lines = lines[:3]
                break
            size = int(size * 0.9)
        sprite = compose.text_sprite(lines, size, (255, 255, 255), (0, 0, 0), outline)
        sh, sw = sprite.shape[:2]
        x, y = x0 + max(0, (room - sw) // 2), y1 - sh
        path = stem.with_name(f"{stem.name}-cue{n}.png")
        Image.fromarray(sprite, "RGBA").save(path)
        overlays.append((path, x, y, float(cue.start), float(cue.end)))
        boxes.append(("caption", (x, y, x + sw, y + sh)))
    return overlays, boxes


def kept(asset: Any, ratio: float) -> float:
    """The share of ``asset``'s picture a cover-crop to ``ratio`` keeps."""
    own = (asset.width or 1) / (asset.height or 1)
    return min(own, ratio) / max(own, ratio)


def locale(lang: str) -> str:
    """The captions' locale in a sidecar's name (Meta reads ``…es_ES.srt``)."""
    return {"es": "es_ES", "en": "en_US"}.get(lang, "es_ES")


# -- the checker --------------------------------------------------------------------------
def check_file(
    path: Path,
    preset: Preset,
    lang: str,
    captions: bool = True,
    texts: list[tuple[str, tuple[int, int, int, int]]] = (),
) -> list[str]:
    """What keeps ``path`` from passing ``preset`` (in ``lang``), or []: read back from the
    file itself (Pillow, PyAV), never from how it was made; and ``texts``, the text the
    studio put in the picture (a variant's copy, burned captions, in the file's pixels),
    checked against the placement's safe zone."""
    if path.suffix == ".srt":
        try:
            path.read_bytes().decode("utf-8")
            return []
        except UnicodeDecodeError:
            return [t("check.format", lang, got="SRT", platform=preset.platform, want="UTF-8")]
    failures = []
    size = path.stat().st_size
    if size > preset.max_bytes:
        failures.append(
            t(
                "check.bytes",
                lang,
                got_mb=size / 2**20,
                platform=preset.platform,
                max_mb=preset.max_bytes / 2**20,
            )
        )
    failures += _check_provenance(path, preset, lang)
    failures += _check_safe_zone(texts, preset, lang)
    if preset.media == "image":
        return failures + _check_image(path, preset, lang)
    failures += _check_video(path, preset, lang)
    if preset.captions == "sidecar" and not captions:
        failures.append(t("check.captions", lang, platform=preset.platform))
    return failures


def _check_provenance(path: Path, preset: Preset, lang: str) -> list[str]:
    """A C2PA manifest that validates (the platforms label AI content from it), and the same
    digital source type in the file's XMP (what IPTC readers see)."""
    ext = path.suffix.lstrip(".")
    report = provenance.read(path, ext)
    if report.state == "none":
        return [t("check.no_provenance", lang, platform=preset.platform)]
    if report.state == "invalid":
        return [t("check.bad_provenance", lang, problems=", ".join(report.problems) or "?")]
    said = provenance.xmp_source(path, ext)
    if report.source_type and said != report.source_type:
        return [t("check.xmp_source", lang, want=report.source_type, got=said or "—")]
    return []


def _check_safe_zone(
    texts: list[tuple[str, tuple[int, int, int, int]]] | tuple, preset: Preset, lang: str
) -> list[str]:
    """Each known text inside the placement's safe zone (the platform's buttons and captions
    cover the rest), or which band it enters."""
    x0, y0, x1, y1 = safe_pixels(preset)
    failures = []
    for role, (bx0, by0, bx1, by1) in texts:
        bands = [
            side
            for side, out in (
                ("top", by0 < y0),
                ("bottom", by1 > y1),
                ("left", bx0 < x0),
                ("right", bx1 > x1),
            )
            if out
        ]
        if bands:
            failures.append(
                t(
                    "check.unsafe_text",
                    lang,
                    what=t(f"check.text.{role}", lang),
                    bands=", ".join(t(f"check.band.{b}", lang) for b in bands),
                    placement=preset.key,
                )
            )
    return failures


def _check_image(path: Path, preset: Preset, lang: str) -> list[str]:
    try:
        with Image.open(path) as image:
            fmt, got = image.format, image.size
    except (OSError, ValueError, SyntaxError):
        return [t("check.format", lang, got="?", platform=preset.platform, want="JPEG/PNG")]
    failures = []
    if fmt not in ("JPEG", "PNG"):
        failures.append(t("check.format", lang, got=fmt, platform=preset.platform, want="JPEG/PNG"))
    if got != (preset.width, preset.height):
        failures.append(_canvas(got, preset, lang))
    return failures


def _canvas(got: tuple[int, int], preset: Preset, lang: str) -> str:
    return t(
        "check.canvas",
        lang,
        got=f"{got[0]}×{got[1]}",
        platform=preset.platform,
        want=f"{preset.width}×{preset.height}",
    )


def _check_video(path: Path, preset: Preset, lang: str) -> list[str]:
    import av

    p = preset.platform
    try:
        with av.open(str(path)) as container:
            info = _video_facts(container)
    except (av.error.FFmpegError, OSError, StopIteration):  # type: ignore[attr-defined]
        return [t("check.format", lang, got="?", platform=p, want="MP4 H.264")]
    failures = []
    if (info["width"], info["height"]) != (preset.width, preset.height):
        failures.append(_canvas((info["width"], info["height"]), preset, lang))
    if not preset.min_s - 0.05 <= info["duration"] <= preset.max_s + 0.05:
        failures.append(
            t(
                "check.duration",
                lang,
                got=round(info["duration"], 1),
                platform=p,
                min_s=preset.min_s,
                max_s=preset.max_s,
            )
        )
    if info["codec"] != "h264" or info["profile"] != "High" or info["pix_fmt"] != "yuv420p":
        got = f"{info['codec']} {info['profile']} {info['pix_fmt']}"
        failures.append(t("check.codec", lang, got=got, platform=p))
    if not info["cfr"] or round(info["fps"]) != presets.VIDEO_FPS:
        failures.append(
            t("check.fps", lang, got=round(info["fps"], 2), want=presets.VIDEO_FPS, platform=p)
        )
    if info["gop"] > presets.GOP_FRAMES:
        failures.append(t("check.gop", lang, got=info["gop"], want=presets.GOP_FRAMES))
    audio = info["audio"]
    if audio != ("aac", presets.AUDIO_RATE, 2):
        failures.append(t("check.audio", lang, got=" ".join(map(str, audio or ("—",))), platform=p))
    if not faststart(path):
        failures.append(t("check.faststart", lang))
    return failures


def _video_facts(container: Any) -> dict[str, Any]:
    """Size, codec, profile, pixel format, frame rate (and whether it is constant), the
    longest keyframe interval and the audio, from the file's packets."""
    video = container.streams.video[0]
    stamps, gop, since_key = [], 0, 0
    for packet in container.demux(video):
        if packet.pts is None:
            continue
        since_key = 0 if packet.is_keyframe else since_key + 1
        gop = max(gop, since_key + 1)
        stamps.append(packet.pts)
    stamps.sort()  # B-frames come in decode order: presentation times, in order
    steps = {b - a for a, b in zip(stamps, stamps[1:])}
    step = Fraction(min(steps)) * video.time_base if steps else Fraction(0)
    audio = None
    if container.streams.audio:
        a = container.streams.audio[0].codec_context
        audio = (a.name, a.sample_rate, a.channels)
    ctx = video.codec_context
    duration = float(container.duration / 1_000_000) if container.duration else 0.0
    return {
        "width": ctx.width,
        "height": ctx.height,
        "codec": ctx.name,
        "profile": ctx.profile,
        "pix_fmt": ctx.pix_fmt,
        "fps": float(1 / step) if step else 0.0,
        "cfr": len(steps) == 1,  # one step between every two frames: a constant rate
        "gop": gop,
        "audio": audio,
        "duration": duration,
    }


def faststart(path: Path) -> bool:
    """Whether the MP4's index (``moov``) comes before its media (``mdat``): a player can
    start before the whole file has arrived."""
    with open(path, "rb") as fh:
        while True:
            header = fh.read(8)
            if len(header) < 8:
                return False
            size, kind = int.from_bytes(header[:4], "big"), header[4:]
            if kind == b"moov":
                return True
            if kind == b"mdat":
                return False
            if size == 1:
                size = int.from_bytes(fh.read(8), "big") - 8
            fh.seek(size - 8, 1)
