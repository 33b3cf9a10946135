"""Pieces every panel uses: the app's styles, icons, a job's live progress with cancel and
retry, readable messages, asset pickers with upload, and closing a panel's subscriptions."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from enfoads.core.api import StudioAPI
from enfoads.core.assets import RESERVED_KINDS
from enfoads.core.errors import EnfoadsError
from enfoads.core.events import RESYNC
from enfoads.core.i18n import t
from enfoads.core.jobs import FINISHED_STATES, localized_payload
from enfoads.widgets.compat import IPYWIDGETS_8, uploaded_files
from enfoads.widgets.loop import Coalescer, subscribe_refresh

FINISHED = FINISHED_STATES
_COLORS = {"info": "#2d6cdf", "ok": "#1e8e3e", "error": "#c5221f"}

# The studio's styles, carried by a hidden HTML widget inside the app (Colab, Jupyter and
# Voila alike). Buttons size to their label instead of ipywidgets' fixed 148 px (labels were
# cut: "Guar…"); rows wrap at a phone's width; tab titles are readable in full; the vault's
# grid fills the width with cards of one height. Under Voila (``body[data-voila]``) the
# notebook's instructions (its Markdown cells) are hidden: the page is the studio only.
APP_CSS = """<style>
.enfoads-app { --jp-widgets-horizontal-tab-width: 200px; max-width: 100%; }
.enfoads-app .lm-TabBar-content, .enfoads-app .p-TabBar-content { flex-wrap: wrap; }
.enfoads-app .lm-TabBar-tab, .enfoads-app .p-TabBar-tab { flex: 0 0 auto !important; min-width: fit-content; }
.enfoads-app .widget-button, .enfoads-app .jupyter-button.widget-upload,
.enfoads-app .widget-toggle-button { width: auto; min-width: fit-content; padding: 0 10px; }
.enfoads-app .enfoads-icon-button { min-width: 36px; padding: 0; }
.enfoads-app .widget-vbox > .widget-button { align-self: flex-start; }
.enfoads-app .widget-hbox { flex-wrap: wrap; gap: 4px 8px; }
.enfoads-app .widget-dropdown, .enfoads-app .widget-text, .enfoads-app .widget-textarea { max-width: 100%; }
.enfoads-app .widget-dropdown > select { min-width: 0; }
.enfoads-app .widget-toggle-buttons .widget-toggle-button { width: auto; }
.enfoads-app .enfoads-upload { font-size: 0 !important; }
.enfoads-app .enfoads-upload > i { font-size: var(--jp-widgets-font-size, 13px); margin-right: 6px; }
.enfoads-app .enfoads-upload::after { content: attr(title); font-size: var(--jp-widgets-font-size, 13px); }
.enfoads-app .widget-checkbox { width: auto; max-width: 100%; height: auto; }
.enfoads-app .widget-checkbox > label, .enfoads-app .widget-checkbox > label > span {
  white-space: normal; overflow: visible; height: auto; line-height: 1.3; }
.enfoads-vault-grid { display: grid !important; gap: 12px;
  grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)) !important; width: 100%; }
