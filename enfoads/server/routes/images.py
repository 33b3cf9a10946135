"""``POST /magic-prompt`` (``POST /generate-image`` is derived from its JobSpec: job_kinds.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from enfoads.core.pipelines.image import MagicPromptRequest
from enfoads.core.studio import Studio
from enfoads.server.deps import get_studio, rate_limit, require_token

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
