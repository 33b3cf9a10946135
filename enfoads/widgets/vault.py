"""BrandVault: the asset library (filter, search, preview, tag, download, delete) and the
brand kit (logo, colours, font, call to action) the other panels use."""

from __future__ import annotations

import html

from typing import Any

import ipywidgets as w

from enfoads.core.assets import ASSET_KINDS
from enfoads.core.i18n import t
from enfoads.core.studio import Studio
from enfoads.widgets.common import AssetPicker, Message, asset_download
from enfoads.widgets.loop import subscribe
from enfoads.widgets.compat import tooltip


def as_hex(colour: str) -> str:
    """``#RRGGBB`` for any colour a ColorPicker accepts (it also takes names like ``red``)."""
    from PIL import ImageColor

    return "#{:02X}{:02X}{:02X}".format(*ImageColor.getrgb(colour)[:3])


class BrandKitEditor(w.VBox):
    def __init__(self, studio: Studio):
        self.studio = studio
        lang = self.lang = studio.settings.language
        kit = studio.brand_kit()
        wide = {"description_width": "initial"}
        self.logo = AssetPicker(studio, t("ui.kit.logo", lang), kinds=("logo", "image"),
                                upload_kind="logo", optional=True)  # fmt: skip
        if kit["logo_asset_id"]:
            self.logo.value = kit["logo_asset_id"]
        colours = (kit.get("colours") or ["#111111", "#FFD400"]) + ["#FFFFFF"]
        self.primary = w.ColorPicker(value=colours[0], description=t("ui.kit.primary", lang), style=wide)
        self.accent = w.ColorPicker(value=colours[1], description=t("ui.kit.accent", lang), style=wide)
        self.font = AssetPicker(studio, t("ui.kit.font", lang), kinds=("font",), upload_kind="font",
                                accept=".ttf,.otf", optional=True)  # fmt: skip
        if kit["font_asset_id"]:
            self.font.value = kit["font_asset_id"]
        self.on_saved = None  # set by the app: (kit) -> None
        self.cta = w.Text(value=kit.get("cta", ""), description=t("ui.kit.cta", lang), style=wide)
        self.save = w.Button(description=t("ui.kit.save", lang), icon="save")
        self.message = Message()
        self.save.on_click(lambda _b: self.store())
        super().__init__([w.HTML(f"<b>{html.escape(t('ui.kit.title', lang))}</b>"), self.logo,
                          w.HBox([self.primary, self.accent]), self.font, self.cta, self.save,
                          self.message])  # fmt: skip

    def store(self) -> None:
        try:
            kit = self.studio.save_brand_kit(
                logo_asset_id=self.logo.value, font_asset_id=self.font.value, cta=self.cta.value,
                colours=[as_hex(self.primary.value), as_hex(self.accent.value)])  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        self.message.show(t("ui.kit.saved", self.lang), "ok")
        if self.on_saved is not None:
            self.on_saved(kit)


