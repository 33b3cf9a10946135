"""BrandVault: the asset library as a grid of thumbnails, with filter, search and delete."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from enfoads.core.assets import ASSET_KINDS
from enfoads.core.i18n import t
from enfoads.core.studio import Studio
from enfoads.widgets.common import Message


class VaultPanel(w.VBox):
    def __init__(self, studio: Studio, page_size: int = 24):
        self.studio = studio
        lang = self.lang = studio.settings.language
        self.page_size = page_size
        self.kind = w.Dropdown(options=[(t("ui.all", lang), "")] + [(k, k) for k in ASSET_KINDS],
                               value="", description=t("ui.kind", lang))  # fmt: skip
        self.search = w.Text(description=t("ui.search", lang))
        self.refresh_button = w.Button(description=t("ui.refresh", lang), icon="refresh")
        self.count = w.Label("")
        self.message = Message()
        self.grid = w.GridBox(layout=w.Layout(grid_template_columns="repeat(4, 190px)"))
        self._pending_delete: str | None = None
        self.kind.observe(lambda _c: self.refresh(), "value")
        self.search.observe(lambda _c: self.refresh(), "value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        super().__init__([w.HBox([self.kind, self.search, self.refresh_button]), self.count,
                          self.message, self.grid])  # fmt: skip
        self._unsubscribe = [studio.subscribe(lambda _e: self.refresh(), name)
                             for name in ("asset_added", "asset_deleted")]  # fmt: skip
        self.refresh()

    def refresh(self) -> None:
        page = self.studio.list_assets(kind=self.kind.value or None,
                                       text=self.search.value or None, limit=self.page_size)  # fmt: skip
        self.count.value = t("ui.count", self.lang, total=page.total)
        self.grid.children = tuple(self._card(a) for a in page.items)

    def _card(self, asset: Any) -> w.Widget:
        thumb = self.studio.assets.thumbnail_path(asset) if asset.has_thumbnail else None
        picture = (w.Image(value=thumb.read_bytes(), format="jpeg", layout=w.Layout(width="180px"))
                   if thumb else w.Label(asset.kind))  # fmt: skip
        delete = w.Button(description=t("ui.delete", self.lang), icon="trash",
                          layout=w.Layout(width="180px"))  # fmt: skip
        delete.on_click(lambda _b, a=asset: self.delete(a.id, a.name or a.id))
        return w.VBox([picture, w.Label((asset.name or asset.id)[:28]), delete])

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
        self.message.show(t("ui.deleted", self.lang, name=name), "ok")
