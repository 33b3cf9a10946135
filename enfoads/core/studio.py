"""The Studio: the one API that the widgets, the HTTP server, the CLI and the workers call.

It builds the settings, the event bus, the database, the asset store, the job queue and the
VRAM manager once, and hands them to the pipelines. Long operations are jobs; short ones
(listing, prompt enhancement) are direct calls.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from enfoads.core import brand, events, loops, provenance
from enfoads.core.api import Facade
from enfoads.core.assets import Asset, AssetStore, Page, utcnow
from enfoads.core.capability import Capabilities, Services
from enfoads.core.db import create_engine, make_session_factory
from enfoads.core.dbfile import DatabaseBackup, restore_live
from enfoads.core.engine import EngineRegistry, new_owner_id
from enfoads.core.errors import AssetInUse
from enfoads.core.i18n import Reason
from enfoads.core.jobs import Job, JobBackend, JobState, JobStore, LocalJobQueue
from enfoads.core.settings import GB, Settings, load_settings
from enfoads.core.storage import open_bucket
from enfoads.core.vram import ModelManager, resolve_device
from enfoads.version import __version__

log = logging.getLogger(__name__)


class Studio(Facade):
    """Everything the studio can do, behind one object. Use as a context manager or call
    ``start()`` / ``close()``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        jobs: JobBackend | None = None,
        job_backend: Callable[[Studio], JobBackend] | None = None,
    ):
        self.settings = settings or load_settings()
        self.settings.ensure_dirs()
        self.settings.apply_cache_env()
        logging.getLogger("enfoads").setLevel(self.settings.log_level.upper())
        self.started_at = time.time()
        self.bus = events.EventBus()
        self.owner = new_owner_id()
        self.db_backup: DatabaseBackup | None = None
        if self.settings.db_on_local_disk:  # the data dir is on Drive: SQLite lives locally
            restore_live(self.settings.live_db_path, self.settings.db_backup_path)
            self.db_backup = DatabaseBackup(
                self.settings.live_db_path, self.settings.db_backup_path, self.owner
            )
        self.engine = create_engine(self.settings.db_url)
        sessions = make_session_factory(self.engine)
        if not self.settings.database_url:  # it holds the attach token: this user's only
            for suffix in ("", "-wal", "-shm"):
                path = Path(f"{self.settings.live_db_path}{suffix}")
                if path.exists() and path.stat().st_uid == os.getuid():
                    path.chmod(0o600)
        s = self.settings
        self.assets = AssetStore(
            sessions,
            s.assets_dir,
            self.bus,
            thumbnail_px=s.thumbnail_px,
            max_upload_bytes=s.max_upload_bytes,
            max_image_pixels=s.max_image_pixels,
            bucket=open_bucket(s),
            credentials=provenance.Credentials(s.signing_dir),
            clock=clock,
            writable=self.check_writable,
        )
        # Where the database is this machine's own (a data dir on Drive), the data dir's lease
        # file keeps a second machine's engine out.
        self.registry = EngineRegistry(
            sessions,
            self.owner,
            lease_s=s.lease_s,
            clock=clock,
            lease_file=s.data_dir / "engine.lease" if s.db_on_local_disk else None,
        )
        self.fenced = False
        self._renewed_at = time.monotonic()
        # Attached surfaces (dashboard pages, other kernels, the CLI) present this token to the
        # engine's API; it is stored in the database of the data dir, next to the engine's URL.
        self.attach_token = secrets.token_urlsafe(24)
        self.sessions, self.clock = sessions, clock
        # ``jobs``: a backend of its own (a worker's handler table); ``job_backend``: builds the
        # engine's queue from this studio (``enfoads.attach.make_studio``: Celery workers);
        # neither: threads of this process.
        self.jobs: JobBackend = jobs or (job_backend(self) if job_backend else self._job_backend())
        # Whether this process runs the jobs (and so loads the models): not an engine whose
        # jobs go to Celery workers (each worker's own Studio is given its handler table).
        self.runs_jobs = jobs is not None or s.queue != "celery"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._warm: threading.Thread | None = None
        self._closers: list[Callable[[], None]] = []  # e.g. the API server started for it
        self.closed = False
        self.models = ModelManager(
            device=lambda: resolve_device(s.device),
            gpu_budget_bytes=int(s.gpu_budget_gb * GB),
            ram_budget_bytes=int(s.ram_budget_gb * GB),
            bus=self.bus,
        )
        self.capabilities = Capabilities(self._services, self.models, self.jobs)
        self.pipelines = self.capabilities  # the capabilities by name (older name)
        self._register_capabilities()

    def job_store(self) -> JobStore:
        """The job records of this data dir (what every job backend keeps its jobs in)."""
        return JobStore(self.sessions, self.bus, self.clock)

    def _job_backend(self) -> JobBackend:
        """Threads of this process. Another backend (``ENFOADS_QUEUE=celery``) is handed in
        (``enfoads.attach.make_studio``): the core imports no queue implementation."""
        s = self.settings
        store = self.job_store()
        if s.queue != "local":
            raise RuntimeError(
                f"ENFOADS_QUEUE={s.queue}: the engine is made by enfoads.attach.make_studio "
                "(enfoads serve, the notebook and the dashboard do)"
            )
        return LocalJobQueue(
            store,
            workers=s.workers,
            lang=lambda: self.settings.language,
            owner=self.owner,
            lease_s=s.lease_s,
            timeout_s=self.job_timeout,
        )

    def job_timeout(self, kind: str) -> float:
        """A job kind's time limit: the setting, else its ``JobSpec``'s, else the default."""
        return self.settings.job_timeout(kind, self.capabilities.timeout_for(kind))

    def _services(self, needs: tuple[str, ...], capabilities: Any) -> Services:
        """What one capability gets: the live settings, the stores, and what it named."""
        return Services(
            settings=lambda: self.settings,
            assets=self.assets,
            models=self.models,
            bus=self.bus,
            jobs=self.jobs,
            capabilities=capabilities,
            needs=needs,
        )

    def _register_capabilities(self) -> None:
        """The capabilities (checked against the contract) and the studio's own job."""
        from enfoads.core import inventory
        from enfoads.core.pipelines import register_all

        register_all(self.capabilities, self.settings.extra_capabilities)
        self.capabilities.add_job(
            inventory.prepare_job(self.capabilities, lambda: self.settings, self.models)
        )

    def describe_capabilities(self) -> dict[str, Any]:
        """Each capability: what it needs, its jobs (and their request models), its models,
        its options."""
        caps = self.capabilities
        return {
            name: {
                "needs": list(cap.needs),
                "jobs": {j.kind: j.request.__name__ for j in cap.jobs()},
                "models": [m.key for m in cap.models()],
                "asset_kinds": {k: list(v) for k, v in cap.asset_kinds().items()},
                "options": cap.options(),
            }
            for name, cap in caps.items()
        }

    def options(self, name: str) -> dict[str, Any]:
        """A capability's choices and limits for the UI (``image``, ``video``, ``voice``...)."""
        return self.capabilities[name].options()

    # -- lifecycle ---------------------------------------------------------------------
    is_engine = True  # this object owns the models and the queue (AttachedStudio: False)

    def start(self) -> Studio:
        """Become the engine of the data dir (``EngineBusy`` names the live one otherwise),
        sweep what a killed process left, then run the queue."""
        if self._beat is not None:
            return self
        self.registry.claim()
        self._renewed_at = time.monotonic()
        self.sweep()
        if self.db_backup is not None:  # a copy in the data dir after each finished job
            self.db_backup.start()
            self.bus.subscribe(self._job_finished_backup, "job_update")
            atexit.register(self.db_backup.now)  # a kernel that ends without close()
        self.jobs.start()
        self._beat = loops.every(
            lambda: self.settings.lease_s / 3,
            self._keep_lease,
            self._stop,
            "enfoads-engine-lease",
            "could not renew the engine lease",  # a busy database must not end the lease
        )
        return self

    def warm_start(self) -> threading.Thread | None:
        """Let each capability prepare, on a background thread, what earlier sessions used
        (``Capability.warm_start``: the image model and its compiled placements), so the first
        jobs find it ready. For engines that live on (notebook, dashboard, ``enfoads serve``,
        GPU workers), not one-shot commands. None with ``ENFOADS_WARM_START=off`` or where
        the jobs run on Celery workers (they warm themselves)."""
        if self.settings.warm_start == "off" or not self.runs_jobs:
            return None
        if self.closed or self._warm is not None:  # closed, or warmed once already
            return None

        def run() -> None:
            for name, capability in self.capabilities.items():
                if self._stop.is_set():
                    return
                try:
                    if capability.warm_start():
                        log.info("warm start: %s prepared", name)
                except Exception as exc:  # noqa: BLE001 - it prepares on first use instead
                    log.warning("warm start of %s failed (%s): it prepares on first use", name, exc)

        self._warm = threading.Thread(target=run, name="enfoads-warm-start", daemon=True)
        self._warm.start()
        return self._warm

    def _keep_lease(self) -> None:
        if self.registry.heartbeat():  # (a fenced one: the other let the dir go)
            self._hold_lease()
            return
        if not self.fenced:  # another engine took the data dir: write nothing more
            self.fenced = True
            log.error("this engine lost its lease on %s: fenced", self.settings.data_dir)
        self._reclaim()

    def _reclaim(self) -> None:
        """A fenced engine takes the data dir back once the other one is gone."""
        from enfoads.core.engine import EngineBusy

        try:
            self.registry.claim()
        except EngineBusy:
            return
        self._hold_lease()

    def _hold_lease(self) -> None:
        """The lease renewed or taken back: writes are allowed again."""
        self._renewed_at = time.monotonic()
        if self.fenced:
            self.fenced = False
            log.warning("this engine has the lease on %s again", self.settings.data_dir)

    def check_writable(self) -> None:
        """Raise ``EngineFenced`` while another engine holds this data dir's lease, or while
        this one cannot know it still holds it: no renewal for a whole lease (a process that
        was paused acts on nothing until its heartbeat has checked)."""
        stale = (
            self._beat is not None and time.monotonic() - self._renewed_at > self.settings.lease_s
        )
        if self.fenced or stale:
            from enfoads.core.errors import EngineFenced

            raise EngineFenced()

    def _job_finished_backup(self, event: events.Event) -> None:
        if JobState.is_finished(event.payload.get("state")) and self.db_backup:
            self.db_backup.request()

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` first when the studio closes (servers started for it, tunnels)."""
        self._closers.append(closer)

    def publish_api(self, url: str) -> None:
        """Record where this engine's API listens, for the surfaces that attach to it."""
        self.registry.publish(url, self.attach_token)

    def sweep(self) -> dict[str, int]:
        """Remove what a killed process left: temp files, unused blobs, dead renders' folders."""
        from enfoads.core import media

        removed = self.assets.sweep()
        removed["work_dirs"] = media.sweep_work_dirs(self.settings.work_dir)
        return removed

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:  # the rest must close anyway
                log.exception("closing %r failed", closer)
        self._stop.set()
        if self._warm is not None:  # a model it is loading is unloaded below, not left behind
            self._warm.join(60)
        self.jobs.shutdown()
        if self._beat is not None:
            self._beat.join(5)
            if self.db_backup is not None:  # the last copy, then the lease: never the reverse
                atexit.unregister(self.db_backup.now)
                self.db_backup.close()
            self.registry.release()
        self.models.unload_all()
        self.engine.dispose()

    def __enter__(self) -> Studio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(
        self, handler: Callable[[events.Event], None], name: str | None = None
    ) -> Callable[[], None]:
        return self.bus.subscribe(handler, name)

    # -- settings chosen in the UI ----------------------------------------------------------
    PERSISTED = ("language", "faceswap_licence_accepted")

    def update_settings(self, **changes: Any) -> Settings:
        """Change settings at run time (language, licence acknowledgement); those in
        ``PERSISTED`` are also written to ``settings.json`` in the data dir."""
        import json

        from enfoads.core.errors import InvalidInput
        from enfoads.core.settings import SETTINGS_FILE

        unknown = set(changes) - set(self.PERSISTED)
        if unknown:
            raise InvalidInput(
                "error.invalid", field=sorted(unknown)[0], reason=Reason("reason.not_changeable")
            )
        try:
            updated = Settings.model_validate({**self.settings.model_dump(), **changes})
        except ValueError as exc:  # pydantic's ValidationError: name the first problem
            errors = getattr(exc, "errors", lambda: [])()
            field = (
                str(errors[0]["loc"][0]) if errors and errors[0].get("loc") else next(iter(changes))
            )
            reason = errors[0]["msg"] if errors else str(exc).splitlines()[0]
            raise InvalidInput("error.invalid", field=field, reason=reason[:200]) from exc
        path = self.settings.data_dir / SETTINGS_FILE
        stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        stored.update({k: getattr(updated, k) for k in changes})
        path.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.settings = updated  # the queue and the pipelines read it from here, live
        return updated

    @property
    def language(self) -> str:
        return self.settings.language

    def model_inventory(self) -> list[dict[str, Any]]:
        """Every declared model with its licence and whether it is on disk (no network)."""
        return self.capabilities.inventory()

    def missing_models(self) -> list[dict[str, Any]]:
        """The models not on disk yet (of the voices, the default one)."""
        from enfoads.core.inventory import missing_models

        return missing_models(self)

    # -- brand kit ---------------------------------------------------------------------
    def brand_kit(self) -> dict[str, Any]:
        """The current brand kit (logo asset, colours, font asset, call to action), or defaults."""
        return brand.load_kit(self.assets)

    def save_brand_kit(self, **kit: Any) -> dict[str, Any]:
        import json

        from enfoads.core.errors import InvalidInput
        from enfoads.core.pipelines.compose import CTA_MAX, hex_rgb

        allowed = {"logo_asset_id", "colours", "font_asset_id", "cta"}
        if set(kit) - allowed:
            raise InvalidInput(
                "error.invalid",
                field=sorted(set(kit) - allowed)[0],
                reason=Reason("reason.unknown_kit_field"),
            )
        merged = {**self.brand_kit(), **kit}
        if merged["logo_asset_id"]:
            self.assets.open_image(merged["logo_asset_id"])
        if merged["font_asset_id"] and self.assets.get(merged["font_asset_id"]).kind != "font":
            raise InvalidInput(
                "error.invalid",
                field="font_asset_id",
                reason=Reason("reason.not_font", id=merged["font_asset_id"]),
            )
        for colour in merged["colours"]:
            hex_rgb(colour, "colours")
        if len(merged["cta"]) > CTA_MAX:
            raise InvalidInput(
                "error.too_long", field="cta", length=len(merged["cta"]), limit=CTA_MAX
            )
        previous = self.assets.list(kind="brand_kit", limit=100).items
        self.assets.add_bytes(
            json.dumps(merged, ensure_ascii=False).encode(),
            "brand_kit",
            ext="json",
            name="brand kit",
        )
        for old in previous:  # one kit in the vault: the new one is stored before the old go
            self.assets.delete(old.id)
        return merged

    # -- status ------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 1),
            "device": self.models.device,
        }

    def gpu_status(self) -> dict[str, Any]:
        return self.models.stats()

    # -- assets ------------------------------------------------------------------------
    def list_assets(self, **filters: Any) -> Page:
        return self.assets.list(**filters)

    def get_asset(self, asset_id: str) -> Asset:
        return self.assets.get(asset_id)

    def upload_asset(
        self, data: bytes, name: str, kind: str | None = None, tags: tuple[str, ...] = ()
    ) -> Asset:
        return self.assets.add_upload(data, name, kind, tags=tags)

    def tag_asset(
        self, asset_id: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()
    ) -> Asset:
        self._refuse_reserved(asset_id, "tag")
        return self.assets.tag(asset_id, add, remove)

    def delete_asset(self, asset_id: str, confirm: bool = False) -> None:
        """Delete an asset of the vault with its own files (a video's WAV, SRT and VTT).

        The brand kit's logo or font goes only with ``confirm=True`` (else ``AssetInUse``), and
        the kit then drops it. The studio's own records (the brand kit's JSON) change through
        their own calls (``save_brand_kit``)."""
        asset = self._refuse_reserved(asset_id, "delete")
        kit = self.brand_kit()
        uses = [key for key in ("logo_asset_id", "font_asset_id") if kit[key] == asset_id]
        if uses and not confirm:
            raise AssetInUse(asset.name or asset.id, uses[0].split("_")[0])
        for part in self.assets.parts_of([asset_id]).get(asset_id, []):
            self.assets.delete(part.id)
        self.assets.delete(asset_id)
        if uses:
            self.save_brand_kit(**{key: None for key in uses})

    def _refuse_reserved(self, asset_id: str, action: str) -> Asset:
        """The asset, unless it is one of the studio's own records (the brand kit's JSON)."""
        from enfoads.core.assets import RESERVED_KINDS
        from enfoads.core.errors import InvalidInput

        asset = self.assets.get(asset_id)
        if asset.kind in RESERVED_KINDS:
            raise InvalidInput(
                "error.reserved_kind", field="asset_id", kind=asset.kind, action=action
            )
        return asset

    def import_seed_assets(self, path: str | Path) -> list[Asset]:
        return self.assets.import_seed_json(Path(path))

    def import_seed_json(self, data: bytes, lang: str | None = None) -> dict[str, Any]:
        """Import the seed's ``assets.json`` (its bytes): counts, the new assets and why each
        skipped entry was (in ``lang``, default the studio's language)."""
        return self.assets.import_seed(data).to_dict(lang or self.settings.language)

    def reindex_assets(self, lang: str | None = None) -> dict[str, Any]:
        """The vault again for files no asset uses, from each file's own record (after a lost
        or replaced database): counts, the assets back, and why each skipped file was."""
        self.check_writable()
        return self.assets.reindex().to_dict(lang or self.settings.language)

    # -- jobs --------------------------------------------------------------------------
    def submit(self, kind: str, params: Any) -> Job:
        """Queue a job: ``params`` (its request model, or the fields as a dict) is validated
        once, by the request model of the capability that declared ``kind``."""
        self.check_writable()
        return self.capabilities.submit(kind, params)

    def get_job(self, job_id: str) -> Job:
        return self.jobs.get(job_id)

    def list_jobs(self, **filters: Any) -> list[Job]:
        return self.jobs.list(**filters)

    def cancel_job(self, job_id: str) -> Job:
        return self.jobs.cancel(job_id)

    def retry_job(self, job_id: str) -> Job:
        """Run a finished job's request again, checked again first (an asset it names may be
        gone, or the record predates a rule)."""
        job = self.jobs.get(job_id)
        if self.capabilities.job(job.kind) is not None and job.state.finished:
            self.capabilities.request(job.kind, job.params)
        return self.jobs.retry(job_id)

    def wait_job(self, job_id: str, timeout: float | None = None) -> Job:
        return self.jobs.wait(job_id, timeout)

    # -- images (pipelines/image.py, pipelines/prompt.py) --------------------------------
    def enhance_prompt(self, prompt: str, **options: Any) -> Any:
        """The magic prompt (direct call, milliseconds with the rules): a ``PromptResult``."""
        return self.capabilities["prompt"].enhance(prompt, **options)

    def image_options(self) -> dict[str, Any]:
        """Aspects, styles and limits, for the widgets and the API."""
        return self.options("image")

    # -- face swap (pipelines/faceswap.py) -----------------------------------------------
    def detect_faces(self, image: Any) -> dict[str, Any]:
        """Faces in an image (asset id or ``ImageInput``), left to right, with boxes and scores."""
        from enfoads.core.pipelines.faceswap import ImageInput

        item = image if isinstance(image, ImageInput) else ImageInput(asset_id=str(image))
        return self.capabilities["faceswap"].detect(item)

    def swap_face_now(self, source: Any, target: Any, **options: Any) -> dict[str, Any]:
        """Image face swap as a direct call (about a second on a T4): ``source``/``target`` are
        asset ids or ``ImageInput`` (uploaded bytes). The result is stored as an asset."""
        from enfoads.core.pipelines.faceswap import ImageInput

        wrap = lambda x: x if isinstance(x, ImageInput) else ImageInput(asset_id=str(x))  # noqa: E731
        return self.capabilities["faceswap"].swap_image(wrap(source), wrap(target), **options)

    def faceswap_licence(self, lang: str | None = None) -> dict[str, Any]:
        """InsightFace's licence and notice (in ``lang``, default the studio's language)."""
        return self.capabilities["faceswap"].licence(lang)

    # -- voice, avatar and video (pipelines/voice.py, avatar.py, video.py) ------------------
    def voices(self) -> list[dict[str, Any]]:
        """The voice catalogue, with whether each voice is on disk already."""
        return self.capabilities["voice"].catalogue()

    def speak(self, text: str, voice: str | None = None, **options: Any) -> dict[str, Any]:
        """Synthesise ``text`` into a WAV asset (``preview=True``: a short fixed sentence)."""
        return self.capabilities["voice"].speak_to_asset(text, voice, **options)

    def use_as_avatar(self, asset_id: str) -> Asset:
        """Mark an image as an avatar (after checking that it has a face): tag ``avatar``."""
        import numpy as np

        image = self.assets.open_image(asset_id).convert("RGB")
        self.capabilities["avatar"].locate(np.asarray(image), asset_id)
        return self.assets.tag(asset_id, add=("avatar",))
