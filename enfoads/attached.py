"""A studio attached to the engine of its data dir: the same facade, no models of its own.

A dashboard page, a second kernel or the CLI on a data dir whose engine already runs gets
this instead of a second ``Studio``. Reads (assets, their files, jobs) come straight from the
shared database and files; everything that changes the studio or needs a model goes through
the engine's HTTP API, and the engine's events arrive over Socket.IO into a local bus, so the
panels subscribe exactly as they do in-process.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from typing import Any

from enfoads.core import events, provenance
from enfoads.core.api import Facade
from enfoads.core.assets import Asset, AssetStore, Page, declare_kind, utcnow
from enfoads.core.db import create_engine, make_session_factory
from enfoads.core.engine import EngineInfo, EngineUnreachable
from enfoads.core.errors import EnfoadsError
from enfoads.core.events import RESYNC
from enfoads.core.jobs import Job, JobState, JobStore, wait_for
from enfoads.core.settings import Settings
from enfoads.core.storage import open_bucket
from enfoads.core.studio import Studio

log = logging.getLogger(__name__)
# A job's record is read back from the database after the engine answers; generation and
# render requests answer at once, so only uploads and direct face swaps take longer.
HTTP_TIMEOUT_S = 300.0


class RemoteError(EnfoadsError):
    """An error the engine answered: its status, code, field and message, as the engine said."""

    def __init__(self, status: int, body: dict[str, Any]):
        self.status = status
        self.key = "error." + str(body.get("error") or "remote")
        self.field = body.get("field")
        self.params = {}
        self.text = str(body.get("message") or f"HTTP {status}")
        Exception.__init__(self, self.text)

    def message(self, lang: str = "es") -> str:
        return self.text


class AttachedStudio(Facade):
    """The ``Studio`` facade over the engine's API (see the module docstring)."""

    is_engine = False

    def __init__(self, settings: Settings, engine: EngineInfo):
        import httpx

        self.settings = settings
        self.engine_info = engine
        self.bus = events.EventBus()
        self.engine = create_engine(settings.db_url)
        sessions = make_session_factory(self.engine)
        s = settings
        self.assets = AssetStore(
            sessions,
            s.assets_dir,
            self.bus,
            thumbnail_px=s.thumbnail_px,
            max_upload_bytes=s.max_upload_bytes,
            max_image_pixels=s.max_image_pixels,
            bucket=open_bucket(s),
            credentials=provenance.Credentials(s.signing_dir),
        )
        self._jobs = JobStore(sessions, self.bus, utcnow)
        self._http = httpx.Client(
            base_url=engine.url,
            timeout=HTTP_TIMEOUT_S,
            headers={"Authorization": f"Bearer {engine.token}"},
        )
        self._waiters: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.closed = False
        try:
            self._health = self._call("GET", "/")
        except Exception as exc:  # noqa: BLE001 - any failure here is "cannot attach"
            self._http.close()
            self.engine.dispose()
            reason = exc.message("en") if isinstance(exc, EnfoadsError) else type(exc).__name__
            raise EngineUnreachable(engine, reason) from None
        self._declare_kinds()
        self._sio = self._connect_events()
        log.info("attached to the engine of %s at %s", settings.data_dir, engine.url)

    # -- plumbing ----------------------------------------------------------------------
    def _declare_kinds(self) -> None:
        """The asset kinds the engine's capabilities write (an export's ZIP), so this page
        lists and filters them as the engine does."""
        try:
            described = self.describe_capabilities()
        except EnfoadsError as exc:  # an older engine: only the built-in kinds
            log.warning("the engine did not describe its capabilities: %s", exc.message("en"))
            return
        for capability in described.values():
            for kind, exts in (capability.get("asset_kinds") or {}).items():
                try:
                    declare_kind(kind, exts)
                except ValueError as exc:
                    log.warning("asset kind from the engine ignored: %s", exc)

    def _connect_events(self) -> Any:
        import socketio

        sio = socketio.Client(reconnection=True, reconnection_delay=0.5)
        for name in ("job_update", "asset_added", "asset_updated", "asset_deleted", "gpu_status"):
            sio.on(name, lambda payload, name=name: self._on_event(name, payload))
        sio.on("connect", self._on_reconnect)
        sio.connect(
            self.engine_info.url,
            auth={"token": self.engine_info.token},
            transports=["websocket"],
            wait_timeout=10,
        )
        return sio

    def _on_reconnect(self) -> None:
        """Connected again after a drop: events sent meanwhile are lost, so the panels read the
        studio afresh (``resync``) and the waiters check their jobs' records."""
        if not hasattr(self, "_sio"):
            return  # the first connect, from the constructor
        log.info("events from the engine again: resync")
        with self._lock:
            waiters = list(self._waiters.items())
        for job_id, waiter in waiters:
            try:
                if self.get_job(job_id).state.finished:
                    waiter.set()
            except EnfoadsError:
                waiter.set()
        self.bus.publish(events.Event(RESYNC, {}))

    def _on_event(self, name: str, payload: dict[str, Any]) -> None:
        if name == "job_update" and JobState.is_finished(payload.get("state")):
            with self._lock:
                waiter = self._waiters.get(payload.get("id", ""))
            if waiter is not None:
                waiter.set()
        self.bus.publish(events.Event(name, payload))

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        # the engine answers in this page's language (a switch here is this page's alone)
        headers = {"Accept-Language": self.settings.language, **kwargs.pop("headers", {})}
        response = self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"error": "http", "message": f"HTTP {response.status_code}"}
            raise RemoteError(response.status_code, body if isinstance(body, dict) else {})
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _job_from(self, reply: dict[str, Any]) -> Job:
        return self.get_job(reply.get("job_id") or reply["id"])

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> AttachedStudio:
        return self  # the engine runs the queue

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._sio.disconnect()
        except Exception:  # noqa: BLE001 - closing must not fail on a dead engine
            pass
        self._http.close()
        self.engine.dispose()

    def __enter__(self) -> AttachedStudio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(
        self, handler: Callable[[events.Event], None], name: str | None = None
    ) -> Callable[[], None]:
        return self.bus.subscribe(handler, name)

    # -- settings and status -------------------------------------------------------------
    PERSISTED = Studio.PERSISTED  # the settings a surface may change at run time

    @property
    def language(self) -> str:
        return self.settings.language

    def update_settings(self, **changes: Any) -> Settings:
        """The language is this page's own (another page, the notebook and the API keep
        theirs); the rest (the licence notice read) is the engine's, for every surface."""
        language = changes.pop("language", None)
        if changes:
            current = self._call("PATCH", "/api/settings", json=changes)
            self.settings = Settings.model_validate({**self.settings.model_dump(), **current})
        if language is not None:
            self.settings = Settings.model_validate(
                {**self.settings.model_dump(), "language": language}
            )
        return self.settings

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/")

    def gpu_status(self) -> dict[str, Any]:
        return self._call("GET", "/gpu-status")

    def model_inventory(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/models")["models"]

    def missing_models(self) -> list[dict[str, Any]]:
        from enfoads.core.inventory import missing_models

        return missing_models(self)

    def brand_kit(self) -> dict[str, Any]:
        return self._call("GET", "/api/brand-kit")

    def save_brand_kit(self, **kit: Any) -> dict[str, Any]:
        return self._call("PUT", "/api/brand-kit", json=kit)

    # -- assets: read here, changed by the engine -------------------------------------------
    def list_assets(self, **filters: Any) -> Page:
        return self.assets.list(**filters)

    def get_asset(self, asset_id: str) -> Asset:
        return self.assets.get(asset_id)

    def upload_asset(
        self, data: bytes, name: str, kind: str | None = None, tags: tuple[str, ...] = ()
    ) -> Asset:
        form = {"tags": ",".join(tags)} | ({"kind": kind} if kind else {})
        reply = self._call("POST", "/api/assets", files={"file": (name, data)}, data=form)
        return self.get_asset(reply["id"])

    def tag_asset(
        self, asset_id: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()
    ) -> Asset:
        self._call(
            "POST", f"/api/assets/{asset_id}/tags", json={"add": list(add), "remove": list(remove)}
        )
        return self.get_asset(asset_id)

    def delete_asset(self, asset_id: str, confirm: bool = False) -> None:
        self._call(
            "DELETE", f"/api/assets/{asset_id}", params={"confirm": "true"} if confirm else None
        )

    def import_seed_json(self, data: bytes, lang: str | None = None) -> dict[str, Any]:
        headers = {"Accept-Language": lang} if lang else {}
        return self._call(
            "POST", "/api/assets/import", files={"file": ("assets.json", data)}, headers=headers
        )

    def reindex_assets(self, lang: str | None = None) -> dict[str, Any]:
        headers = {"Accept-Language": lang} if lang else {}
        return self._call("POST", "/api/assets/reindex", headers=headers)

    # -- jobs --------------------------------------------------------------------------
    def submit(self, kind: str, params: Any) -> Job:
        """Any job kind through the engine's ``POST /api/jobs/{kind}`` (derived from its
        ``JobSpec``): the request model's fields the caller set (the engine's defaults fill
        the rest), or the fields as a dict. The engine validates it once."""
        body = (
            params.model_dump(mode="json", exclude_unset=True)
            if hasattr(params, "model_dump")
            else dict(params)
        )
        return self._job_from(self._call("POST", f"/api/jobs/{kind}", json=_jsonable(body)))

    def describe_capabilities(self) -> dict[str, Any]:
        return self._call("GET", "/api/capabilities")["capabilities"]

    def get_job(self, job_id: str) -> Job:
        return self._jobs.get(job_id)

    def list_jobs(self, **filters: Any) -> list[Job]:
        return self._jobs.list(**filters)

    def cancel_job(self, job_id: str) -> Job:
        return self._job_from(self._call("POST", f"/api/jobs/{job_id}/cancel"))

    def retry_job(self, job_id: str) -> Job:
        return self._job_from(self._call("POST", f"/api/jobs/{job_id}/retry"))

    def wait_job(self, job_id: str, timeout: float | None = None) -> Job:
        """Until the job has finished (its event, or the record, every half second)."""
        with self._lock:
            waiter = self._waiters.setdefault(job_id, threading.Event())
        try:
            return wait_for(lambda: self.get_job(job_id), waiter, timeout)
        finally:
            with self._lock:
                self._waiters.pop(job_id, None)

    # -- images ------------------------------------------------------------------------
    def enhance_prompt(self, prompt: str, **options: Any) -> Any:
        from enfoads.core.pipelines.prompt import PromptResult

        options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()}
        d = self._call("POST", "/magic-prompt", json={"prompt": prompt, **options})
        return PromptResult(
            prompt=d["prompt"],
            enhanced=d["enhanced_prompt"],
            language=d["language"],
            engine=d["engine"],
            additions=tuple(d["additions"]),
            notices=tuple(d["notices"]),
        )

    def options(self, name: str) -> dict[str, Any]:
        return self._call("GET", "/api/capabilities")["capabilities"][name]["options"]

    def image_options(self) -> dict[str, Any]:
        from enfoads.core.pipelines.image import image_options

        return image_options(self.settings)  # no model needed: computed here, no round trip

    # -- face swap ---------------------------------------------------------------------
    @staticmethod
    def _image_fields(item: Any, field: str) -> dict[str, Any]:
        from enfoads.core.pipelines.faceswap import ImageInput

        if isinstance(item, ImageInput) and item.data:
            return {f"{field}_image": base64.b64encode(item.data).decode()}
        asset_id = item.asset_id if isinstance(item, ImageInput) else str(item)
        return {f"{field}_asset_id": asset_id}

    def detect_faces(self, image: Any) -> dict[str, Any]:
        fields = self._image_fields(image, "x")
        body = (
            {"asset_id": fields["x_asset_id"]}
            if "x_asset_id" in fields
            else {"image": fields["x_image"]}
        )
        return self._call("POST", "/detect-faces", json=body)

    def swap_face_now(self, source: Any, target: Any, **options: Any) -> dict[str, Any]:
        body = {
            **self._image_fields(source, "source"),
            **self._image_fields(target, "target"),
            **options,
            "inline": False,
        }
        return self._call("POST", "/face-swap", json=body)

    def faceswap_licence(self, lang: str | None = None) -> dict[str, Any]:
        headers = {"Accept-Language": lang} if lang else {}
        return self._call("GET", "/face-swap/licence", headers=headers)

    # -- voice, avatar and video ---------------------------------------------------------
    def voices(self) -> list[dict[str, Any]]:
        return self._call("GET", "/voices")["voices"]

    def speak(self, text: str, voice: str | None = None, **options: Any) -> dict[str, Any]:
        return self._call("POST", "/speak", json={"text": text, "voice": voice, **options})

    def use_as_avatar(self, asset_id: str) -> Asset:
        self._call("POST", f"/api/assets/{asset_id}/avatar")
        return self.get_asset(asset_id)


def _jsonable(value: Any) -> Any:
    """Tuples as lists, dataclasses as dicts: what the widgets pass, as JSON."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
