"""The studio as tabs of panels over one Studio."""

from __future__ import annotations

import ipywidgets as w

from enfoads.core.i18n import t
from enfoads.core.studio import Studio
from enfoads.widgets.ad_creator import AdCreatorPanel
from enfoads.widgets.vault import VaultPanel


class StudioApp(w.Tab):
    def __init__(self, studio: Studio):
        self.studio = studio
        lang = studio.settings.language
        self.creator = AdCreatorPanel(studio)
        self.vault = VaultPanel(studio)
        super().__init__(children=[self.creator, self.vault],
                         titles=[t("ui.tab.creator", lang), t("ui.tab.vault", lang)])  # fmt: skip
