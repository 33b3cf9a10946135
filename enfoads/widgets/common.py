"""Pieces every panel uses: a job's live progress with cancel, and readable messages."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from enfoads.core.errors import EnfoadsError
from enfoads.core.i18n import t
from enfoads.core.studio import Studio

_COLORS = {"info": "#2d6cdf", "ok": "#1e8e3e", "error": "#c5221f"}


class Message(w.HTML):
    """One line of feedback; errors are the exception's message, never a traceback."""

    def show(self, text: str, kind: str = "info") -> None:
        self.value = (f'<span style="color:{_COLORS[kind]}">{html.escape(text)}</span>'
                      if text else "")  # fmt: skip

    def show_error(self, exc: Exception, lang: str) -> None:
        text = exc.message(lang) if isinstance(exc, EnfoadsError) else f"{type(exc).__name__}: {exc}"
        self.show(text, "error")


class JobProgress(w.VBox):
    """A progress bar, the stage text and a cancel button for one job at a time.

    Updated from the job's events: worker threads only set traits.
    """

    def __init__(self, studio: Studio, on_finished: Callable[[dict[str, Any]], None]):
        lang = studio.settings.language
        self.studio = studio
        self.job_id: str | None = None
        self._on_finished = on_finished
        self.bar = w.FloatProgress(min=0, max=100, value=0, layout=w.Layout(width="60%"))
        self.stage = w.Label("")
        self.cancel = w.Button(description=t("ui.cancel", lang), icon="stop", disabled=True)
        self.cancel.on_click(lambda _b: self._cancel())
        super().__init__([w.HBox([self.bar, self.cancel]), self.stage])
        self._unsubscribe = studio.subscribe(self._on_event, "job_update")

    def follow(self, job_id: str) -> None:
        self.job_id = job_id
        self.bar.value = 0
        self.bar.bar_style = ""
        self.stage.value = t("stage.queued", self.studio.settings.language)
        self.cancel.disabled = False

    def _cancel(self) -> None:
        if self.job_id is not None:
            try:
                self.studio.cancel_job(self.job_id)
            except EnfoadsError:
                pass  # it finished meanwhile

    def _on_event(self, event: Any) -> None:
        job = event.payload
        if job.get("id") != self.job_id:
            return
        self.bar.value = job["progress"]
        self.stage.value = job["stage"] or ""
        if job["state"] in ("completed", "failed", "cancelled"):
            self.cancel.disabled = True
            self.bar.bar_style = {"completed": "success", "failed": "danger"}.get(job["state"], "warning")
            self._on_finished(job)

    def close(self) -> None:
        self._unsubscribe()
        super().close()
