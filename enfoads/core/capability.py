"""The contract every capability satisfies, and the registry that checks it.

A capability (images, face swap, voice, video...) is one class in one module of
``enfoads.core.pipelines``. It declares:

- its **models** (``ModelSpec``: key, what it is, licence, size, an on-disk check, a loader),
  from which the inventory, Settings' model table, ``enfoads info`` and the model manager
  are built;
- its **job kinds** (``JobSpec``): one pydantic request model per job, which the HTTP route,
  the facade, the job record and the OpenAPI schema (hence the TypeScript types) all use;
- its **options** for the UI (choices and limits);
- the **other capabilities it needs**, by name (``needs``).

It receives ``Services`` (the live settings, the asset store, the model manager, the event
bus, the job queue, and the capabilities it named) instead of the whole studio, so no
pipeline imports the studio and none reaches another one it did not declare.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from enfoads.core.assets import declare_kind
from enfoads.core.validation import RequestModel, parse_request

if TYPE_CHECKING:
    from enfoads.core.assets import AssetStore
    from enfoads.core.events import EventBus
    from enfoads.core.jobs import Job, JobBackend, JobContext, JobResult
    from enfoads.core.settings import Settings
    from enfoads.core.vram import ModelManager

log = logging.getLogger(__name__)

PREPARE_JOB = "prepare_model"  # the studio's own job: fetch one declared model


class ContractError(TypeError):
    """A capability that does not satisfy the contract (a programming error, at start-up)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of a capability, as the inventory shows it and the model manager loads it."""

    key: str  # the inventory key and the model manager's name
    capability: str
    model: str  # what it is, for people ("faster-whisper small")
    licence: str
    size_bytes: int  # download size, for the inventory and the download progress
    on_disk: Callable[[], bool]  # no network
    commercial_use: bool | None = True  # None: see the model card
    licence_url: str | None = None
    # How the model manager loads it (on CPU first) and what it weighs there; None: the
    # capability loads it itself (Piper voices).
    load: Callable[[], Any] | None = None
    memory_bytes: int | Callable[[], int] | None = None
    adapter: Any = None
    # How "prepare" fetches it; None: loaded once through the model manager.
    fetch: Callable[[], Any] | None = None
    optional: bool = False  # something else stands in while it is missing (not "missing")

    def row(self) -> dict[str, Any]:
        row = {
            "key": self.key,
            "capability": self.capability,
            "model": self.model,
            "licence": self.licence,
            "commercial_use": self.commercial_use,
            "size_bytes": int(self.size_bytes),
            "on_disk": bool(self.on_disk()),
        }
        if self.licence_url:
            row["licence_url"] = self.licence_url
        if self.optional:
            row["optional"] = True
        return row


RATE_CLASSES = ("generation", "upload")


@dataclass(frozen=True)
class JobSpec:
    """One job kind, and everything an edge needs to reach it: its request model, the checks
    that need the studio's state (assets that must exist, a voice that must resolve), run
    once before queueing, its handler; the HTTP route that queues it (the seed's path, if it
    has one: every kind is also ``POST /api/jobs/{kind}``), the Celery queue its workers
    take, its default time limit, its rate-limit class and how many uploads' worth its body
    may carry (the guard's limit for its routes). The routes, the OpenAPI schema
    (so the TypeScript client), the queue table, the time limits and the attached studio's
    ``submit`` are all derived from the registered specs: a new job kind is its module."""

    kind: str
    request: type[RequestModel]
    run: Callable[[JobContext, Any], JobResult]
    # The request as it is stored and run (a seed chosen, defaults applied), or InvalidInput.
    check: Callable[[Any], Any] | None = None
    # e.g. "/generate-image" (the seed's path), besides /api/jobs/{kind}; a ``{field}`` in it
    # is that request field, taken from the path (the body then carries the others)
    route: str | None = None
    queue: str = "images"  # the Celery queue (a worker started with --queues takes some)
    timeout_s: float | None = None  # None: ENFOADS_JOB_TIMEOUT_S (ENFOADS_JOB_TIMEOUTS_S wins)
    rate: str = "generation"  # the rate-limit class of the routes that queue it
    body_uploads: float = 0  # uploads' worth a request may carry (base64 files); 0: small JSON
    summary: str = ""  # the route's description (default: the request model's docstring)

    def __post_init__(self) -> None:
        if not self.kind.isidentifier():
            raise ContractError(f"job kind {self.kind!r} is not an identifier")
        if self.route is not None:
            fields = set(self.request.model_fields)
            unknown = set(self.path_fields()) - fields
            if not self.route.startswith("/") or unknown or "{}" in self.route:
                raise ContractError(
                    f"{self.kind}: route {self.route!r} is not a path whose {{parameters}} "
                    f"are fields of {self.request.__name__}"
                )
        if self.rate not in RATE_CLASSES:
            raise ContractError(f"{self.kind}: rate class {self.rate!r} is not {RATE_CLASSES}")
        if not self.queue.isidentifier():
            raise ContractError(f"{self.kind}: queue {self.queue!r} is not an identifier")
        if self.body_uploads < 0:
            raise ContractError(f"{self.kind}: body_uploads must not be negative")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ContractError(f"{self.kind}: timeout_s must be positive")

    def description(self) -> str:
        return self.summary or (self.request.__doc__ or "").strip()

    def path_fields(self) -> list[str]:
        """The request's fields its route carries in the path (``/api/briefs/{brief_id}/…``)."""
        return re.findall(r"{(\w+)}", self.route or "")


class Services:
    """What a capability may use. ``settings`` is the studio's one live settings object."""

    def __init__(
        self,
        *,
        settings: Callable[[], Settings],
        assets: AssetStore,
        models: ModelManager,
        bus: EventBus,
        jobs: JobBackend,
        capabilities: Mapping[str, Capability],
        needs: tuple[str, ...] = (),
    ):
        self._settings, self.assets, self.models = settings, assets, models
        self.bus, self.jobs = bus, jobs
        self._capabilities, self._needs = capabilities, needs

    @property
    def settings(self) -> Settings:
        return self._settings()

    def need(self, name: str) -> Any:
        """A capability this one declared in ``needs``."""
        if name not in self._needs:
            raise ContractError(f"{name!r} is not in this capability's needs {self._needs}")
        return self._capabilities[name]


class Capability:
    """Base of every capability. Subclasses set ``name`` (and ``needs``) and override what they
    declare; the registry checks them when they register."""

    name: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, services: Services):
        self.services = services

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def asset_kinds(self) -> dict[str, tuple[str, ...]]:
        """Kinds of asset only this capability writes (the user may tag and delete them), with
        their file types: ``{"export": ("zip",)}``. Declared to the store when it registers."""
        return {}

    def models(self) -> list[ModelSpec]:
        """The models, with the live settings (a configured LLM appears once set)."""
        return []

    def jobs(self) -> list[JobSpec]:
        return []

    def options(self) -> dict[str, Any]:
        """Choices and limits for the UI (the widgets' option lists come from here)."""
        return {}

    def warm_start(self) -> bool:
        """Called once on a background thread when a long-lived engine starts: prepare what an
        earlier session showed will be asked for (load a model, ready compiled code) without
        holding up any job. True if it prepared something."""
        return False


