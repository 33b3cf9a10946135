"""The studio as tabs of panels over one Studio; the language switch rebuilds them."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from enfoads.core.i18n import t
from enfoads.core.studio import Studio
from enfoads.widgets.ad_creator import AdCreatorPanel
from enfoads.widgets.faceswap import FaceSwapPanel
from enfoads.widgets.home import HomePanel
from enfoads.widgets.settings import SettingsPanel
from enfoads.widgets.vault import VaultPanel
from enfoads.widgets.video import VideoStudioPanel
from enfoads.widgets.compat import set_titles

TABS = ("home", "creator", "faceswap", "video", "vault", "settings")
# ipywidgets cuts tab titles at 144 px ("Creador de anunci…"); widen them for this app only.
APP_CSS = "<style>.enfoads-app { --jp-widgets-horizontal-tab-width: 200px; }</style>"


class StudioApp(w.Tab):
    def __init__(self, studio: Studio):
        self.studio = studio
        super().__init__()
        self.add_class("enfoads-app")
        self.build()

    def build(self) -> None:
        lang = self.studio.settings.language
        for panel in getattr(self, "panels", ()):
            for stop in getattr(panel, "_unsubscribe", []) or []:
                stop()
        self.home = HomePanel(self.studio)
        self.creator = AdCreatorPanel(self.studio, on_action=self.on_gallery_action)
        self.faceswap = FaceSwapPanel(self.studio)
        self.video = VideoStudioPanel(self.studio)
        self.vault = VaultPanel(self.studio)
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
        self.panels = (self.home, self.creator, self.faceswap, self.video, self.vault, self.settings)
        self.children = self.panels
        set_titles(self, tuple(t(f"ui.tab.{name}", lang) for name in TABS))

    def use_in_video(self, asset_id: str) -> None:
        self.video.add_scene(asset_id, "image")
        self.selected_index = TABS.index("video")

    def on_gallery_action(self, action: str, asset_id: str) -> Any:
        if action == "use_video":
            self.use_in_video(asset_id)
        elif action == "use_avatar":
            self.studio.use_as_avatar(asset_id)
            self.video.avatar.value = asset_id
