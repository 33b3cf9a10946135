"""BrandVault: the asset library (filter, search, preview, tag, download, delete) and the
brand kit (logo, colours, font, call to action) the other panels use."""

from __future__ import annotations

import html
import logging
from typing import Any

import ipywidgets as w

from enfoads.core import brand
from enfoads.core.api import StudioAPI
from enfoads.core.assets import UPLOAD_KINDS, written_kinds
from enfoads.core.i18n import kind_name, t
from enfoads.widgets.common import (
    AssetPicker,
    Downloads,
    Message,
    close_tree,
    close_tree_children,
    icon,
    thumbnail,
)
from enfoads.widgets.compat import tooltip
from enfoads.widgets.loop import subscribe_refresh

log = logging.getLogger(__name__)


def as_hex(colour: str) -> str:
    """``#RRGGBB`` for any colour a ColorPicker accepts (it also takes names like ``red``)."""
    from PIL import ImageColor

    return "#{:02X}{:02X}{:02X}".format(*ImageColor.getrgb(colour)[:3])


class BrandKitEditor(w.VBox):
    def __init__(self, studio: StudioAPI):
        self.studio = studio
        lang = self.lang = studio.settings.language
        kit = studio.brand_kit()
        wide = {"description_width": "initial"}
        self.logo = AssetPicker(
            studio,
            t("ui.kit.logo", lang),
            kinds=("logo", "image"),
            upload_kind="logo",
            optional=True,
        )
        if kit["logo_asset_id"]:
            self.logo.value = kit["logo_asset_id"]
        colours = [*(kit.get("colours") or brand.DEFAULT_COLOURS), brand.TEXT_COLOUR]
        self.primary = w.ColorPicker(
            value=colours[0], description=t("ui.kit.primary", lang), style=wide
        )
        self.accent = w.ColorPicker(
            value=colours[1], description=t("ui.kit.accent", lang), style=wide
        )
        self.font = AssetPicker(
            studio,
            t("ui.kit.font", lang),
            kinds=("font",),
            upload_kind="font",
            accept=".ttf,.otf",
            optional=True,
        )
        if kit["font_asset_id"]:
            self.font.value = kit["font_asset_id"]
        self.on_saved = None  # set by the app: (kit) -> None
        self.cta = w.Text(value=kit.get("cta", ""), description=t("ui.kit.cta", lang), style=wide)
        self.save = w.Button(description=t("ui.kit.save", lang), icon="save")
        self.message = Message()
        self.save.on_click(lambda _b: self.store())
        super().__init__(
            [
                w.HTML(f"<h4>{icon('paint-brush')} {html.escape(t('ui.kit.title', lang))}</h4>"),
                self.logo,
                w.HBox([self.primary, self.accent]),
                self.font,
                self.cta,
                self.save,
                self.message,
            ]
        )

    def reload(self) -> None:
        """The kit as stored (after the studio changed it: a deleted logo or font)."""
        kit = self.studio.brand_kit()
        self.logo.value = kit["logo_asset_id"] or ""
        self.font.value = kit["font_asset_id"] or ""
        self.cta.value = kit.get("cta", "")

    def store(self) -> None:
        try:
            kit = self.studio.save_brand_kit(
                logo_asset_id=self.logo.value,
                font_asset_id=self.font.value,
                cta=self.cta.value,
                colours=[as_hex(self.primary.value), as_hex(self.accent.value)],
            )
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        self.message.show(t("ui.kit.saved", self.lang), "ok")
        if self.on_saved is not None:
            self.on_saved(kit)


KIND_ICONS = {
    "image": "picture-o",
    "video": "film",
    "audio": "music",
    "avatar": "user",
    "logo": "certificate",
    "subtitle": "file-text-o",
    "font": "font",
}