class Capabilities(Mapping[str, Capability]):
    """The registered capabilities, in registration order; the job kinds and models they
    declared are handed to the job queue and the model manager here, and nowhere else."""

    def __init__(
        self,
        services: Callable[[tuple[str, ...], Mapping[str, Capability]], Services],
        models: ModelManager,
        jobs: JobBackend,
    ):
        self._make_services, self._manager, self._queue = services, models, jobs
        self._items: dict[str, Capability] = {}
        self._jobs: dict[str, JobSpec] = {}
        self._model_keys: set[str] = set()  # those declared so far, each once

    # -- Mapping -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Capability:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    # -- registration --------------------------------------------------------------------
    def add(self, cls: type[Capability]) -> Capability:
        """Check ``cls`` against the contract, build it with its services, and register its
        job kinds and models."""
        name = getattr(cls, "name", "")
        if not (isinstance(cls, type) and issubclass(cls, Capability)):
            raise ContractError(f"{cls!r} is not a Capability")
        if not name or not name.isidentifier() or name in self._items:
            raise ContractError(f"capability name {name!r} is empty, not an identifier or taken")
        for need in cls.needs:
            if need not in self._items:
                raise ContractError(f"{name} needs {need!r}, which is not registered before it")
        capability = cls(self._make_services(tuple(cls.needs), self))
        specs = capability.jobs()
        for spec in specs:
            if not (
                isinstance(spec, JobSpec)
                and isinstance(spec.request, type)
                and issubclass(spec.request, RequestModel)
                and callable(spec.run)
            ):
                raise ContractError(f"{name}: {spec!r} is not a JobSpec with a RequestModel")
            if spec.kind in self._jobs or spec.kind in self._queue.kinds():
                raise ContractError(f"{name}: job kind {spec.kind!r} is registered twice")
        models = capability.models()
        self._check_models(name, models)
        for kind, exts in capability.asset_kinds().items():
            try:
                declare_kind(kind, exts)
            except ValueError as exc:
                raise ContractError(f"{name}: {exc}") from exc
        if not isinstance(capability.options(), dict):
            raise ContractError(f"{name}: options() must return a dict")
        self._items[name] = capability
        self._model_keys |= {m.key for m in models}
        for spec in specs:
            self._jobs[spec.kind] = spec
            self._queue.register(spec.kind, self._handler(spec), queue=spec.queue)
        self.sync_models(models)
        return capability

    def add_job(self, spec: JobSpec) -> None:
        """A job of the studio's own (``prepare_model``), under the same contract."""
        if spec.kind in self._jobs or not issubclass(spec.request, RequestModel):
            raise ContractError(
                f"job kind {spec.kind!r} is registered twice or has no RequestModel"
            )
        self._jobs[spec.kind] = spec
        self._queue.register(spec.kind, self._handler(spec), queue=spec.queue)

    def _check_models(self, name: str, models: list[ModelSpec]) -> None:
        keys = set(self._model_keys)
        for m in models:
            if not isinstance(m, ModelSpec) or m.capability != name:
                raise ContractError(f"{name}: {m!r} is not a ModelSpec of this capability")
            if not m.key or m.key in keys:
                raise ContractError(f"{name}: model key {m.key!r} is empty or declared twice")
            if not m.licence or not m.model or int(m.size_bytes) < 0 or not callable(m.on_disk):
                raise ContractError(
                    f"{name}: model {m.key!r} lacks a licence, a name, a size or an on-disk check"
                )
            keys.add(m.key)

    def sync_models(self, models: list[ModelSpec] | None = None) -> None:
        """Hand the model manager the declared models it does not know yet (one declared
        later, when a setting turned it on, too)."""
        for m in self.models() if models is None else models:
            if m.load is not None and not self._manager.is_registered(m.key):
                size = m.memory_bytes if m.memory_bytes is not None else m.size_bytes
                self._manager.register(m.key, m.load, size, m.adapter)

    @staticmethod
    def _handler(spec: JobSpec) -> Callable[[JobContext], JobResult]:
        def run(ctx: JobContext) -> JobResult:
            # the stored request: checked before it was queued (a retry reruns it as it was)
            return spec.run(ctx, parse_request(spec.request, ctx.params))

        run.__name__ = f"run_{spec.kind}"
        return run

    # -- what the studio asks ------------------------------------------------------------
    def models(self) -> list[ModelSpec]:
        return [m for cap in self._items.values() for m in cap.models()]

    def model(self, key: str) -> ModelSpec | None:
        return next((m for m in self.models() if m.key == key), None)

    def inventory(self) -> list[dict[str, Any]]:
        """One row per declared model, with whether it is on disk (no network)."""
        return [m.row() for m in self.models()]

    def job(self, kind: str) -> JobSpec | None:
        return self._jobs.get(kind)

    def job_specs(self) -> list[JobSpec]:
        """Every registered job kind (the edges are built from these)."""
        return list(self._jobs.values())

    def queues(self) -> list[str]:
        """The Celery queues the registered job kinds go to."""
        return sorted({spec.queue for spec in self._jobs.values()})

    def queue_for(self, kind: str) -> str:
        spec = self._jobs.get(kind)
        return spec.queue if spec is not None else "images"

    def timeout_for(self, kind: str) -> float | None:
        spec = self._jobs.get(kind)
        return spec.timeout_s if spec is not None else None

    def request(self, kind: str, request: Any) -> Any:
        """``request`` (a request model, or its fields as a dict) validated once: parsed if it
        is a dict, then checked against the studio's state; the request to store."""
        spec = self._jobs[kind]
        # a model instance is validated again too: one built in code without validation
        # (``model_construct``) meets the same bounds, declared once in its fields
        fields = request.model_dump() if isinstance(request, spec.request) else dict(request)
        request = parse_request(spec.request, fields)
        return spec.check(request) if spec.check is not None else request

    def submit(self, kind: str, request: Any) -> Job:
        """Validate once and queue. Kinds no capability declared (tests' own) go as they are."""
        if kind not in self._jobs:
            return self._queue.submit(kind, dict(request))
        checked = self.request(kind, request)
        return self._queue.submit(kind, checked.model_dump(mode="json"))