class VaultPanel(w.VBox):
    def __init__(self, studio: Studio, page_size: int = 24):
        self.studio = studio
        lang = self.lang = studio.settings.language
        self.page_size = page_size
        kinds = [(t(f"kind.{k}", lang), k) for k in ASSET_KINDS]
        self.kind = w.Dropdown(options=[(t("ui.all", lang), ""), *kinds],
                               value="", description=t("ui.kind", lang))  # fmt: skip
        self.search = w.Text(description=t("ui.search", lang))
        self.refresh_button = w.Button(description=t("ui.refresh", lang), icon="refresh")
        self.count = w.Label("")
        self.message = Message()
        self.grid = w.GridBox(layout=w.Layout(grid_template_columns="repeat(4, 190px)"))
        self.preview = w.VBox()
        self.kit = BrandKitEditor(studio)
        self.on_use_in_video = None  # set by the app: (asset_id) -> None
        self._pending_delete: str | None = None
        self.kind.observe(lambda _c: self.refresh(), "value")
        self.search.observe(lambda _c: self.refresh(), "value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        super().__init__([w.HBox([self.kind, self.search, self.refresh_button]), self.count,
                          self.message, self.preview, self.grid, self.kit])  # fmt: skip
        self._unsubscribe = [subscribe(studio, lambda _e: self.refresh(), name)
                             for name in ("asset_added", "asset_updated", "asset_deleted")]  # fmt: skip
        self.refresh()

    def refresh(self) -> None:
        page = self.studio.list_assets(kind=self.kind.value or None,
                                       text=self.search.value or None, limit=self.page_size)  # fmt: skip
        self.count.value = t("ui.count", self.lang, total=page.total)
        self.grid.children = tuple(self._card(a) for a in page.items)

    def _card(self, asset: Any) -> w.Widget:
        thumb = self.studio.assets.thumbnail_path(asset) if asset.has_thumbnail else None
        picture = (w.Image(value=thumb.read_bytes(), format="jpeg", layout=w.Layout(width="180px"))
                   if thumb else w.Label(t(f"kind.{asset.kind}", self.lang)))  # fmt: skip
        delete = w.Button(description=t("ui.delete", self.lang), icon="trash",
                          layout=w.Layout(width="104px"))  # fmt: skip
        delete.on_click(lambda _b, a=asset: self.delete(a.id, a.name or a.id))
        show = w.Button(description=t("ui.preview", self.lang), icon="eye", layout=w.Layout(width="72px"))
        show.on_click(lambda _b, a=asset: self.show(a.id))
        name = asset.name or asset.id
        tags = ", ".join(asset.tags)
        if asset.meta.get("commercial_use") is False:
            tags = "⚖ " + t("ui.non_commercial", self.lang) + (f" · {tags}" if tags else "")
        return w.VBox([picture, w.Label(name[:28], **tooltip(name)), w.Label(tags[:28], **tooltip(tags)),
                       w.HBox([show, delete])])  # fmt: skip

    def show(self, asset_id: str) -> None:
        """A larger preview with download, tags and actions."""
        asset = self.studio.get_asset(asset_id)
        data = self.studio.assets.read_bytes(asset)
        if asset.ext in ("png", "jpg", "webp", "gif"):
            view: w.Widget = w.Image(value=data, format=asset.ext, layout=w.Layout(max_width="420px"))
        elif asset.ext in ("mp4", "webm"):
            view = w.Video(value=data, format=asset.ext, autoplay=False, layout=w.Layout(max_width="360px"))
        elif asset.ext in ("wav", "mp3", "ogg"):
            view = w.Audio(value=data, format=asset.ext, autoplay=False)
        else:
            view = w.HTML(f"<pre>{html.escape(data[:2000].decode(errors='replace'))}</pre>")
        tag = w.Text(placeholder=t("ui.tag_placeholder", self.lang), layout=w.Layout(width="200px"))
        add = w.Button(description=t("ui.tag", self.lang), icon="tag")
        add.on_click(lambda _b: self.add_tag(asset_id, tag.value))
        extra = []
        if asset.ext in ("png", "jpg", "webp"):
            avatar = w.Button(description=t("ui.use_avatar", self.lang), icon="user")
            avatar.on_click(lambda _b: self.use_as_avatar(asset_id))
            video = w.Button(description=t("ui.use_video", self.lang), icon="film")
            video.on_click(lambda _b: self.on_use_in_video and self.on_use_in_video(asset_id))
            extra = [avatar, video]
        info = f"{asset.id} · {t(f'kind.{asset.kind}', self.lang)} · {asset.size_bytes // 1024} KB"
        if asset.meta.get("commercial_use") is False:
            info += " · ⚖ " + t("ui.non_commercial", self.lang)
        self.preview.children = (view, w.Label(info),
                                 w.HTML(asset_download(self.studio, asset_id, t("ui.download", self.lang))),
                                 w.HBox([tag, add, *extra]))  # fmt: skip

    def add_tag(self, asset_id: str, tag: str) -> None:
        try:
            self.studio.tag_asset(asset_id, add=(tag.strip(),))
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        self.refresh()
        self.message.show(t("ui.tagged", self.lang, tag=tag.strip()), "ok")

    def use_as_avatar(self, asset_id: str) -> None:
        try:
            self.studio.use_as_avatar(asset_id)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        self.refresh()
        self.message.show(t("ui.avatar_ready", self.lang), "ok")

    def delete(self, asset_id: str, name: str) -> None:
        """First click asks, the second deletes."""
        if self._pending_delete != asset_id:
            self._pending_delete = asset_id
            self.message.show(t("ui.confirm_delete", self.lang, name=name), "info")
            return
        self._pending_delete = None
        try:
            self.studio.delete_asset(asset_id)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        self.preview.children = ()
        self.message.show(t("ui.deleted", self.lang, name=name), "ok")
