"""Ajustes / Settings: language, models (on disk or not, download), budgets, data dir, server."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w

from enfoads.core.api import StudioAPI
from enfoads.core.i18n import t
from enfoads.core.inventory import licence_label, model_label
from enfoads.widgets.common import JobProgress, Message, icon

GB = 1024**3


class SettingsPanel(w.VBox):
    def __init__(self, studio: StudioAPI, on_language: Callable[[str], None] | None = None):
        self.studio = studio
        lang = self.lang = studio.settings.language
        self._on_language = on_language
        s = studio.settings
        self.language = w.ToggleButtons(
            options=[("Español", "es"), ("English", "en")],
            value=lang,
            description=t("ui.settings.language", lang),
        )
        self.language.observe(lambda c: self.set_language(c["new"]), "value")
        self.models = w.VBox()
        self.message = Message()
        self.progress = JobProgress(studio, lambda _job: self.refresh_models())
        budgets = t(
            "ui.settings.budgets",
            lang,
            gpu=s.gpu_budget_gb,
            ram=s.ram_budget_gb,
            device=studio.health()["device"],
        )
        self.server_toggle = w.ToggleButton(
            value=False, description=t("ui.settings.server", lang), icon="server"
        )
        self.expose = w.Checkbox(
            value=False, description=t("ui.settings.expose", lang), indent=False
        )
        self.tunnel_notice = w.HTML(
            f"<small>{html.escape(t('notice.tunnel_policy', lang))}</small>"
        )
        self.server_info = w.HTML()
        self.server = None
        self.server_toggle.observe(lambda c: self.toggle_server(c["new"]), "value")
        super().__init__(
            [
                self.language,
                w.HTML(f"<b>{html.escape(t('ui.settings.models', lang))}</b>"),
                self.models,
                self.progress,
                self.message,
                w.HTML(
                    f"<p>{html.escape(budgets)}</p><p>{html.escape(t('ui.settings.data_dir', lang))}: "
                    f"<code>{html.escape(str(s.data_dir))}</code></p>"
                ),
                w.HBox([self.server_toggle, self.expose]),
                self.tunnel_notice,
                self.server_info,
            ]
        )
        if not studio.is_engine:  # a page attached to the engine: its API is already up
            self.server_toggle.disabled = self.expose.disabled = True
            self.server_info.value = html.escape(
                t("ui.settings.engine_api", lang, url=studio.engine_info.url)
            )
        self.refresh_models()

    def set_language(self, lang: str) -> None:
        self.studio.update_settings(language=lang)
        if self._on_language is not None:
            self._on_language(lang)

    def refresh_models(self) -> None:
        rows = []
        for model in self.studio.model_inventory():
            state = (
                icon("check-circle", "#1e8e3e")
                if model["on_disk"]
                else icon("cloud-download", "#b06000")
            )
            label = w.HTML(
                f"{state} <b>{html.escape(model_label(model, self.lang))}</b> · "
                f"{model['size_bytes'] / GB:.2f} GB · <small>{self.licence_html(model)}</small>"
            )
            button = w.Button(
                description=t("ui.settings.download", self.lang),
                icon="download",
                disabled=model["on_disk"],
            )
            button.on_click(lambda _b, key=model["key"]: self.download(key))
            rows.append(w.HBox([button, label]))
        self.models.children = tuple(rows)

    def licence_html(self, model: dict) -> str:
        out = html.escape(licence_label(model, self.lang))
        if model["commercial_use"] is False:
            out = f"{icon('balance-scale')} {out}"
        if model.get("licence_url"):
            out = f'<a href="{html.escape(model["licence_url"])}" target="_blank">{out}</a>'
        return out

    def download(self, key: str) -> None:
        self.progress.start(lambda: self.studio.prepare_model(key), self.message, w.Button())

    def toggle_server(self, on: bool) -> None:
        from enfoads.server.launch import start_in_thread

        if on and self.server is not None:
            return  # carried over from the panel this one replaced
        if not on:
            if self.server is not None:
                self.server.stop()
                self.server = None
            self.server_info.value = ""
            return
        s = self.studio.settings
        try:
            self.server = start_in_thread(self.studio, exposed=self.expose.value)
            if self.expose.value:  # the tunnel is opt-in: a public URL, the token required
                self.server.open_tunnel(
                    "auto", cloudflared=s.cloudflared_path, ngrok_authtoken=s.ngrok_authtoken
                )
        except Exception as exc:  # noqa: BLE001 - shown to the user
            if self.server is not None:
                self.server.stop()
                self.server = None
            self.message.show_error(exc, self.lang)
            self.server_toggle.value = False
            return
        url = self.server.tunnel.url if self.server.tunnel is not None else self.server.url
        self.server_info.value = (
            f"{html.escape(t('ui.settings.server_on', self.lang))} "
            f"<code>{html.escape(url)}</code> · token: "
            f"<code>{html.escape(self.server.token)}</code>"
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
