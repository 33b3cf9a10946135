"""``GET /avatars``, voices, ``/speak`` (``POST /render-video`` and ``/render-multi-scene`` are
derived from their JobSpecs: job_kinds.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from enfoads.core.pipelines.voice import SpeakRequest
from enfoads.core.studio import Studio
from enfoads.server.deps import get_studio, rate_limit, require_token

router = APIRouter(tags=["video"], dependencies=[Depends(require_token)])


@router.get("/avatars")
def avatars(
    studio: Studio = Depends(get_studio),
    offset: int = Query(0, ge=0, le=10**9),
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    """Images marked as avatars (uploaded as ``kind=avatar`` or marked with use-as-avatar)."""
    page = studio.list_avatars(offset=offset, limit=limit)
    return {
        "avatars": [a.to_dict() for a in page.items],
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
    }


@router.post("/api/assets/{asset_id}/avatar", dependencies=[Depends(rate_limit)])
def use_as_avatar(asset_id: str, studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """Use this image as an avatar (it must show a face)."""
    return studio.use_as_avatar(asset_id).to_dict()


@router.get("/voices")
def voices(studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    return {"voices": studio.voices(), "default": studio.settings.voice_default}


@router.post("/speak", dependencies=[Depends(rate_limit)])
def speak(body: SpeakRequest, studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """Synthesise speech (or a voice preview) into a WAV asset."""
    return studio.speak(body.text, body.voice, rate=body.rate, preview=body.preview)
