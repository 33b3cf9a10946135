"""The routes that queue jobs, derived from the registered ``JobSpec`` s.

Every job kind is ``POST /api/jobs/{kind}``; a kind whose spec names a ``route`` (the seed's
``/generate-image``, ``/render-video``, ``/render-multi-scene``) answers there too. The body is
the kind's request model, the answer a ``QueuedJob``, the rate-limit class the spec's: so the
OpenAPI schema, and the TypeScript client generated from it, know every kind, and a capability
that declares a new kind is reachable over HTTP without a line here.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, create_model

from enfoads.core.capability import JobSpec
from enfoads.core.errors import NotFound
from enfoads.core.jobs import JobState
from enfoads.core.studio import Studio
from enfoads.core.validation import RequestModel
from enfoads.server.deps import (
    get_studio,
    job_links,
    language,
    queued,
    rate_limit,
    require_token,
    upload_limit,
)
from enfoads.server.guard import body_uploads

LIMITS = {"generation": rate_limit, "upload": upload_limit}


class JobRecord(BaseModel):
    """A job as clients read it (``GET /api/jobs/{id}``), its stage and error in the caller's
    language."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    state: JobState
    status: JobState
    progress: float
    stage: str
    params: dict[str, Any]
    result_asset_ids: list[str]
    result_urls: list[str]
    result: dict[str, Any]
    error: str | None
    error_code: str | None
    retry_of: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class QueuedJob(BaseModel):
    """The answer to a request that queued a job: its id and state at once (a Colab tunnel
    cuts long requests), and the job itself."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    status: JobState
    job: JobRecord


def _endpoint(spec: JobSpec, path: str) -> Any:
    """``POST`` handler for one kind at ``path``, its body typed as the kind's request model
    (less the fields the path carries, which the handler puts back)."""
    in_path = [] if path.startswith("/api/jobs/") else spec.path_fields()
    body_model: type[BaseModel] = spec.request
    if in_path:
        body_model = create_model(
            f"{spec.request.__name__}Body",
            __base__=RequestModel,
            __doc__=spec.request.__doc__,
            **{
                name: (field.annotation, field)
                for name, field in spec.request.model_fields.items()
                if name not in in_path
            },
        )

    def queue_job(body: Any, studio: Studio, lang: str, **from_path: str) -> dict[str, Any]:
        params = {**body.model_dump(exclude_unset=True), **from_path} if in_path else body
        return queued(studio.submit(spec.kind, params), lang)

    queue_job.__name__ = f"queue_{spec.kind}"
    queue_job.__doc__ = spec.description()
    kw = inspect.Parameter.KEYWORD_ONLY
    queue_job.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("body", kw, annotation=body_model),
            inspect.Parameter("studio", kw, annotation=Studio, default=Depends(get_studio)),
            inspect.Parameter("lang", kw, annotation=str, default=Depends(language)),
            *(
                inspect.Parameter(name, kw, annotation=str, default=Path(max_length=200))
                for name in in_path
            ),
        ]
    )
    return queue_job


def build_router(specs: list[JobSpec]) -> APIRouter:
    """The queueing routes of ``specs`` (the studio's registered job kinds)."""
    router = APIRouter(tags=["jobs"], dependencies=[Depends(require_token)])
    for spec in specs:
        paths = [f"/api/jobs/{spec.kind}"] + ([spec.route] if spec.route else [])
        for path in paths:
            router.add_api_route(
                path,
                _endpoint(spec, path),
                methods=["POST"],
                status_code=202,
                response_model=QueuedJob,
                dependencies=[Depends(LIMITS[spec.rate])],
                openapi_extra=body_uploads(spec.body_uploads) if spec.body_uploads else None,
                summary=f"Queue a {spec.kind} job",
                description=spec.description(),
                operation_id=f"queue_{spec.kind}" + ("" if path == paths[0] else "_seed_path"),
                responses={
                    202: {"description": "queued", "links": job_links("$response.body#/job_id")}
                },
            )

    @router.post("/api/jobs/{kind}", status_code=404, include_in_schema=False)
    def unknown_kind(kind: str) -> None:
        raise NotFound("job kind", kind[:60])

    return router
