"""Inicio / Home: GPU and RAM use, models loaded or missing, jobs, recent assets."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from enfoads.core.i18n import CATALOG, t
from enfoads.core.studio import Studio
from enfoads.widgets.common import Message, failure_text, icon, thumbnail
from enfoads.widgets.loop import subscribe

GB = 1024**3


class HomePanel(w.VBox):
    def __init__(self, studio: Studio):
        self.studio = studio
        lang = self.lang = studio.settings.language
        self.gpu = w.FloatProgress(
            min=0, max=1, description=t("ui.home.gpu", lang), style={"description_width": "initial"}
        )
        self.ram = w.FloatProgress(
            min=0, max=1, description=t("ui.home.ram", lang), style={"description_width": "initial"}
        )
        self.gpu_text, self.ram_text = w.Label(), w.Label()
        self.models = w.HTML()
        self.missing = w.HTML()
        self.jobs = w.VBox()
        self.jobs_message = Message()
        self.recent = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.refresh_button = w.Button(description=t("ui.refresh", lang), icon="refresh")
        self.refresh_button.on_click(lambda _b: self.refresh())
        super().__init__(
            [
                w.HTML(f"<h3>{html.escape(t('ui.home.title', lang))}</h3>"),
                w.HBox([self.gpu, self.gpu_text]),
                w.HBox([self.ram, self.ram_text]),
                self.models,
                self.missing,
                w.HTML(f"<b>{html.escape(t('ui.home.jobs', lang))}</b>"),
                self.jobs,
                self.jobs_message,
                w.HTML(f"<b>{html.escape(t('ui.home.recent', lang))}</b>"),
                self.recent,
                self.refresh_button,
            ]
        )
        self._unsubscribe = [
            subscribe(studio, lambda _e: self.refresh_status(), "gpu_status"),
            subscribe(studio, lambda _e: self.refresh_jobs(), "job_update"),
            subscribe(studio, lambda _e: self.refresh_assets(), "asset_added"),
        ]
        self.refresh()

    def refresh(self) -> None:
        self.refresh_status()
        self.refresh_jobs()
        self.refresh_assets()
        self.refresh_missing()

    def refresh_status(self) -> None:
        stats: dict[str, Any] = self.studio.gpu_status()
        gpu_budget = stats.get("gpu_budget_bytes") or 1
        ram_budget = stats.get("ram_budget_bytes") or 1
        self.gpu.max, self.gpu.value = gpu_budget, min(stats.get("gpu_used_bytes", 0), gpu_budget)
        self.ram.max, self.ram.value = ram_budget, min(stats.get("ram_used_bytes", 0), ram_budget)
        devices = stats.get("devices") or {}
        share = t("ui.home.models_use", self.lang)

        def machine(d: dict) -> str:
            return t(
                "ui.home.machine", self.lang, used=d["used_bytes"] / GB, total=d["total_bytes"] / GB
            )

        gpus, ram = devices.get("gpus") or [], devices.get("ram") or {}
        self.gpu_text.value = (
            f"{share} {stats.get('gpu_used_bytes', 0) / GB:.1f} / "
            f"{gpu_budget / GB:.1f} GB · {stats.get('device', '')}"
            + (machine(gpus[0]) if gpus else "")
        )
        self.ram_text.value = (
            f"{share} {stats.get('ram_used_bytes', 0) / GB:.1f} / "
            f"{ram_budget / GB:.1f} GB" + (machine(ram) if ram.get("total_bytes") else "")
        )
        loaded = [f"{m['name']} ({m['where']})" for m in stats.get("models", []) if m.get("where")]
        self.models.value = html.escape(
            t("ui.home.loaded", self.lang, models=", ".join(loaded) or "—")
        )

    def refresh_missing(self) -> None:
        from enfoads.core.inventory import missing_models

        missing = missing_models(self.studio)
        if not missing:
            self.missing.value = ""
            return
        names = ", ".join(f"{m['model']} ({m['capability']})" for m in missing)
        self.missing.value = (
            f'<div style="color:#b06000">{icon("exclamation-triangle")} '
            f"{html.escape(t('ui.home.missing', self.lang, models=names))}</div>"
        )

    def refresh_jobs(self) -> None:
        """The last jobs: what, state, progress, and for a failed, interrupted or cancelled one
        the reason and a retry button (a new job with the same parameters)."""
        rows: list[w.Widget] = []
        for job in self.studio.list_jobs(limit=8):
            job = job.localized(self.lang)  # a stage stored before a language switch
            state = t(f"ui.state.{job.state.value}", self.lang)
            kind = t(f"job.{job.kind}", self.lang) if f"job.{job.kind}" in CATALOG else job.kind
            failed = job.state.value in ("failed", "cancelled")
            detail = (
                failure_text({"state": job.state.value, "error": job.error}, self.lang)
                if failed
                else job.stage or ""
            )
            colour = "#c5221f" if failed else "inherit"
            cells = (
                f'<span style="display:inline-block;min-width:9em"><b>{html.escape(kind)}</b></span> '
                f'<span style="display:inline-block;min-width:7em">{html.escape(state)}</span> '
                f'<span style="display:inline-block;min-width:3.5em">{job.progress:.0f}%</span> '
                f'<span style="color:{colour}">{html.escape(detail)}</span>'
            )
            row: list[w.Widget] = [w.HTML(cells)]
            if failed:
                retry = w.Button(
                    description=t("ui.retry", self.lang), icon="repeat", button_style="warning"
                )
                retry.on_click(lambda _b, job_id=job.id: self.retry(job_id))
                row.append(retry)
            rows.append(w.HBox(row))
        self.jobs.children = tuple(rows) if rows else (w.Label("—"),)

    def retry(self, job_id: str) -> None:
        try:
            job = self.studio.retry_job(job_id)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.jobs_message.show_error(exc, self.lang)
            return
        kind = t(f"job.{job.kind}", self.lang) if f"job.{job.kind}" in CATALOG else job.kind
        self.jobs_message.show(t("ui.retried", self.lang, kind=kind), "ok")
        self.refresh_jobs()

    def refresh_assets(self) -> None:
        page = self.studio.list_assets(kind="image", limit=6)
        self.recent.children = tuple(thumbnail(self.studio, a.id, "120px") for a in page.items)
