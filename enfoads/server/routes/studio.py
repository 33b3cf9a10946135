"""The brand kit, the model inventory and the settings a user changes at run time.

``GET``/``PUT /api/brand-kit``, ``GET /api/models``, ``POST /api/models/{key}/prepare``,
``GET /api/capabilities`` and
``GET``/``PATCH /api/settings``: what the panels do through the facade, for the React client
and for the surfaces attached to this engine.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field

from enfoads.core.pipelines.compose import CTA_MAX
from enfoads.core.studio import Studio
from enfoads.core.validation import RequestModel
from enfoads.server.deps import get_studio, job_links, language, queued, rate_limit, require_token

router = APIRouter(prefix="/api", tags=["studio"], dependencies=[Depends(require_token)])


class BrandKitRequest(RequestModel):
    """Fields left out keep their saved value."""

    logo_asset_id: str | None = None
    colours: list[str] = Field(default=None, max_length=8)  # type: ignore[assignment]
    font_asset_id: str | None = None
    cta: str = Field(default=None, max_length=CTA_MAX)  # type: ignore[assignment]


class SettingsChange(RequestModel):
    language: str | None = Field(None, json_schema_extra={"enum": ["es", "en"]})
    faceswap_licence_accepted: bool | None = None


@router.get("/brand-kit")
def get_brand_kit(studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """Logo asset, colours, font asset and call to action (defaults until one is saved)."""
    return studio.brand_kit()


@router.put("/brand-kit")
def put_brand_kit(body: BrandKitRequest, studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """Save the brand kit; the previous one is replaced (one kit per vault)."""
    return studio.save_brand_kit(**body.model_dump(exclude_unset=True))


@router.get("/models")
def models(studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """Every model with its licence, size and whether it is on disk (no network used)."""
    return {"models": studio.model_inventory()}


@router.get("/capabilities")
def capabilities(studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """Each capability: the capabilities it needs, its job kinds (each with the name of its
    request model in this schema), its model keys, and its options for a UI."""
    return {"capabilities": studio.describe_capabilities()}


@router.post(
    "/models/{key}/prepare",
    status_code=202,
    dependencies=[Depends(rate_limit)],
    responses={202: {"description": "queued", "links": job_links("$response.body#/job_id")}},
)
def prepare_model(
    key: str, studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> dict[str, Any]:
    """Download one model into the data dir, as a job."""
    return queued(studio.prepare_model(key), lang)


@router.get("/settings")
def get_settings(studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """The settings a client may read and change at run time."""
    return {k: getattr(studio.settings, k) for k in studio.PERSISTED}


@router.patch("/settings")
def patch_settings(body: SettingsChange, studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """Change the language or acknowledge the face swap licence (kept in settings.json)."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    updated = studio.update_settings(**changes) if changes else studio.settings
    return {k: getattr(updated, k) for k in studio.PERSISTED}
