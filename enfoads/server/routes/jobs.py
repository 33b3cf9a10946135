"""``/api/jobs``: a job's record, the list, cancel and retry."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Depends, Query

from enfoads.core.studio import Studio
from enfoads.server.deps import get_studio, job_links, language, rate_limit, require_token

router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(require_token)])


@router.get("")
def list_jobs(
    studio: Studio = Depends(get_studio),
    lang: str = Depends(language),
    state: str | None = None,
    kind: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> list[dict[str, Any]]:
    return [j.to_dict(lang) for j in studio.list_jobs(state=state, kind=kind, limit=limit)]


@router.get("/{job_id}")
def get_job(
    job_id: str,
    inline: bool = False,
    studio: Studio = Depends(get_studio),
    lang: str = Depends(language),
) -> dict[str, Any]:
    """The job; with ``inline=true`` a finished job's images also come as base64 data URLs
    (the seed's client shows images that way)."""
    job = studio.get_job(job_id).to_dict(lang)
    if inline:
        job["images_base64"] = []
        for asset_id in job["result_asset_ids"]:
            asset = studio.get_asset(asset_id)
            if asset.mime.startswith("image/"):
                data = base64.b64encode(studio.asset_bytes(asset)).decode()
                job["images_base64"].append(f"data:{asset.mime};base64,{data}")
    return job


@router.post(
    "/{job_id}/cancel",
    responses={200: {"description": "the job", "links": job_links("$response.body#/id")}},
)
def cancel_job(
    job_id: str, studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> dict[str, Any]:
    return studio.cancel_job(job_id).to_dict(lang)


@router.post("/{job_id}/retry", status_code=202, dependencies=[Depends(rate_limit)])
def retry_job(
    job_id: str, studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> dict[str, Any]:
    return studio.retry_job(job_id).to_dict(lang)
