"""Pieces every panel uses: a job's live progress with cancel, and readable messages."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from enfoads.core.errors import EnfoadsError
from enfoads.core.i18n import t
from enfoads.core.studio import Studio
from enfoads.widgets.loop import subscribe
from enfoads.widgets.compat import uploaded_files

_COLORS = {"info": "#2d6cdf", "ok": "#1e8e3e", "error": "#c5221f"}


class Message(w.HTML):
    """One line of feedback; errors are the exception's message, never a traceback."""

    def show(self, text: str, kind: str = "info") -> None:
        self.value = (f'<span style="color:{_COLORS[kind]}">{html.escape(text)}</span>'
                      if text else "")  # fmt: skip

    def show_error(self, exc: Exception, lang: str) -> None:
        text = exc.message(lang) if isinstance(exc, EnfoadsError) else f"{type(exc).__name__}: {exc}"
        self.show(text, "error")

    def show_failure(self, job: dict[str, Any], lang: str) -> bool:
        """Show why a finished job did not complete; False when it completed."""
        if job["state"] == "completed":
            return False
        self.show(t("ui.failed", lang, error=job["error"] or job["state"]), "error")
        return True


class JobProgress(w.VBox):
    """A progress bar, the stage text and a cancel button for one job at a time, updated from
    the job's events on the kernel's thread (``widgets.loop``)."""

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
        self._unsubscribe = subscribe(studio, self._on_event, "job_update")

    def start(self, submit: Callable[[], Any], message: Message, button: w.Button) -> bool:
        """Submit a job (bad input shows in ``message``, nothing starts), then follow it with
        ``button`` off until it finishes."""
        try:
            job = submit()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            message.show_error(exc, self.studio.settings.language)
            return False
        message.show("")
        button.disabled = True
        self.follow(job.id)
        return True

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
        self.show(event.payload)

    def show(self, job: dict[str, Any]) -> None:
        """Show the followed job's state (a ``job_update`` payload; others are ignored)."""
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


def download_link(data: bytes, filename: str, label: str, mime: str) -> str:
    """An HTML link that downloads ``data`` (works in Colab, Jupyter and Voila alike)."""
    import base64

    encoded = base64.b64encode(data).decode()
    return (f'<a download="{html.escape(filename)}" href="data:{mime};base64,{encoded}" '
            f'style="margin-right:12px">⬇ {html.escape(label)}</a>')  # fmt: skip


def asset_download(studio: Studio, asset_id: str, label: str) -> str:
    asset = studio.get_asset(asset_id)
    return download_link(studio.assets.read_bytes(asset), f"{asset.id}.{asset.ext}", label, asset.mime)


def thumbnail(studio: Studio, asset_id: str, width: str = "180px") -> w.Widget:
    path = studio.assets.thumbnail_path(asset_id)
    if path is None:
        return w.Label(asset_id)
    return w.Image(value=path.read_bytes(), format="jpeg", layout=w.Layout(width=width))


class AssetPicker(w.VBox):
    """Pick an asset from the vault (filtered by kind or tag) or upload a new one.

    ``value`` is the chosen asset id (or None). Uploads go into the vault and are selected.
    ``on_change(callback)`` hears real changes of the choice, not the vault's refreshes.
    """

    def __init__(self, studio: Studio, label: str, *, kinds: tuple[str, ...] = ("image",),
                 tag: str | None = None, upload_kind: str | None = None, accept: str = "image/*",
                 optional: bool = False):  # fmt: skip
        lang = studio.settings.language
        self.studio, self.kinds, self.tag, self.optional = studio, kinds, tag, optional
        self.upload_kind = upload_kind or kinds[0]
        self.dropdown = w.Dropdown(description=label, style={"description_width": "initial"},
                                   layout=w.Layout(width="420px"))  # fmt: skip
        self.upload = w.FileUpload(accept=accept, multiple=False,
                                   description=t("ui.upload", lang))  # fmt: skip
        self.message = Message()
        self._callbacks: list = []
        self._refreshing = False
        self.upload.observe(lambda _c: self._uploaded(), "value")
        self.dropdown.observe(lambda _c: self._refreshing or self._changed(), "value")
        super().__init__([w.HBox([self.dropdown, self.upload]), self.message])
        self._unsubscribe = [subscribe(studio, lambda _e: self.refresh(), name)
                             for name in ("asset_added", "asset_deleted")]  # fmt: skip
        self.refresh()

    @property
    def value(self) -> str | None:
        return self.dropdown.value or None

    @value.setter
    def value(self, asset_id: str | None) -> None:
        self.refresh()
        if asset_id in {v for _, v in self.dropdown.options}:
            self.dropdown.value = asset_id

    def refresh(self) -> None:
        items = []
        for kind in self.kinds:
            items += self.studio.list_assets(kind=kind, tag=self.tag, limit=200).items
        if self.tag and not self.kinds:
            items = self.studio.list_assets(tag=self.tag, limit=200).items
        options = [(f"{a.name or a.id} ({a.id})"[:70], a.id) for a in items]
        if self.optional or not options:
            options = [("—", "")] + options
        current = self.dropdown.value
        self._refreshing = True  # new options pass through other values on their way
        try:
            self.dropdown.options = options
            if current in {v for _, v in options}:
                self.dropdown.value = current
        finally:
            self._refreshing = False
        if self.dropdown.value != current:
            self._changed()

    def on_change(self, callback) -> None:
        self._callbacks.append(callback)

    def _changed(self) -> None:
        for callback in self._callbacks:
            callback(self.value)

    def _uploaded(self) -> None:
        files = uploaded_files(self.upload)
        if not files:
            return
        name, content = files[0]
        try:
            asset = self.studio.upload_asset(content, name, self.upload_kind)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.studio.settings.language)
            return
        self.message.show("")
        self.value = asset.id