class VaultPanel(w.VBox):
    """The brand kit on top; then search (accents and case ignored), kind, paging, and one
    card per asset with its own files grouped (a video's voice-over and subtitles)."""

    def __init__(self, studio: StudioAPI, page_size: int = 24):
        self.studio = studio
        lang = self.lang = studio.settings.language
        self.page_size = page_size
        self.page = 0
        kinds = [(kind_name(k, lang), k) for k in (*UPLOAD_KINDS, *written_kinds())]
        self.kind = w.Dropdown(
            options=[(t("ui.all", lang), ""), *kinds], value="", description=t("ui.kind", lang)
        )
        self.search = w.Text(
            description=t("ui.search", lang), placeholder=t("ui.search_placeholder", lang)
        )
        self.inputs = w.Checkbox(
            value=False,
            indent=False,
            description=t("ui.show_inputs", lang),
            layout=w.Layout(width="auto"),
            **tooltip(t("ui.show_inputs_help", lang)),
        )
        self.refresh_button = w.Button(description=t("ui.refresh", lang), icon="refresh")
        self.count = w.Label("")
        self.message = Message()
        self.grid = w.GridBox()
        self.grid.add_class("enfoads-vault-grid")
        self.previous = w.Button(description=t("ui.page_prev", lang), icon="chevron-left")
        self.next = w.Button(description=t("ui.page_next", lang), icon="chevron-right")
        self.page_label = w.Label("")
        self.preview = w.VBox()
        self.kit = BrandKitEditor(studio)
        self.on_use_in_video = None  # set by the app: (asset_id) -> None
        self._pending_delete: str | None = None
        self.kind.observe(lambda _c: self.refresh(first_page=True), "value")
        self.search.observe(lambda _c: self.refresh(first_page=True), "value")
        self.inputs.observe(lambda _c: self.refresh(first_page=True), "value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.previous.on_click(lambda _b: self.turn(-1))
        self.next.on_click(lambda _b: self.turn(1))
        super().__init__(
            [
                self.kit,
                w.HTML("<hr>"),
                w.HBox([self.kind, self.search, self.inputs, self.refresh_button]),
                self.count,
                self.message,
                self.preview,
                self.grid,
                w.HBox([self.previous, self.page_label, self.next]),
            ]
        )
        self._cards: dict[str, tuple[Any, w.Widget]] = {}  # asset id: (what it shows, card)
        self._unsubscribe = subscribe_refresh(
            studio, self.refresh, ("asset_added", "asset_updated", "asset_deleted")
        )
        self.refresh()

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def turn(self, step: int) -> None:
        self.page = min(max(self.page + step, 0), self.pages - 1)
        self.refresh()

    def refresh(self, first_page: bool = False) -> None:
        if first_page:
            self.page = 0
        query = dict(
            kind=self.kind.value or None,
            text=self.search.value or None,
            grouped=True,
            inputs=self.inputs.value,
            limit=self.page_size,
        )
        try:
            page = self.studio.list_assets(offset=self.page * self.page_size, **query)
            if not page.items and self.page:  # the last page emptied (a delete): step back
                self.page = max(0, -(-page.total // self.page_size) - 1)
                page = self.studio.list_assets(offset=self.page * self.page_size, **query)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        self.total = page.total
        self.count.value = t("ui.count", self.lang, total=page.total)
        self.grid.children = self._cards_for(page)
        self.page_label.value = t("ui.page", self.lang, page=self.page + 1, pages=self.pages)
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1

    def _cards_for(self, page: Any) -> tuple[w.Widget, ...]:
        """The page's cards: one already drawn for the same asset, unchanged, is kept (its
        thumbnail is not sent again); the others are built, and cards that left are closed."""
        cards: dict[str, tuple[Any, w.Widget]] = {}
        for asset in page.items:
            shown = (asset, tuple(page.parts.get(asset.id, [])))
            old = self._cards.pop(asset.id, None)
            if old is not None and old[0] == shown:
                cards[asset.id] = old
            else:
                if old is not None:
                    close_tree(old[1])
                cards[asset.id] = (shown, self._card(*shown))
        for _shown, card in self._cards.values():
            close_tree(card)
        self._cards = cards
        return tuple(card for _shown, card in cards.values())

    def _card(self, asset: Any, parts: tuple[Any, ...]) -> w.Widget:
        thumb = self.studio.thumbnail_path(asset) if asset.has_thumbnail else None
        if thumb:
            picture: w.Widget = w.Image(value=thumb.read_bytes(), format="jpeg")
        else:
            picture = w.HTML(
                f'<span style="font-size:48px;color:#888">'
                f"{icon(KIND_ICONS.get(asset.kind, 'file-o'))}</span>"
            )
        frame = w.HBox([picture])
        frame.add_class("enfoads-thumb")
        delete = w.Button(description=t("ui.delete", self.lang), icon="trash")
        delete.on_click(lambda b, a=asset: self.delete(a.id, a.name or a.id, b))
        show = w.Button(description=t("ui.preview", self.lang), icon="eye")
        show.on_click(lambda _b, a=asset: self.show(a.id))
        name = asset.name or asset.id
        details = [kind_name(asset.kind, self.lang)]
        if parts:  # the video's own files, on its card
            details.append(" · ".join([asset.ext.upper()] + [p.ext.upper() for p in parts]))
        if asset.meta.get("commercial_use") is False:
            details.append(t("ui.non_commercial", self.lang))
        if asset.tags:
            details.append(", ".join(asset.tags))
        info = " · ".join(details)
        card = w.VBox(
            [
                frame,
                w.HTML(f'<b title="{html.escape(name)}">{html.escape(name)}</b>'),
                w.HTML(f'<small title="{html.escape(info)}">{html.escape(info)}</small>'),
                w.HBox([show, delete]),
            ]
        )
        card.add_class("enfoads-card")
        return card

    def show(self, asset_id: str) -> None:
        """A larger preview with downloads (the video's files too), tags and actions."""
        try:
            asset = self.studio.get_asset(asset_id)
            data = self.studio.asset_bytes(asset)
        except Exception as exc:  # noqa: BLE001 - shown to the user (deleted meanwhile)
            self.message.show_error(exc, self.lang)
            return
        if asset.ext in ("png", "jpg", "webp", "gif"):
            view: w.Widget = w.Image(
                value=data, format=asset.ext, layout=w.Layout(max_width="420px")
            )
        elif asset.ext in ("mp4", "webm"):
            view = w.Video(
                value=data, format=asset.ext, autoplay=False, layout=w.Layout(max_width="360px")
            )
        elif asset.ext in ("wav", "mp3", "ogg"):
            view = w.Audio(value=data, format=asset.ext, autoplay=False)
        elif asset.kind == "font":
            view = thumbnail(self.studio, asset.id, "320px")
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
        info = f"{kind_name(asset.kind, self.lang)} · {asset.size_bytes // 1024} KB"
        if asset.width:
            info += f" · {asset.width}×{asset.height}"
        if asset.meta.get("commercial_use") is False:
            info += " · " + t("ui.non_commercial", self.lang)
        elif asset.meta.get("commercial_use", True) is None:  # a licence not verified
            unsure = [
                r["model"] for r in asset.meta.get("licences", ()) if r["commercial_use"] is None
            ]
            info += " · " + t("ui.commercial_unverified", self.lang, models=", ".join(unsure))
        parts = self.studio.asset_parts(asset_id)
        files = [(asset_id, t("ui.download", self.lang) + f" {asset.ext.upper()}")]
        files += [(p.id, p.ext.upper()) for p in parts]
        close = w.Button(description=t("ui.close", self.lang), icon="times")
        close.on_click(lambda _b: self.close_preview())
        close_tree_children(self.preview)
        self.preview.children = (
            view,
            w.Label(info),
            Downloads(self.studio, files),
            w.HBox([tag, add, *extra, close]),
            *self.credentials(asset),
        )

    def credentials(self, asset: Any) -> list[w.Widget]:
        """What an ad platform will read of the file's making (its C2PA manifest)."""
        if asset.ext not in ("png", "jpg", "mp4", "wav"):
            return []
        try:
            said = self.studio.asset_provenance(asset.id, self.lang)
        except Exception as exc:  # noqa: BLE001 - the preview shows without it
            log.warning("provenance of %s unreadable: %s", asset.id, exc)
            return []
        mark = {"trusted": "✔", "valid": "✔", "invalid": "✘"}.get(said["state"], "·")
        return [w.Label(f"{mark} {said['summary']}", layout=w.Layout(flex_flow="row wrap"))]

    def close_preview(self) -> None:
        close_tree_children(self.preview)
        self.preview.children = ()

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

    def kit_role(self, asset_id: str) -> str | None:
        """``logo`` or ``font`` when the brand kit uses the asset."""
        kit = self.studio.brand_kit()
        for role in ("logo", "font"):
            if kit.get(f"{role}_asset_id") == asset_id:
                return role
        return None

    def delete(self, asset_id: str, name: str, button: w.Button | None = None) -> None:
        """First click asks on the button itself ("¿Borrar? Pulsa otra vez", red; saying so
        when the brand kit uses it), the second deletes; asking about another asset puts the
        first one's button back."""
        role = self.kit_role(asset_id)
        if self._pending_delete != asset_id:
            self._reset_delete_button()
            self._pending_delete = asset_id
            self._pending_button = button
            key = f"ui.confirm_delete_kit_{role}" if role else "ui.confirm_delete"
            if button is not None:
                button.description = t("ui.delete_confirm_short", self.lang)
                button.button_style = "danger"
                button.icon = "exclamation-triangle"
                button.tooltip = t(key, self.lang, name=name)
            self.message.show(t(key, self.lang, name=name), "info")
            return
        self._pending_delete = None
        self._pending_button = None
        try:
            self.studio.delete_asset(asset_id, confirm=role is not None)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.lang)
            return
        close_tree_children(self.preview)
        self.preview.children = ()
        if role is not None:
            self.kit.reload()
        self.message.show(t("ui.deleted", self.lang, name=name), "ok")

    def _reset_delete_button(self) -> None:
        button = getattr(self, "_pending_button", None)
        if button is not None:
            button.description = t("ui.delete", self.lang)
            button.button_style = ""
            button.icon = "trash"
            button.tooltip = ""
