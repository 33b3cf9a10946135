"""``POST /magic-prompt`` and ``POST /generate-image``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from enfoads.core.studio import Studio
from enfoads.server.deps import get_studio, rate_limit, require_token

router = APIRouter(tags=["images"], dependencies=[Depends(require_token)])


class MagicPromptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str
    style: str = "none"
    placement: str | None = None
    brand_colors: list[str] = Field(default_factory=list)
    product: str | None = None
    use_llm: bool | None = None


class GenerateImageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    num_images: int = 1
    placements: list[str] = Field(default_factory=lambda: ["1:1"])
    style: str = "none"
    width: int | None = None
    height: int | None = None
    enhanced_prompt: str | None = None


@router.post("/magic-prompt")
def magic_prompt(body: MagicPromptRequest, studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """The magic prompt: rules in milliseconds, the LLM when configured."""
    result = studio.enhance_prompt(body.prompt, style=body.style, placement=body.placement,
                                   brand_colors=body.brand_colors, product=body.product,
                                   use_llm=body.use_llm)  # fmt: skip
    return result.to_dict()


@router.post("/generate-image", status_code=202, dependencies=[Depends(rate_limit)])
def generate_image(body: GenerateImageRequest,
                   studio: Studio = Depends(get_studio)) -> dict[str, Any]:  # fmt: skip
    """Queue an image job and answer at once with its id (a Colab tunnel cuts long requests).

    Progress comes as Socket.IO ``job_update`` events and from ``GET /api/jobs/{id}``.
    """
    params = body.model_dump(exclude_unset=True)
    job = studio.generate_images(**params)
    return {"job_id": job.id, "status": job.state.value, "job": job.to_dict()}
