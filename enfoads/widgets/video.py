"""Video Studio: script, voice with preview, avatar, subtitles, music, logo, aspect; scenes."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from enfoads.core import brand
from enfoads.core.api import StudioAPI
from enfoads.core.i18n import t
from enfoads.widgets.common import (
    AssetPicker,
    Downloads,
    JobProgress,
    Message,
    close_tree,
    close_tree_children,
    icon,
)
from enfoads.widgets.compat import tooltip
from enfoads.widgets.vault import as_hex


def voice_label(voice: dict[str, Any], lang: str) -> str:
    """A voice as people choose one (``voice_name``), marked when it downloads on first use."""
    from enfoads.core.pipelines.voice import voice_name

    label = voice_name(voice["key"], lang)
    if not voice["available"]:
        label += " · " + t("ui.video.to_download", lang)
    return label


class SceneRow(w.VBox):
    """One scene of a multi-scene ad, as a card: its number and order buttons on top, then
    each control with its own label (kind, picture or clip, script, length, motion,
    transition), wrapping to one per line on a phone."""

    def __init__(self, panel: VideoStudioPanel, asset_id: str | None = None, kind: str = "image"):
        lang = panel.lang
        self.panel = panel
        labelled = {"description_width": "initial"}
        self.kind = w.Dropdown(
            options=[(t(f"ui.video.kind.{k}", lang), k) for k in panel.choices["scene_kinds"]],
            value=kind,
            description=t("ui.video.scene_kind", lang),
            style=labelled,
            layout=w.Layout(width="200px"),
        )
        self.asset = w.Dropdown(
            description=t("ui.video.scene_asset", lang),
            style=labelled,
            layout=w.Layout(width="320px", max_width="100%"),
        )
        self.script = w.Textarea(
            placeholder=t("ui.video.scene_script", lang),
            description=t("ui.video.scene_script_label", lang),
            style=labelled,
            layout=w.Layout(width="420px", max_width="100%", height="56px"),
        )
        self.duration = w.BoundedFloatText(
            value=0,
            min=0,
            max=120,
            description=t("ui.video.scene_duration", lang),
            layout=w.Layout(width="200px"),
            **tooltip(t("ui.video.duration_help", lang)),
            style=labelled,
        )
        self.motion = w.Dropdown(
            options=[(t(f"ui.video.motion.{m}", lang), m) for m in panel.choices["motions"]],
            value="zoom_in",
            description=t("ui.video.scene_motion", lang),
            style=labelled,
            layout=w.Layout(width="260px"),
        )
        self.crossfade = w.Checkbox(
            value=False,
            description=t("ui.video.crossfade", lang),
            indent=False,
            layout=w.Layout(width="auto"),
        )
        buttons = []
        for glyph, action, tip in (
            ("arrow-up", -1, "ui.video.up"),
            ("arrow-down", 1, "ui.video.down"),
        ):
            button = w.Button(icon=glyph, tooltip=t(tip, lang), layout=w.Layout(width="36px"))
            button.add_class("enfoads-icon-button")
            button.on_click(lambda _b, a=action: panel.move_scene(self, a))
            buttons.append(button)
        remove = w.Button(icon="trash", tooltip=t("ui.delete", lang), layout=w.Layout(width="36px"))
        remove.add_class("enfoads-icon-button")
        remove.on_click(lambda _b: panel.remove_scene(self))
        self.kind.observe(lambda _c: self.refresh(), "value")
        self.title = w.HTML()
        super().__init__(
            [
                w.HBox([self.title, *buttons, remove]),
                w.HBox([self.kind, self.asset]),
                self.script,
                w.HBox([self.duration, self.motion, self.crossfade]),
            ]
        )
        self.add_class("enfoads-scene")
        self.refresh()
        if asset_id and asset_id in {v for _, v in self.asset.options}:
            self.asset.value = asset_id

    def number(self, n: int) -> None:
        self.title.value = f"<b>{html.escape(t('ui.video.scene_n', self.panel.lang, n=n))}</b>"

    def refresh(self) -> None:
        kind = self.kind.value
        query = {"video": {"kind": "video"}, "avatar": {"tag": "avatar"}}.get(kind, {})
        items = self.panel.studio.list_assets(limit=200, **query).items
        if kind == "image":
            items = [a for a in items if a.kind in ("image", "avatar", "logo")]
        current = self.asset.value
        self.asset.options = [(f"{a.name or a.id}"[:40], a.id) for a in items] or [("—", "")]
        if current in {v for _, v in self.asset.options}:
            self.asset.value = current

    def to_scene(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "asset_id": self.asset.value or "",
            "script": self.script.value,
            "motion": self.motion.value,
            "duration": self.duration.value or None,
            "transition": "crossfade" if self.crossfade.value else "cut",
        }


WIDE = {"description_width": "initial"}


class VideoStudioPanel(w.VBox):
    def __init__(self, studio: StudioAPI):
        self.studio = studio
        self.lang = studio.settings.language
        self.choices = studio.options("video")  # aspects, motions, scene kinds: the capability's
        self._voice_row(studio, self.lang)
        self._media_row(studio, self.lang)
        self._style_row(studio.brand_kit(), self.lang)
        self._action_row(studio, self.lang)
        self._lay_out(self.lang)

    def _voice_row(self, studio: StudioAPI, lang: str) -> None:
        """The script, its voice and speed, and the voice preview."""
        wide = WIDE
        self.script = w.Textarea(
            description=t("ui.video.script", lang),
            style=wide,
            placeholder=t("ui.video.script_placeholder", lang),
            layout=w.Layout(width="95%", height="90px"),
        )
        voices = studio.voices()
        self.voice = w.Dropdown(
            options=[(voice_label(v, lang), v["key"]) for v in voices],
            value=studio.settings.voice_default,
            style=wide,
            description=t("ui.video.voice", lang),
            **tooltip(t("ui.video.voice_help", lang)),
        )
        self.rate = w.FloatSlider(
            value=1.0,
            min=self.choices["rate"]["min"],  # the request model's range, from the capability
            max=self.choices["rate"]["max"],
            step=0.05,
            style=wide,
            description=t("ui.video.rate", lang),
        )
        self.preview = w.Button(description=t("ui.video.preview", lang), icon="play")
        self.player = w.Audio(autoplay=False, loop=False, layout=w.Layout(width="320px"))
        self.player.layout.display = "none"

    def _media_row(self, studio: StudioAPI, lang: str) -> None:
        """The avatar, music, logo and font pickers, the aspect and the animator."""
        wide = WIDE
        self.avatar = AssetPicker(
            studio,
            t("ui.video.avatar", lang),
            kinds=("image", "avatar"),
            tag="avatar",
            upload_kind="avatar",
        )
        self.music = AssetPicker(
            studio, t("ui.video.music", lang), kinds=("audio",), accept="audio/*", optional=True
        )
        self.logo = AssetPicker(
            studio,
            t("ui.video.logo", lang),
            kinds=("logo", "image"),
            upload_kind="logo",
            optional=True,
        )
        self.font = AssetPicker(
            studio,
            t("ui.video.font", lang),
            kinds=("font",),
            upload_kind="font",
            accept=".ttf,.otf",
            optional=True,
        )
        self.aspect = w.ToggleButtons(
            options=self.choices["aspects"],
            value="9:16",
            description=t("ui.video.aspect", lang),
            style=wide,
        )
        avatar = studio.options("avatar")  # the animators, and which one "auto" means here
        default = t(f"ui.video.animator.short.{avatar['default']}", lang)
        self.animator = w.Dropdown(
            options=[
                (t(f"ui.video.animator.{a}", lang, default=default), a) for a in avatar["animators"]
            ],
            value="auto",
            description=t("ui.video.animator", lang),
            style=wide,
            **tooltip(t("ui.video.animator_help", lang)),
        )

    def _style_row(self, kit: dict, lang: str) -> None:
        """The call to action, the subtitles' style (live contrast check), the brand kit."""
        wide = WIDE
        self.cta = w.Text(description=t("ui.video.cta", lang), style=wide)
        self.subtitles = w.Checkbox(value=True, description=t("ui.video.subtitles", lang))
        self.karaoke = w.Checkbox(value=False, description=t("ui.video.karaoke", lang))
        self.position = w.Dropdown(
            options=[(t(f"ui.video.pos.{p}", lang), p) for p in ("bottom", "middle", "top")],
            description=t("ui.video.position", lang),
        )
        self.text_colour = w.ColorPicker(
            value=brand.TEXT_COLOUR,
            description=t("ui.video.colour", lang),
            concise=False,
            style=wide,
        )
        self.highlight = w.ColorPicker(
            value=brand.HIGHLIGHT_COLOUR, description=t("ui.video.highlight", lang), style=wide
        )
        self.contrast = w.HTML()  # a live warning when the highlight would not show
        for picker in (self.text_colour, self.highlight):
            picker.observe(lambda _c: self.check_contrast(), "value")
        self.karaoke.observe(lambda _c: self.check_contrast(), "value")
        self.brand_colour = brand.BRAND_COLOUR  # the end card's background
        self.apply_kit(kit)

    def _action_row(self, studio: StudioAPI, lang: str) -> None:
        """Scenes, the render button, the job's progress and the result."""
        self.scenes = w.VBox()
        self.add_scene_button = w.Button(description=t("ui.video.add_scene", lang), icon="plus")
        self.render = w.Button(
            description=t("ui.video.render", lang), button_style="primary", icon="film"
        )
        self.message = Message()
        self.progress = JobProgress(studio, self._finished)
        self.progress.on_retry = lambda: setattr(self.render, "disabled", True)
        self.video = w.Video(
            format="mp4", autoplay=False, controls=True, layout=w.Layout(max_width="360px")
        )
        self.video.layout.display = "none"
        self.downloads = w.VBox()
        self.preview.on_click(lambda _b: self.preview_voice())
        self.add_scene_button.on_click(lambda _b: self.add_scene())
        self.render.on_click(lambda _b: self.start())

    def _lay_out(self, lang: str) -> None:
        super().__init__(
            [
                self.script,
                w.HBox([self.voice, self.rate]),
                w.HBox([self.preview, self.player]),
                self.avatar,
                self.music,
                self.logo,
                self.font,
                self.aspect,
                self.animator,
                self.cta,
                w.HBox([self.subtitles, self.karaoke, self.position]),
                w.HBox([self.text_colour, self.highlight]),
                self.contrast,
                w.HTML(
                    f"<b>{html.escape(t('ui.video.scenes', lang))}</b> "
                    f"<small>{html.escape(t('ui.video.scenes_help', lang))}</small>"
                ),
                self.scenes,
                self.add_scene_button,
                self.render,
                self.message,
                self.progress,
                self.video,
                self.downloads,
            ]
        )

    # -- scenes ---------------------------------------------------------------------------
    def add_scene(self, asset_id: str | None = None, kind: str = "image") -> SceneRow:
        row = SceneRow(self, asset_id, kind)
        self._set_scenes((*self.scenes.children, row))
        return row

    def remove_scene(self, row: SceneRow) -> None:
        self._set_scenes(tuple(r for r in self.scenes.children if r is not row))
        close_tree(row)

    def move_scene(self, row: SceneRow, step: int) -> None:
        rows = list(self.scenes.children)
        i = rows.index(row)
        j = min(max(i + step, 0), len(rows) - 1)
        rows[i], rows[j] = rows[j], rows[i]
        self._set_scenes(tuple(rows))

    def _set_scenes(self, rows: tuple[SceneRow, ...]) -> None:
        for n, row in enumerate(rows, 1):
            row.number(n)
        self.scenes.children = rows

    # -- actions --------------------------------------------------------------------------
    def preview_voice(self) -> None:
        try:
            result = self.studio.speak("", self.voice.value, preview=True, rate=self.rate.value)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        self.player.value = self.studio.asset_bytes(result["asset_id"])
        self.player.layout.display = ""

    def apply_kit(self, kit: dict[str, Any]) -> None:
        """The brand kit's logo, font, call to action and colours become this panel's defaults."""
        if kit.get("logo_asset_id"):
            self.logo.value = kit["logo_asset_id"]
        if kit.get("font_asset_id"):
            self.font.value = kit["font_asset_id"]
        if kit.get("cta"):
            self.cta.value = kit["cta"]
        colours = kit.get("colours") or []
        if colours:
            self.brand_colour = colours[0]
            self.highlight.value = colours[-1]

    def check_contrast(self) -> bool:
        """Warn (and say False) when the karaoke highlight is too like the text colour."""
        from enfoads.core.pipelines.compose import MIN_HIGHLIGHT_DELTA_E, colour_difference

        try:
            low = (
                colour_difference(as_hex(self.text_colour.value), as_hex(self.highlight.value))
                < MIN_HIGHLIGHT_DELTA_E
            )
        except ValueError:
            low = False  # a colour still being typed
        low = low and self.karaoke.value
        self.contrast.value = (
            f'<span style="color:#b06000">{icon("exclamation-triangle")} '
            f"{html.escape(t('ui.video.low_contrast', self.lang))}</span>"
            if low
            else ""
        )
        return not low

    def options(self) -> dict[str, Any]:
        return {
            "voice": self.voice.value,
            "rate": self.rate.value,
            "aspect": self.aspect.value,
            "music_asset_id": self.music.value,
            "logo_asset_id": self.logo.value,
            "cta": self.cta.value,
            "language": "auto",
            "brand_colour": self.brand_colour,
            "animator": self.animator.value,
            "subtitle_style": {
                "enabled": self.subtitles.value,
                "karaoke": self.karaoke.value,
                "position": self.position.value,
                "colour": as_hex(self.text_colour.value),
                "highlight_colour": as_hex(self.highlight.value),
                "font_asset_id": self.font.value,
            },
        }

    def start(self) -> None:
        def submit() -> Any:
            if self.scenes.children:
                scenes = [row.to_scene() for row in self.scenes.children]
                return self.studio.render_multi_scene(scenes=scenes, **self.options())
            return self.studio.render_video(
                script=self.script.value, avatar_asset_id=self.avatar.value or "", **self.options()
            )

        self.progress.start(submit, self.message, self.render)

    def _finished(self, job: dict[str, Any]) -> None:
        self.render.disabled = False
        if self.message.show_failure(job, self.lang):
            return
        result = job["result"]
        video_id = result["asset_id"]
        self.video.value = self.studio.asset_bytes(video_id)
        self.video.layout.display = ""
        files = [(video_id, "MP4")]
        for asset_id in job["result_asset_ids"][1:]:
            files.append((asset_id, self.studio.get_asset(asset_id).ext.upper()))
        close_tree_children(self.downloads)
        self.downloads.children = (Downloads(self.studio, files),)
        self.message.show(
            t("ui.video.done", self.lang, seconds=round(result["duration_s"], 1)), "ok"
        )
