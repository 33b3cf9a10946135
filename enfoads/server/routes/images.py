"""``POST /magic-prompt`` and ``POST /generate-image``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from enfoads.core.pipelines.image import GenerateImageRequest, MagicPromptRequest
from enfoads.core.studio import Studio
from enfoads.server.deps import get_studio, job_links, language, queued, rate_limit, require_token

router = APIRouter(tags=["images"], dependencies=[Depends(require_token)])


@router.post("/magic-prompt", dependencies=[Depends(rate_limit)])
def magic_prompt(body: MagicPromptRequest, studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """The magic prompt: rules in milliseconds, the LLM when configured."""
    result = studio.enhance_prompt(
        body.prompt,
        style=body.style,
        placement=body.placement,
        brand_colors=body.brand_colors,
        product=body.product,
        use_llm=body.use_llm,
    )
    return result.to_dict()


@router.post(
    "/generate-image",
    status_code=202,
    dependencies=[Depends(rate_limit)],
    responses={202: {"description": "queued", "links": job_links("$response.body#/job_id")}},
)
def generate_image(
    body: GenerateImageRequest, studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> dict[str, Any]:
    """Queue an image job and answer at once with its id (a Colab tunnel cuts long requests).

    Progress comes as Socket.IO ``job_update`` events and from ``GET /api/jobs/{id}``.
    """
    return queued(studio.generate_images(body), lang)
