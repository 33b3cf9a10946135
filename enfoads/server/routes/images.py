"""``POST /magic-prompt`` and ``POST /generate-image``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from typing import Annotated

from pydantic import Field

from enfoads.core.pipelines.image import ASPECTS
from enfoads.core.pipelines.prompt import STYLES

from enfoads.core.studio import Studio
from enfoads.core.validation import RequestModel
from enfoads.server.deps import get_studio, job_links, rate_limit, require_token

router = APIRouter(tags=["images"], dependencies=[Depends(require_token)])


# Choices are published in the schema (the TypeScript types get them); the core checks them
# and names a wrong one in the user's language.
Style = Annotated[str, Field(json_schema_extra={"enum": list(STYLES)})]
Placement = Annotated[str, Field(json_schema_extra={"enum": list(ASPECTS)})]


class MagicPromptRequest(RequestModel):
    prompt: str
    style: Style = "none"
    placement: Placement | None = None
    brand_colors: list[str] = Field(default_factory=list)
    product: str | None = None
    use_llm: bool | None = None


class GenerateImageRequest(RequestModel):
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    num_images: int = 1
    placements: list[Placement] = Field(default_factory=lambda: ["1:1"])
    style: Style = "none"
    width: int | None = None
    height: int | None = None
    enhanced_prompt: str | None = Field(None, description="the user's own final text, sent as it is")
    magic_prompt: bool = Field(False, description="compose the magic prompt for each placement in "
                               "the job (Spanish translated, framed, within CLIP's 77 tokens)")


@router.post("/magic-prompt", dependencies=[Depends(rate_limit)])
def magic_prompt(body: MagicPromptRequest, studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """The magic prompt: rules in milliseconds, the LLM when configured."""
    result = studio.enhance_prompt(body.prompt, style=body.style, placement=body.placement,
                                   brand_colors=body.brand_colors, product=body.product,
                                   use_llm=body.use_llm)  # fmt: skip
    return result.to_dict()


@router.post("/generate-image", status_code=202, dependencies=[Depends(rate_limit)],
             responses={202: {"description": "queued", "links": job_links("$response.body#/job_id")}})
def generate_image(body: GenerateImageRequest,
                   studio: Studio = Depends(get_studio)) -> dict[str, Any]:  # fmt: skip
    """Queue an image job and answer at once with its id (a Colab tunnel cuts long requests).

    Progress comes as Socket.IO ``job_update`` events and from ``GET /api/jobs/{id}``.
    """
    params = body.model_dump(exclude_unset=True)
    job = studio.generate_images(**params)
    return {"job_id": job.id, "status": job.state.value, "job": job.to_dict(studio.settings.language)}
