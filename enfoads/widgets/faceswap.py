"""Face Swap: source and target (image or video) from an upload or the vault, numbered faces,
result, licence."""

from __future__ import annotations

import html
import io
from typing import Any

import ipywidgets as w

from enfoads.core.api import StudioAPI
from enfoads.core.i18n import t
from enfoads.core.inventory import licence_label
from enfoads.core.media import VIDEO_EXTS
from enfoads.widgets.common import (
    AssetPicker,
    Downloads,
    JobProgress,
    Message,
    icon,
    thumbnail,
)


def numbered_boxes(image_bytes: bytes, faces: list[dict[str, Any]]) -> bytes:
    """The picture with each detected face boxed and numbered (left to right), as PNG."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    draw = ImageDraw.Draw(image)
    # Sized for the 640 px preview, whatever the picture's own size.
    scale = max(image.size) / 640
    font = ImageFont.load_default(max(16, round(26 * scale)))
    for face in faces:
        x0, y0, x1, y1 = face["box"]
        draw.rectangle((x0, y0, x1, y1), outline=(255, 212, 0), width=max(2, round(3 * scale)))
        label = f"#{face['index']}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        pad = round(4 * scale)
        tag_h = bottom - top + 2 * pad
        ty = y0 - tag_h if y0 >= tag_h else y0  # above the box, or inside it at the top edge
        draw.rectangle((x0, ty, x0 + right - left + 2 * pad, ty + tag_h), fill=(255, 212, 0))
        draw.text((x0 + pad - left, ty + pad - top), label, fill=(0, 0, 0), font=font)
    out = io.BytesIO()
    image.thumbnail((640, 640))
    image.save(out, "PNG")
    return out.getvalue()


class FaceSwapPanel(w.VBox):
    def __init__(self, studio: StudioAPI):
        self.studio = studio
        lang = self.lang = studio.settings.language
        licence = studio.faceswap_licence()
        self.notice = w.HTML(
            f'<div style="background:#fff4e5;padding:8px;border-left:4px solid '
            f'#b06000">{icon("balance-scale")} {html.escape(licence["notice"])}<br><small>'
            f"{html.escape(licence_label({**licence, 'model': 'InsightFace'}, lang))}</small></div>"
        )
        self.accept = w.Checkbox(
            value=bool(licence["accepted"]),
            indent=False,
            description=t("ui.swap.accept", lang),
            layout=w.Layout(width="auto"),
        )
        self.accept.observe(lambda c: self._accept(c["new"]), "value")
        # Nothing chosen until the user chooses: a face is never taken from the newest picture.
        self.source = AssetPicker(studio, t("ui.swap.source", lang), optional=True)
        self.target = AssetPicker(
            studio,
            t("ui.swap.target", lang),
            kinds=("image", "video"),
            accept="image/*,video/mp4,video/webm",
            optional=True,
        )
        self.detect = w.Button(description=t("ui.swap.detect", lang), icon="search")
        self.source_face = w.Dropdown(
            options=[(t("ui.swap.largest", lang), "largest")],
            description=t("ui.swap.source_face", lang),
            style={"description_width": "initial"},
        )
        self.face = w.Dropdown(
            options=[(t("ui.swap.largest", lang), "largest")],
            description=t("ui.swap.face", lang),
            style={"description_width": "initial"},
        )
        self.source_preview = w.Image(
            format="png", layout=w.Layout(max_width="300px", display="none")
        )
        self.preview = w.Image(format="png", layout=w.Layout(max_width="420px", display="none"))
        self.swap = w.Button(
            description=t("ui.swap.run", lang),
            button_style="primary",
            icon="exchange",
            disabled=not licence["accepted"],
        )
        self.message = Message()
        self.progress = JobProgress(studio, self._finished)
        self.progress.on_retry = lambda: setattr(self.swap, "disabled", True)
        self.result = w.VBox()
        self.detect.on_click(lambda _b: self.find_faces())
        self.target.on_change(lambda _v: self.forget_faces())
        self.source.on_change(lambda _v: self.forget_source_faces())
        self.swap.on_click(lambda _b: self.start())
        super().__init__(
            [
                self.notice,
                self.accept,
                self.source,
                self.target,
                w.HBox([self.detect, self.source_face, self.face]),
                w.HBox([self.source_preview, self.preview]),
                self.swap,
                self.message,
                self.progress,
                self.result,
            ]
        )

    def _accept(self, value: bool) -> None:
        self.studio.update_settings(faceswap_licence_accepted=bool(value))
        self.swap.disabled = not value

    def forget_faces(self) -> None:
        """Another target: the numbered boxes and face choices of the last one no longer apply."""
        self.preview.layout.display = "none"
        self.face.options = [(t("ui.swap.largest", self.lang), "largest")]

    def forget_source_faces(self) -> None:
        self.source_preview.layout.display = "none"
        self.source_face.options = [(t("ui.swap.largest", self.lang), "largest")]

    def choices(self, faces: list[dict[str, Any]], allow_all: bool) -> list[tuple[str, str]]:
        return (
            [(t("ui.swap.largest", self.lang), "largest")]
            + [(f"#{f['index']} ({f['score']:.2f})", str(f["index"])) for f in faces]
            + ([(t("ui.swap.all", self.lang), "all")] if allow_all and len(faces) > 1 else [])
        )

    def find_faces(self) -> None:
        """Number the faces of the target (which to replace) and of the source (which to use)."""
        if not self.target.value:
            self.message.show(t("ui.swap.pick_target", self.lang), "error")
            return
        try:
            faces = self.studio.detect_faces(self.target.value)["faces"]
            source = (
                self.studio.detect_faces(self.source.value)["faces"] if self.source.value else None
            )
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        self.preview.value = numbered_boxes(self.target_picture(), faces)
        self.preview.layout.display = ""
        self.face.options = self.choices(faces, allow_all=True)
        text = t("ui.swap.found", self.lang, n=len(faces))
        if source is not None:
            picture = self.studio.asset_bytes(self.source.value)
            self.source_preview.value = numbered_boxes(picture, source)
            self.source_preview.layout.display = ""
            self.source_face.options = self.choices(source, allow_all=False)
            text += " " + t("ui.swap.found_source", self.lang, n=len(source))
        self.message.show(text, "ok" if faces and source != [] else "error")

    def target_is_video(self) -> bool:
        return self.studio.get_asset(self.target.value).ext in VIDEO_EXTS  # as the pipeline decides

    def target_picture(self) -> bytes:
        """The target image's bytes; for a video, its first frame (where faces are numbered)."""
        if not self.target_is_video():
            return self.studio.asset_bytes(self.target.value)
        out = io.BytesIO()
        self.studio.first_frame(self.target.value).save(out, "PNG")
        return out.getvalue()

    def start(self) -> None:
        if not (self.source.value and self.target.value):
            self.message.show(t("ui.swap.pick_both", self.lang), "error")
            return
        face, source_face = (
            int(c) if c.isdigit() else c for c in (self.face.value, self.source_face.value)
        )
        if self.target_is_video():  # every frame, the audio kept
            submit = lambda: self.studio.swap_faces_video(  # noqa: E731
                source_asset_id=self.source.value,
                video_asset_id=self.target.value,
                source_face=source_face,
                target_face=face,
            )
        else:
            submit = lambda: self.studio.swap_faces(  # noqa: E731
                source_asset_id=self.source.value,
                target_asset_id=self.target.value,
                source_face=source_face,
                target_face=face,
            )
        self.progress.start(submit, self.message, self.swap)

    def _finished(self, job: dict[str, Any]) -> None:
        self.swap.disabled = not self.accept.value
        if self.message.show_failure(job, self.lang):
            return
        result = job["result"]
        asset_id = result["asset_id"]
        download = Downloads(self.studio, [(asset_id, t("ui.download", self.lang))])
        if "frames" in result:  # a video
            self.message.show(
                t(
                    "ui.swap.done_video",
                    self.lang,
                    n=result["frames_swapped"],
                    total=result["frames"],
                ),
                "ok",
            )
            player = w.Video(
                value=self.studio.asset_bytes(asset_id),
                format="mp4",
                autoplay=False,
                controls=True,
                layout=w.Layout(max_width="360px"),
            )
            self.result.children = (player, download)
            return
        similarity = [s["after"] for s in result.get("similarity", []) if s["after"] is not None]
        text = t("ui.swap.done", self.lang, n=len(result["target_faces"]))
        if similarity:
            text += " " + t("ui.swap.similarity", self.lang, value=max(similarity))
        self.message.show(text, "ok")
        self.result.children = (thumbnail(self.studio, asset_id, "320px"), download)
