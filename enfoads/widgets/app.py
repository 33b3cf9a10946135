"""The studio as tabs of panels over one Studio; the language switch rebuilds them."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from enfoads.core.api import StudioAPI
from enfoads.core.i18n import t
from enfoads.widgets.ad_creator import AdCreatorPanel
from enfoads.widgets.common import APP_CSS, close_subscriptions
from enfoads.widgets.compat import set_titles
from enfoads.widgets.export import ExportPanel
from enfoads.widgets.faceswap import FaceSwapPanel
from enfoads.widgets.home import HomePanel
from enfoads.widgets.settings import SettingsPanel
from enfoads.widgets.variants import VariantsPanel
from enfoads.widgets.vault import VaultPanel
from enfoads.widgets.video import VideoStudioPanel

TABS = ("home", "creator", "variants", "faceswap", "video", "vault", "export", "settings")


class StudioApp(w.Tab):
    def __init__(self, studio: StudioAPI):
        self.studio = studio
        # One fixed box per tab: a rebuild swaps the panels inside them, never the tab bar's
        # children (the page resets a tab bar whose children change to its first tab).
        self.slots = tuple(w.VBox(layout=w.Layout(width="100%")) for _ in TABS)
        super().__init__(children=self.slots)
        self.add_class("enfoads-app")
        self.build()
        self.observe(self._opened, "selected_index")

    def _opened(self, change: dict[str, Any]) -> None:
        """A tab opened: Publicar reads the vault's images and videos then, Variantes its
        stored briefs."""
        if change["new"] is not None and TABS[change["new"]] == "export":
            self.export.refresh()
        elif change["new"] is not None and TABS[change["new"]] == "variants":
            self.variants.refresh()

    def build(self) -> None:
        """The panels in the studio's language; a rebuild (the language switch) ends the old
        panels' event subscriptions and closes them; the tab that was open stays open."""
        lang = self.studio.settings.language
        old = getattr(self, "panels", ())
        for panel in old:
            close_subscriptions(panel)
        self.home = HomePanel(self.studio)
        self.creator = AdCreatorPanel(self.studio, on_action=self.on_gallery_action)
        self.variants = VariantsPanel(self.studio, on_export=self.publish)
        self.faceswap = FaceSwapPanel(self.studio)
        self.video = VideoStudioPanel(self.studio)
        self.vault = VaultPanel(self.studio)
        self.export = ExportPanel(self.studio)
        self.vault.on_use_in_video = self.use_in_video
        self.vault.kit.on_saved = self.video.apply_kit
        previous = getattr(self, "settings", None)
        self.settings = SettingsPanel(self.studio, on_language=lambda _l: self.build())
        if previous is not None and previous.server is not None:  # the server keeps running
            self.settings.server = previous.server
            self.settings.expose.value = previous.expose.value
            self.settings.server_toggle.value = True
            self.settings.server_info.value = previous.server_info.value
        style = w.HTML(APP_CSS, layout=w.Layout(display="none"))
        self.home.children = (style, *self.home.children)
        self.panels = (
            self.home,
            self.creator,
            self.variants,
            self.faceswap,
            self.video,
            self.vault,
            self.export,
            self.settings,
        )
        for slot, panel in zip(self.slots, self.panels):
            slot.children = (panel,)
        set_titles(self, tuple(t(f"ui.tab.{name}", lang) for name in TABS))
        for panel in old:  # (a running server moved to the new settings panel above)
            panel.close()

    def close(self) -> None:
        for panel in getattr(self, "panels", ()):
            close_subscriptions(panel)
        super().close()

    def publish(self, asset_ids: list[str]) -> None:
        """Publicar opens with these assets chosen (the variant board's kept files)."""
        self.selected_index = TABS.index("export")
        self.export.choose(asset_ids)

    def use_in_video(self, asset_id: str) -> None:
        self.video.add_scene(asset_id, "image")
        self.selected_index = TABS.index("video")

    def on_gallery_action(self, action: str, asset_id: str) -> Any:
        if action == "use_video":
            self.use_in_video(asset_id)
        elif action == "use_avatar":
            self.studio.use_as_avatar(asset_id)
            self.video.avatar.value = asset_id
