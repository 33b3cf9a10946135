"""Creador de anuncios / Ad Creator: prompt, magic prompt, style, placements, generate, gallery."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from enfoads.core.api import StudioAPI
from enfoads.core.i18n import CATALOG, t
from enfoads.widgets.common import Downloads, JobProgress, Message
from enfoads.widgets.compat import tooltip


class PlacementToggles(w.HBox):
    """Formats as toggle buttons: click to add or remove one (no Ctrl-click)."""

    def __init__(
        self, options: list[tuple[str, str]], value: tuple[str, ...] = ("1:1",), help_text: str = ""
    ):
        self.options = options
        self.buttons = {
            key: w.ToggleButton(
                description=label,
                value=key in value,
                tooltip=help_text,
                icon="check" if key in value else "",
            )
            for label, key in options
        }
        for button in self.buttons.values():
            button.observe(
                lambda c, b=button: setattr(b, "icon", "check" if c["new"] else ""), "value"
            )
        super().__init__(list(self.buttons.values()))

    @property
    def value(self) -> tuple[str, ...]:
        return tuple(key for key, button in self.buttons.items() if button.value)

    @value.setter
    def value(self, keys: tuple[str, ...]) -> None:
        for key, button in self.buttons.items():
            button.value = key in keys


class AdCreatorPanel(w.VBox):
    def __init__(self, studio: StudioAPI, on_action: Callable[[str, str], Any] | None = None):
        self.studio = studio
        self.on_action = on_action
        lang = self.lang = studio.settings.language
        options = studio.image_options()
        self.prompt = w.Textarea(
            description=t("ui.prompt", lang),
            placeholder=t("ui.prompt.placeholder", lang),
            layout=w.Layout(width="95%", height="70px"),
            style={"description_width": "initial"},
        )
        self.magic = w.Button(
            description=t("ui.magic", lang), icon="magic", tooltip=t("ui.magic_help", lang)
        )
        self.enhanced = w.Textarea(
            description=t("ui.enhanced", lang),
            layout=w.Layout(width="95%", height="90px"),
            style={"description_width": "initial"},
        )
        self.style = w.Dropdown(
            options=[(label, key) for key, label in options["styles"].items()],
            value="none",
            description=t("ui.style", lang),
        )
        named = [
            (f"{a} · {t(f'placement.{a}', lang)}" if f"placement.{a}" in CATALOG else a, a)
            for a in options["aspects"]
        ]
        self.placements = PlacementToggles(named, ("1:1",), t("ui.placements_help", lang))
        # A new variation every time unless the user asks to repeat one (by its number, shown
        # under each result); typing a number ticks the box.
        self.repeat = w.Checkbox(
            value=False,
            indent=False,
            description=t("ui.seed_repeat", lang),
            layout=w.Layout(width="auto"),
            **tooltip(t("ui.seed_help", lang)),
        )
        self.seed = w.BoundedIntText(
            value=0,
            min=0,
            max=2**32 - 1,
            description=t("ui.seed", lang),
            style={"description_width": "initial"},
            layout=w.Layout(width="220px"),
        )
        self.seed.observe(lambda _c: setattr(self.repeat, "value", True), "value")
        self.batch = w.IntSlider(
            value=1,
            min=1,
            max=options["max_batch"],
            description=t("ui.batch", lang),
            style={"description_width": "initial"},
        )
        self.generate = w.Button(
            description=t("ui.generate", lang), button_style="primary", icon="magic"
        )
        self.message = Message()
        self.progress = JobProgress(studio, self._finished)
        self.progress.on_retry = lambda: setattr(self.generate, "disabled", True)
        self.gallery = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self._magic_text = ""  # the magic prompt's last preview (for the first placement)
        self.magic.on_click(lambda _b: self.enhance())
        self.generate.on_click(lambda _b: self.start())
        super().__init__(
            [
                self.prompt,
                w.HBox([self.magic]),
                self.enhanced,
                self.style,
                w.HTML(f"<b>{html.escape(t('ui.placements', lang))}</b>"),
                self.placements,
                w.HBox([self.repeat, self.seed, self.batch]),
                self.generate,
                self.message,
                self.progress,
                self.gallery,
            ]
        )

    def enhance(self) -> None:
        try:
            placement = self.placements.value[0] if self.placements.value else None
            result = self.studio.enhance_prompt(
                self.prompt.value, style=self.style.value, placement=placement
            )
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        self.enhanced.value = self._magic_text = result.enhanced
        self.message.show(" ".join(result.notices), "info")

    def start(self) -> None:
        params: dict[str, Any] = dict(
            prompt=self.prompt.value,
            style=self.style.value,
            placements=list(self.placements.value),
            num_images=self.batch.value,
            seed=self.seed.value if self.repeat.value else None,
        )
        edited = self.enhanced.value.strip()
        if edited and edited != self._magic_text:
            params["enhanced_prompt"] = edited  # the user's own words: sent as they are
        else:  # previewed or not: composed in the job for every placement (Spanish translated)
            params["magic_prompt"] = True
        self.progress.start(
            lambda: self.studio.generate_images(**params), self.message, self.generate
        )

    def _finished(self, job: dict[str, Any]) -> None:
        self.generate.disabled = False
        if self.message.show_failure(job, self.lang):
            return
        images = job["result"].get("images", [])
        cards = [self._card(info) for info in images]
        self.gallery.children = tuple(cards) + self.gallery.children
        self.message.show(
            t("ui.done", self.lang, n=len(images), seed=job["result"].get("seed")), "ok"
        )

    def _card(self, info: dict[str, Any]) -> w.Widget:
        """A result: thumbnail, keep, download, use as avatar, use in a video."""
        asset_id = info["asset_id"]
        thumb = self.studio.thumbnail_path(asset_id)
        keep = w.Button(description=t("ui.keep", self.lang), icon="star")
        keep.on_click(lambda _b: self.act("keep", asset_id, keep))
        avatar = w.Button(description=t("ui.avatar_short", self.lang), icon="user")
        avatar.on_click(lambda _b: self.act("use_avatar", asset_id, avatar))
        video = w.Button(description=t("ui.video_short", self.lang), icon="film")
        video.on_click(lambda _b: self.act("use_video", asset_id, video))
        return w.VBox(
            [
                w.Image(value=thumb.read_bytes(), format="jpeg", layout=w.Layout(width="180px")),
                w.Label(f"{info['placement']} · {info['seed']}"),
                w.HBox([keep, avatar]),
                w.HBox([video]),
                Downloads(self.studio, [(asset_id, t("ui.download", self.lang))]),
            ]
        )

    def act(self, action: str, asset_id: str, button: w.Button) -> None:
        try:
            if action == "keep":
                self.studio.tag_asset(asset_id, add=(t("ui.kept_tag", self.lang),))
            elif self.on_action is not None:
                self.on_action(action, asset_id)
            else:
                if action == "use_avatar":
                    self.studio.use_as_avatar(asset_id)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        button.button_style = "success"
        self.message.show(t(f"ui.done_{action}", self.lang), "ok")