.enfoads-scene { border: 1px solid #ddd; border-radius: 8px; padding: 6px; margin: 4px 0; }
.enfoads-card { border: 1px solid #ddd; border-radius: 8px; padding: 6px; height: 270px;
  overflow: hidden; box-sizing: border-box; }
.enfoads-card .enfoads-thumb { height: 150px; display: flex; align-items: center; justify-content: center;
  background: #f4f4f4; border-radius: 6px; overflow: hidden; }
.enfoads-card .enfoads-thumb img { max-height: 150px; max-width: 100%; object-fit: contain; }
.enfoads-card .widget-label, .enfoads-card .widget-html { max-width: 100%; }
.enfoads-card .widget-html-content { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
@media (max-width: 600px) {
  .enfoads-app .widget-inline-hbox { flex-wrap: wrap; height: auto; }
  .enfoads-app .widget-inline-hbox > .widget-label { max-width: 100%; width: auto; }
  .enfoads-app .widget-textarea, .enfoads-app .widget-text, .enfoads-app .widget-dropdown,
  .enfoads-app .widget-colorpicker { width: 100% !important; box-sizing: border-box; }
  .enfoads-app .widget-textarea { height: auto !important; }
  .enfoads-app .widget-textarea > textarea { min-height: 64px; }
  .enfoads-app .widget-inline-hbox > textarea, .enfoads-app .widget-inline-hbox > input[type=text],
  .enfoads-app .widget-inline-hbox > select { flex: 1 1 100%; min-width: 0; box-sizing: border-box; }
  .enfoads-app .widget-inline-hbox > select { height: var(--jp-widgets-inline-height, 28px) !important;
    min-height: 28px; }
  .enfoads-app .widget-checkbox { width: 100% !important; }
  .enfoads-app .widget-html-content { white-space: normal; overflow-wrap: anywhere; }
  .enfoads-app .widget-hbox > .widget-html { flex: 1 1 200px; min-width: 0; }
}
body[data-voila] .jp-MarkdownCell { display: none; }
</style>"""


def icon(name: str, colour: str = "") -> str:
    """A Font Awesome icon (ipywidgets' own icon font: it renders where no emoji font does)."""
    style = f' style="color:{colour}"' if colour else ""
    return f'<i class="fa fa-{name}"{style} aria-hidden="true"></i>'


def file_upload(label: str, accept: str) -> w.FileUpload:
    """An upload button that reads ``label`` (then the chosen file's name) without ipywidgets'
    counter ("Subir (0)"): on 8.x the label is its tooltip, which the app's CSS shows. 7.x
    (Colab) has no tooltip on FileUpload and keeps its own text."""
    upload = w.FileUpload(accept=accept, multiple=False, description=label)
    if IPYWIDGETS_8:
        upload.tooltip = label
        upload.add_class("enfoads-upload")
    return upload


def show_file_name(upload: w.FileUpload, name: str) -> None:
    """The chosen file's name on the upload button."""
    if IPYWIDGETS_8:
        upload.tooltip = name if len(name) <= 40 else name[:37] + "…"
    else:
        upload.description = name[:40]


def close_subscriptions(widget: w.Widget) -> int:
    """Unsubscribe ``widget`` and every widget inside it from the studio's events (what a
    panel holds in ``_unsubscribe``: one function or a list); how many were ended."""
    ended = 0
    stack, seen = [widget], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        stops = getattr(item, "_unsubscribe", None)
        if stops:
            for stop in stops if isinstance(stops, list | tuple) else [stops]:
                stop()
                ended += 1
            item._unsubscribe = []
        stack.extend(getattr(item, "children", ()) or ())
    return ended


def close_tree(widget: w.Widget) -> None:
    """Close ``widget`` and every widget inside it (a replaced card, row or preview), so the
    kernel and the page let go of them; ipywidgets closes only the one it is asked to."""
    stack = [widget]
    while stack:
        item = stack.pop()
        stack.extend(getattr(item, "children", ()) or ())
        item.close()


def close_tree_children(box: w.Box) -> None:
    """Close what ``box`` holds (before it gets new children)."""
    for child in tuple(box.children):
        close_tree(child)


class Message(w.HTML):
    """One line of feedback; errors are the exception's message, never a traceback."""

    def show(self, text: str, kind: str = "info") -> None:
        self.value = (
            f'<span style="color:{_COLORS[kind]}">{html.escape(text)}</span>' if text else ""
        )

    def show_error(self, exc: Exception, lang: str) -> None:
        text = (
            exc.message(lang) if isinstance(exc, EnfoadsError) else f"{type(exc).__name__}: {exc}"
        )
        self.show(text, "error")

    def show_failure(self, job: dict[str, Any], lang: str) -> bool:
        """Whether a finished job did not complete (False when it completed). The reason is
        the job's progress line's to show, beside its retry button: said once, not twice."""
        if job["state"] == "completed":
            return False
        self.show("")
        return True


def failure_text(job: dict[str, Any], lang: str) -> str:
    """Why a job did not complete, in words: its error, or that it was cancelled."""
    if job["state"] == "cancelled":
        return t("ui.cancelled", lang)
    return t("ui.failed", lang, error=job.get("error") or t("ui.no_reason", lang))


class StageText(w.HTML):
    """A job's stage or failure, whole (a Label cuts a long error at the box's edge)."""

    @property
    def text(self) -> str:
        return self._text

    def __init__(self) -> None:
        self._text = ""
        super().__init__("")
        self.add_class("enfoads-stage")

    def set(self, text: str, kind: str = "") -> None:
        self._text = text
        colour = f' style="color:{_COLORS[kind]}"' if kind else ""
        self.value = f"<span{colour}>{html.escape(text)}</span>"


class JobProgress(w.VBox):
    """A progress bar, the stage text and a cancel button for one job at a time, updated from
    the job's events on the kernel's thread (``widgets.loop``)."""

    def __init__(self, studio: StudioAPI, on_finished: Callable[[dict[str, Any]], None]):
        lang = studio.settings.language
        self.studio = studio
        self.job_id: str | None = None
        self._shown_finished: tuple[str, str] | None = None
        self._on_finished = on_finished
        self.bar = w.FloatProgress(min=0, max=100, value=0, layout=w.Layout(width="60%"))
        self.stage = StageText()
        self.cancel = w.Button(description=t("ui.cancel", lang), icon="stop", disabled=True)
        self.cancel.on_click(lambda _b: self._cancel())
        # A failed, interrupted or cancelled job can be run again from here, same parameters.
        self.retry = w.Button(
            description=t("ui.retry", lang), icon="repeat", button_style="warning"
        )
        self.retry.layout.display = "none"
        self.retry.on_click(lambda _b: self._retry())
        self.on_retry: Callable[[], None] | None = None  # the panel disables its own button
        super().__init__([w.HBox([self.bar, self.cancel, self.retry]), self.stage])
        # Events arrive on any thread, hundreds a job: the newest is kept and shown once per
        # burst on the kernel's thread; a finished state is never replaced by an older one.
        self._latest: dict[str, Any] | None = None
        self._latest_lock = threading.Lock()
        self._coalescer = Coalescer(self._show_latest)
        self._unsubscribe = [
            self._coalescer.close,
            studio.subscribe(lambda e: self._offer(e.payload), "job_update"),
            studio.subscribe(lambda _e: self.resync(), RESYNC),
        ]

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
        with self._latest_lock:
            self.job_id, self._latest = job_id, None
        self.bar.value = 0
        self.bar.bar_style = ""
        self.stage.set(t("stage.queued", self.studio.settings.language))
        self.cancel.disabled = False
        self.retry.layout.display = "none"
        self.resync()  # what it did before we listened (a fast job may have ended already)

    def resync(self) -> None:
        """Read the followed job's record (after a reconnect, events may have been missed)."""
        if self.job_id is not None:
            try:
                self._offer(self.studio.get_job(self.job_id).to_dict())
            except EnfoadsError:
                pass  # deleted meanwhile

    def _offer(self, job: dict[str, Any]) -> None:
        with self._latest_lock:
            if job.get("id") != self.job_id:
                return
            latest = self._latest
            if latest is not None and latest["state"] in FINISHED and job["state"] not in FINISHED:
                return
            self._latest = job
        self._coalescer.poke()

    def _show_latest(self) -> None:
        with self._latest_lock:
            job, self._latest = self._latest, None
        if job is not None:
            self.show(job)

    def _retry(self) -> None:
        if self.job_id is None:
            return
        try:
            job = self.studio.retry_job(self.job_id)
        except EnfoadsError as exc:
            self.stage.set(exc.message(self.studio.settings.language), "error")
            return
        if self.on_retry is not None:
            self.on_retry()
        self.follow(job.id)

    def _cancel(self) -> None:
        if self.job_id is not None:
            try:
                self.studio.cancel_job(self.job_id)
            except EnfoadsError:
                pass  # it finished meanwhile

    def show(self, job: dict[str, Any]) -> None:
        """Show the followed job's state (a ``job_update`` payload; others are ignored), in
        this page's language (the engine may speak another)."""
        if job.get("id") != self.job_id:
            return
        job = localized_payload(job, self.studio.settings.language)
        self.bar.value = job["progress"]
        self.stage.set(job["stage"] or "")
        if job["state"] in FINISHED:
            if self._shown_finished == (job["id"], job["state"]):
                return  # a re-read of a job already shown as finished
            self._shown_finished = (job["id"], job["state"])
            self.cancel.disabled = True
            self.bar.bar_style = {"completed": "success", "failed": "danger"}.get(
                job["state"], "warning"
            )
            if job["state"] != "completed":  # the reason stays in view, with a way out
                self.stage.set(failure_text(job, self.studio.settings.language), "error")
                self.retry.layout.display = ""
            self._on_finished(job)

    def close(self) -> None:
        close_subscriptions(self)
        super().close()


def download_link(data: bytes, filename: str, label: str, mime: str) -> str:
    """An HTML link that downloads ``data`` (works in Colab, Jupyter and Voila alike)."""
    import base64

    encoded = base64.b64encode(data).decode()
    return (
        f'<a download="{html.escape(filename)}" href="data:{mime};base64,{encoded}" '
        f'style="margin-right:12px">{icon("download")} {html.escape(label)}</a>'
    )


class Downloads(w.HBox):
    """A download button per file. A file's bytes reach the page only when its button is
    pressed, and then as a link named after the asset ("Guardar cafe.png"): a gallery of eight
    images no longer puts 26 MB of base64 into the page before anyone asks for one."""

    def __init__(self, studio: StudioAPI, files: list[tuple[str, str]]):
        self.studio = studio
        buttons = []
        for index, (asset_id, label) in enumerate(files):
            button = w.Button(description=label, icon="download")
            button.on_click(lambda _b, i=index, a=asset_id: self.ready(i, a))
            buttons.append(button)
        super().__init__(buttons)
        self.add_class("enfoads-downloads")

    def ready(self, index: int, asset_id: str) -> None:
        """Button ``index`` becomes the link that saves the asset's file."""
        lang = self.studio.settings.language
        try:
            asset = self.studio.get_asset(asset_id)
            data = self.studio.asset_bytes(asset)
        except EnfoadsError as exc:  # deleted meanwhile
            link = w.HTML(html.escape(exc.message(lang)))
        else:
            label = t("ui.save_file", lang, name=asset.file_name)
            link = w.HTML(download_link(data, asset.file_name, label, asset.mime))
        children = list(self.children)
        old, children[index] = children[index], link
        self.children = tuple(children)
        old.close()


def thumbnail(studio: StudioAPI, asset_id: str, width: str = "180px") -> w.Widget:
    path = studio.thumbnail_path(asset_id)
    if path is None:
        return w.Label(asset_id)
    return w.Image(value=path.read_bytes(), format="jpeg", layout=w.Layout(width=width))


class AssetPicker(w.VBox):
    """Pick an asset from the vault (filtered by kind or tag) or upload a new one.

    ``value`` is the chosen asset id (or None). Uploads go into the vault and are selected.
    ``on_change(callback)`` hears real changes of the choice, not the vault's refreshes.
    """

    def __init__(
        self,
        studio: StudioAPI,
        label: str,
        *,
        kinds: tuple[str, ...] = ("image",),
        tag: str | None = None,
        upload_kind: str | None = None,
        accept: str = "image/*",
        optional: bool = False,
    ):
        lang = studio.settings.language
        self.studio, self.kinds, self.tag, self.optional = studio, kinds, tag, optional
        # One kind: what an upload becomes. Several (an image or a video): the file's own.
        self.upload_kind = upload_kind or (kinds[0] if len(kinds) == 1 else None)
        self.dropdown = w.Dropdown(
            description=label,
            style={"description_width": "initial"},
            layout=w.Layout(width="420px", max_width="100%"),
        )
        self.upload = file_upload(t("ui.upload", lang), accept)
        self.message = Message()
        self._callbacks: list = []
        self._refreshing = False
        self.upload.observe(lambda _c: self._uploaded(), "value")
        self.dropdown.observe(lambda _c: self._refreshing or self._changed(), "value")
        super().__init__([w.HBox([self.dropdown, self.upload]), self.message])
        # asset_updated: a picture marked as avatar elsewhere joins the avatar list at once
        self._unsubscribe = subscribe_refresh(
            studio, self.refresh, ("asset_added", "asset_updated", "asset_deleted")
        )
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
        items = [a for a in items if a.kind not in RESERVED_KINDS]
        names = [(a.name or a.id)[:60] for a in items]
        # The name people gave it; the id only tells apart two of the same name.
        options = [
            (name if names.count(name) == 1 else f"{name} · {a.id[-6:]}", a.id)
            for name, a in zip(names, items)
        ]
        if self.optional or not options:
            options = [(t("ui.choose", self.studio.settings.language), "")] + options
        current = self.dropdown.value
        self._refreshing = True  # new options pass through other values on their way
        try:
            self.dropdown.options = options
            if current in {v for _, v in options}:
                self.dropdown.value = current
            else:  # a required choice: the first (often the only) one; else "choose one"
                self.dropdown.value = options[0][1]
        finally:
            self._refreshing = False
        if self.dropdown.value != current:
            self._changed()

    def on_change(self, callback) -> None:
        self._callbacks.append(callback)

    def _changed(self) -> None:
        for callback in self._callbacks:
            callback(self.value)

    def _check_kind(self, content: bytes, name: str) -> None:
        """A file this picker cannot take (a song as a face-swap target) is named before it is
        stored, not stored and then missing from the list."""
        from enfoads.core import media
        from enfoads.core.assets import kind_of
        from enfoads.core.errors import InvalidInput

        if self.upload_kind is not None:
            return  # the store checks the file against that kind
        sniffed = media.sniff(content)
        if sniffed is not None and kind_of(sniffed[0]) not in self.kinds:
            raise InvalidInput(
                "error.kind_mismatch", field="kind", ext=sniffed[0], kind=self.kinds[0]
            )

    def _uploaded(self) -> None:
        files = uploaded_files(self.upload)
        if not files:
            return
        name, content = files[0]
        try:
            self._check_kind(content, name)
            asset = self.studio.upload_asset(content, name, self.upload_kind)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.message.show_error(exc, self.studio.settings.language)
            return
        self.message.show("")
        show_file_name(self.upload, name)
        self.value = asset.id
