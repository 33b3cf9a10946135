"""Inicio / Home: GPU and RAM use, models loaded or missing, jobs, recent assets."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from enfoads.core.api import StudioAPI
from enfoads.core.i18n import CATALOG, t
from enfoads.core.inventory import model_label
from enfoads.widgets.common import (
    Message,
    close_tree,
    close_tree_children,
    failure_text,
    icon,
    thumbnail,
)
from enfoads.widgets.loop import subscribe_refresh

GB = 1024**3


class HomePanel(w.VBox):
    def __init__(self, studio: StudioAPI):
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
        self.missing = w.VBox()
        self._labels = {row["key"]: model_label(row, lang) for row in studio.model_inventory()}
        self._downloads: set[str] = set()  # model downloads started here: Inicio refreshes
        self.jobs = w.VBox()
        self._no_jobs = w.Label("—")
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
        self._job_rows: dict[str, tuple[w.HBox, w.HTML]] = {}
        self._thumbs: dict[str, w.Widget] = {}
        self._unsubscribe = [
            *subscribe_refresh(studio, self.refresh_status, ("gpu_status",)),
            *subscribe_refresh(studio, self.refresh_jobs, ("job_update",)),
            *subscribe_refresh(studio, self.refresh_assets, ("asset_added", "asset_deleted")),
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
        where = {"gpu": "GPU", "cpu": "RAM"}
        loaded = [
            f"{self._labels.get(m['name'], m['name'])} ({where.get(m['where'], m['where'])})"
            for m in stats.get("models", [])
            if m.get("where")
        ]
        self.models.value = html.escape(
            t("ui.home.loaded", self.lang, models=", ".join(loaded) or "—")
        )

    def refresh_missing(self) -> None:
        """Each model not on disk, by the name people know, with its own download button."""
        from enfoads.core.inventory import missing_models

        close_tree_children(self.missing)
        missing = missing_models(self.studio)
        if not missing:
            self.missing.children = ()
            return
        rows: list[w.Widget] = [
            w.HTML(
                f'<div style="color:#b06000">{icon("exclamation-triangle")} '
                f"{html.escape(t('ui.home.missing_title', self.lang))}</div>"
            )
        ]
        for model in missing:
            button = w.Button(description=t("ui.settings.download", self.lang), icon="download")
            button.on_click(lambda _b, key=model["key"]: self.download(key))
            label = w.HTML(html.escape(model_label(model, self.lang)))
            rows.append(w.HBox([button, label]))
        self.missing.children = tuple(rows)

    def download(self, key: str) -> None:
        try:
            job = self.studio.prepare_model(key)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.jobs_message.show_error(exc, self.lang)
            return
        self.jobs_message.show(
            t("ui.home.downloading", self.lang, model=self._labels.get(key, key)), "info"
        )
        self._downloads.add(job.id)

    def refresh_jobs(self) -> None:
        """The last jobs: what (with its prompt or script), when, state, progress, and for a
        failed, interrupted or cancelled one the reason and a retry button (a new job with the
        same parameters). A row is built once per job and then only its text changes; rows
        that leave the list are closed."""
        rows: list[w.Widget] = []
        keep: dict[str, tuple[w.HBox, w.HTML]] = {}
        jobs = self.studio.list_jobs(limit=8)
        for job in jobs:
            cells = self.job_cells(job.localized(self.lang))
            failed = job.state.value in ("failed", "cancelled")
            row = self._job_rows.pop(job.id, None)
            if row is not None and (len(row[0].children) > 1) != failed:
                close_tree(row[0])  # a retry button comes or goes: a new row
                row = None
            if row is None:
                text = w.HTML(cells)
                parts: list[w.Widget] = [text]
                if failed:
                    retry = w.Button(
                        description=t("ui.retry", self.lang), icon="repeat", button_style="warning"
                    )
                    retry.on_click(lambda _b, job_id=job.id: self.retry(job_id))
                    parts.append(retry)
                row = (w.HBox(parts), text)
            elif row[1].value != cells:
                row[1].value = cells
            keep[job.id] = row
            rows.append(row[0])
        finished = {j.id for j in jobs if j.state.finished}
        if self._downloads & finished:  # a model arrived (or failed): the list is current
            self._downloads -= finished
            self.refresh_missing()
        for old, _text in self._job_rows.values():
            close_tree(old)
        self._job_rows = keep
        children = tuple(rows) if rows else (self._no_jobs,)
        if self.jobs.children != children:
            self.jobs.children = children

    def job_cells(self, job: Any) -> str:
        state = t(f"ui.state.{job.state.value}", self.lang)
        kind = t(f"job.{job.kind}", self.lang) if f"job.{job.kind}" in CATALOG else job.kind
        failed = job.state.value in ("failed", "cancelled")
        detail = (
            failure_text({"state": job.state.value, "error": job.error}, self.lang)
            if failed
            else job.stage or ""
        )
        colour = "#c5221f" if failed else "inherit"
        what = job_subject(job.params)
        return (
            '<div class="enfoads-job-row">'
            f'<span class="enfoads-job-when">{job.created_at:%H:%M}</span> '
            f"<b>{html.escape(kind)}</b>"
            + (f' <span class="enfoads-job-what">«{html.escape(what)}»</span>' if what else "")
            + f" · {html.escape(state)} · {job.progress:.0f}%"
            f'<div style="color:{colour}">{html.escape(detail)}</div></div>'
        )

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
        """The six newest images; a thumbnail already shown is kept, not sent again."""
        page = self.studio.list_assets(kind="image", limit=6)
        thumbs = {
            a.id: self._thumbs.pop(a.id, None) or thumbnail(self.studio, a.id, "120px")
            for a in page.items
        }
        for gone in self._thumbs.values():
            close_tree(gone)
        self._thumbs = thumbs
        children = tuple(thumbs.values())
        if self.recent.children != children:
            self.recent.children = children


def job_subject(params: dict[str, Any], limit: int = 48) -> str:
    """What a job was about, for its row: the prompt, the script or the first scene's text."""
    text = params.get("prompt") or params.get("script") or ""
    scenes = params.get("scenes")
    if not text and isinstance(scenes, list) and scenes and isinstance(scenes[0], dict):
        text = scenes[0].get("script") or scenes[0].get("text") or ""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
