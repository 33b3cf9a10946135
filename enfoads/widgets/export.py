"""Publicar: a campaign's images and videos as the files each ad platform takes, one ZIP per
platform, each file checked against its placement (``export_campaign``)."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from enfoads.core.api import StudioAPI
from enfoads.core.i18n import kind_name, t
from enfoads.widgets.common import Downloads, JobProgress, Message, close_tree_children, icon

PLATFORM_NAMES = {
    "meta": "Meta (Facebook, Instagram)",
    "tiktok": "TikTok",
    "youtube": "YouTube",
    "google": "Google Ads",
    "linkedin": "LinkedIn",
    "pinterest": "Pinterest",
}
EXPORTABLE = ("png", "jpg", "webp", "mp4", "webm")
LISTED = 200  # the newest images and videos offered


class ExportPanel(w.VBox):
    def __init__(self, studio: StudioAPI):
        self.studio = studio
        lang = self.lang = studio.settings.language
        platforms = studio.options("export")["platforms"]
        self.intro = w.HTML(f"<p>{html.escape(t('ui.export.intro', lang))}</p>")
        self.assets = w.SelectMultiple(
            options=[],
            rows=8,
            description=t("ui.export.assets", lang),
            style={"description_width": "initial"},
            layout=w.Layout(width="100%", max_width="560px"),
        )
        self.platforms = {
            p: w.Checkbox(
                value=True,
                description=PLATFORM_NAMES.get(p, p),
                indent=False,
                layout=w.Layout(width="auto", margin="0 12px 0 0"),
            )
            for p in platforms
        }
        self.run = w.Button(
            description=t("ui.export.run", lang), button_style="primary", icon="upload"
        )
        self.run.on_click(lambda _b: self.start())
        self.message = Message()
        self.progress = JobProgress(studio, self._finished)
        self.progress.on_retry = lambda: setattr(self.run, "disabled", True)
        self.result = w.VBox()
        super().__init__(
            [
                self.intro,
                self.assets,
                w.Label(t("ui.export.platforms", lang)),
                w.HBox(list(self.platforms.values()), layout=w.Layout(flex_flow="row wrap")),
                self.run,
                self.message,
                self.progress,
                self.result,
            ]
        )
        self.refresh()  # and whenever its tab is opened (``StudioApp``): never on each event,
        # so a 24-image job does not send this list to every open page 24 times

    def refresh(self) -> None:
        """The newest images and videos of the vault (a selection that still exists stays);
        nothing is sent to the page when they are the same."""
        page = self.studio.list_assets(limit=LISTED, grouped=True, inputs=False)
        options = [
            (f"{kind_name(a.kind, self.lang)} · {a.name or a.id}"[:90], a.id)
            for a in page.items
            if a.ext in EXPORTABLE
        ]
        if tuple(options) == tuple(self.assets.options):
            return
        chosen = tuple(v for v in self.assets.value if v in {o[1] for o in options})
        self.assets.options = options
        self.assets.value = chosen

    def choose(self, asset_ids: list[str]) -> None:
        """Select these assets (the vault's "Publicar" button, a test)."""
        self.refresh()
        known = {o[1] for o in self.assets.options}
        self.assets.value = tuple(a for a in asset_ids if a in known)

    def start(self) -> None:
        asset_ids = list(self.assets.value)
        platforms = [p for p, box in self.platforms.items() if box.value]
        if not asset_ids or not platforms:
            self.message.show(t("ui.export.choose", self.lang), "error")
            return
        close_tree_children(self.result)
        self.result.children = ()
        self.progress.start(
            lambda: self.studio.export_campaign(asset_ids=asset_ids, platforms=platforms),
            self.message,
            self.run,
        )

    def _finished(self, job: dict[str, Any]) -> None:
        self.run.disabled = False
        if job["state"] == "completed":
            self.show(job.get("result") or {})

    def show(self, result: dict[str, Any]) -> None:
        """Per platform: how many files are ready, a checklist (✔, or ✘ and why), its ZIP."""
        lang = self.lang
        blocks: list[w.Widget] = []
        for export in result.get("exports", []):
            files = export["files"]
            ready = sum(f["passed"] for f in files)
            rows = "".join(
                "<li>"
                + ("✔ " if f["passed"] else "✘ ")
                + html.escape(f["file"])
                + (f" — {html.escape('; '.join(f['failures']))}" if f["failures"] else "")
                + "</li>"
                for f in files
            )
            name = PLATFORM_NAMES.get(export["platform"], export["platform"])
            head = t("ui.export.ready", lang, platform=name, ready=ready, total=len(files))
            blocks += [
                w.HTML(
                    f"<b>{icon('check-circle' if ready == len(files) else 'exclamation-triangle')}"
                    f" {html.escape(head)}</b><ul style='margin:4px 0;overflow-wrap:anywhere'>"
                    f"{rows}</ul>"
                ),
                Downloads(
                    self.studio, [(export["asset_id"], t("ui.export.zip", lang, platform=name))]
                ),
            ]
        notices = result.get("notices") or []
        if notices:
            items = "".join(f"<li>{html.escape(n)}</li>" for n in notices)
            blocks.append(w.HTML(f"<ul style='overflow-wrap:anywhere'>{items}</ul>"))
        close_tree_children(self.result)
        self.result.children = tuple(blocks)
