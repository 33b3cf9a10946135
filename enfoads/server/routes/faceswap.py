"""``POST /face-swap``, ``POST /detect-faces`` and ``GET /face-swap/licence``."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Depends

from enfoads.core.errors import InvalidInput
from enfoads.core.i18n import Reason
from enfoads.core.pipelines.faceswap import (
    DetectRequest,
    FaceSwapJobRequest,
    FaceSwapRequest,
    FaceSwapVideoRequest,
    ImageInput,
)
from enfoads.core.studio import Studio
from enfoads.core.validation import RequestModel
from enfoads.server.deps import (
    decode_base64,
    get_studio,
    language,
    queued,
    rate_limit,
    require_token,
)
from enfoads.server.guard import body_uploads

router = APIRouter(tags=["face swap"], dependencies=[Depends(require_token)])


def image_input(asset_id: str | None, image: str | None, field: str) -> ImageInput:
    if asset_id and image:
        raise InvalidInput("error.invalid", field=field, reason=Reason("reason.id_or_image"))
    if asset_id:
        return ImageInput(asset_id=asset_id)
    if image:
        return ImageInput(data=decode_base64(image, f"{field}_image"), name=f"{field}.upload")
    raise InvalidInput("error.empty", field=f"{field}_image")


def job_fields(body: FaceSwapRequest, job: type[RequestModel]) -> dict[str, Any]:
    """The body's fields that the job's request model has, as the client set them: the job's
    own defaults fill the rest (a video's target face is ``all``, an image's the largest)."""
    return body.model_dump(include=set(job.model_fields), exclude_unset=True)


@router.get("/face-swap/licence")
def licence(studio: Studio = Depends(get_studio), lang: str = Depends(language)) -> dict[str, Any]:
    """InsightFace's models are for non-commercial research only: the notice to show."""
    return studio.faceswap_licence(lang)


@router.post("/detect-faces", dependencies=[Depends(rate_limit)], openapi_extra=body_uploads(1))
def detect_faces(body: DetectRequest, studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """The faces in an image (or a video asset's first frame), left to right, with boxes and
    detection scores."""
    return studio.detect_faces(image_input(body.asset_id, body.image, "image"))


@router.post("/face-swap", dependencies=[Depends(rate_limit)], openapi_extra=body_uploads(2))
def face_swap(
    body: FaceSwapRequest, studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> dict[str, Any]:
    """Put the source's face on the target: an image at once (about a second on a T4), or as a
    job with ``run_as_job``; a video always as a job (202 semantics: ``job_id``)."""
    if body.video_asset_id:
        if not body.source_asset_id:
            raise InvalidInput("error.empty", field="source_asset_id")
        job = studio.swap_faces_video(job_fields(body, FaceSwapVideoRequest))
        return queued(job, lang, licence=studio.faceswap_licence(lang))
    source = image_input(body.source_asset_id, body.source_image, "source")
    target = image_input(body.target_asset_id, body.target_image, "target")
    if body.run_as_job:
        if not (source.asset_id and target.asset_id):
            raise InvalidInput(
                "error.invalid", field="run_as_job", reason=Reason("reason.ids_not_images")
            )
        job = studio.swap_faces(job_fields(body, FaceSwapJobRequest))
        return queued(job, lang, licence=studio.faceswap_licence(lang))
    result = studio.swap_face_now(
        source, target, source_face=body.source_face, target_face=body.target_face
    )
    result["status"] = "completed"
    result["result_url"] = result["url"]
    if body.inline:
        data = studio.asset_bytes(result["asset_id"])
        result["image_base64"] = "data:image/png;base64," + base64.b64encode(data).decode()
    return result
