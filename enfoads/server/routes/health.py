"""``GET /`` and ``GET /gpu-status``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from enfoads.core.studio import Studio
from enfoads.server.deps import get_studio, require_token

router = APIRouter(tags=["status"])


@router.get("/")
def health(studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """Health: version, uptime and device. Open without a token (tunnels probe it)."""
    return studio.health()


@router.get("/gpu-status", dependencies=[Depends(require_token)])
def gpu_status(studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """Budgets, what each model uses and where, GPU and RAM totals."""
    return studio.gpu_status()
