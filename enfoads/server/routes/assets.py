"""The BrandVault over HTTP: ``/api/assets`` (list, upload), one asset, its file and thumbnail."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from enfoads.core.assets import MAX_OFFSET
from enfoads.core.errors import InvalidInput
from enfoads.core.i18n import Reason, t
from enfoads.core.studio import Studio
from enfoads.core.validation import RequestModel
from enfoads.server.deps import (
    ApiError,
    asset_links,
    decode_base64,
    get_studio,
    language,
    require_token,
    upload_limit,
)
from enfoads.server.guard import body_uploads, uploads_bytes

# The seed's assets.json carries a whole vault as base64: up to this many uploads' worth.
IMPORT_UPLOADS = 4

router = APIRouter(prefix="/api/assets", tags=["assets"], dependencies=[Depends(require_token)])


# A file is what its type says, never sniffed into something else (an uploaded SVG or HTML
# opened as a page on the API's origin).
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


class TagsRequest(RequestModel):
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


@router.get("")
def list_assets(
    studio: Studio = Depends(get_studio),
    kind: str | None = None,
    tag: str | None = None,
    q: str | None = None,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=500),
    grouped: bool = False,
    inputs: bool = True,
) -> dict[str, Any]:
    """Newest first; filter by kind and tag, search name/prompt/tags with ``q`` (accents and
    case ignored: ``cafe`` finds "Café"). ``grouped=true`` gives one item per card, as the
    vault shows them: a video's WAV, SRT and VTT come in ``parts`` (by the video's id) instead
    of as items; ``inputs=false`` leaves out pictures uploaded only as face-swap inputs.
    ``url`` and ``thumbnail_url`` are signed: they open the file without a token for a few
    minutes (``ENFOADS_MEDIA_URL_TTL_S``), for ``<img src>``."""
    page = studio.list_assets(
        kind=kind, tag=tag, text=q, offset=offset, limit=limit, grouped=grouped, inputs=inputs
    )
    reply = {
        "items": [a.to_dict() for a in page.items],
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
    }
    if grouped:
        reply["parts"] = {key: [a.to_dict() for a in parts] for key, parts in page.parts.items()}
    return reply


async def _read_body(request: Request) -> bytes:
    """The whole body; the guard middleware has already bounded it (413 past the limit)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
    return bytes(body)


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(upload_limit)],
    responses={
        201: {"description": "the stored asset", "links": asset_links("$response.body#/id")}
    },
    openapi_extra={
        **body_uploads(1),
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "kind": {"type": "string"},
                            "tags": {"type": "string"},
                        },
                        "required": ["file"],
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "data": {"type": "string", "description": "base64 or a data: URL"},
                            "name": {"type": "string"},
                            "kind": {"type": "string"},
                            "tags": {"type": "array", "items": {"type": "string"}},
                        },
                        "required": ["data"],
                    }
                },
            }
        },
    },
)
async def upload_asset(
    request: Request, studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> dict[str, Any]:
    """Upload as multipart (``file``) or JSON with base64 ``data`` (what the React client sends)."""
    limit = studio.settings.max_upload_bytes
    lang = lang
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_part_size=limit + 1)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("error.empty", field="file")
        data = await upload.read()
        name = upload.filename or "upload"
        kind = form.get("kind") or None
        tags = [t for t in str(form.get("tags") or "").split(",") if t.strip()]
    elif ctype.startswith("application/json"):
        try:
            body = json.loads(await _read_body(request))
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(
                "error.invalid", field="body", reason=Reason("reason.not_json")
            ) from exc
        if not isinstance(body, dict) or not isinstance(body.get("data"), str):
            raise InvalidInput("error.empty", field="data")
        data = decode_base64(body["data"], "data")
        name, kind = body.get("name") or "upload", body.get("kind")
        tags = body.get("tags") or []
        if not isinstance(tags, list):
            raise InvalidInput("error.invalid", field="tags", reason=Reason("reason.list_expected"))
    else:
        raise ApiError(415, "unsupported_media_type", t("error.unsupported_media_type", lang))
    if not isinstance(name, str) or not (kind is None or isinstance(kind, str)):
        raise InvalidInput("error.invalid", field="name", reason=Reason("reason.text_expected"))
    # Decoding, thumbnails and ffmpeg probes block: a worker thread does them, so the event
    # loop keeps answering other requests during large uploads.
    asset = await run_in_threadpool(studio.upload_asset, data, name[:255], kind, tuple(tags))
    return asset.to_dict()


@router.post(
    "/import",
    dependencies=[Depends(upload_limit)],
    openapi_extra={
        **body_uploads(IMPORT_UPLOADS),
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"type": "object"},
                        "description": "the assets.json file's own content",
                    }
                },
            }
        },
    },
)
async def import_assets(
    request: Request, studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> dict[str, Any]:
    """Import the seed backend's ``assets.json`` (entries with inline ``data:`` URLs): the file
    as the multipart field ``file``, or its content as the JSON body. Entries without inline
    data, or whose fields or file are bad, are skipped with their reason (``skipped_reasons``);
    an entry already in the vault is not imported twice, so a retry is safe. At most 500
    entries a request (422 ``too_many_entries`` past that, nothing imported); the body may be
    a few uploads' worth (413 past that)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(
            max_part_size=uploads_bytes(IMPORT_UPLOADS, studio.settings.max_upload_bytes)
        )
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("error.empty", field="file")
        data = await upload.read()
    elif ctype.startswith("application/json"):
        data = await _read_body(request)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            t("error.unsupported_media_type", lang),
        )
    return await run_in_threadpool(studio.import_seed_json, data, lang)


@router.post("/reindex", dependencies=[Depends(upload_limit)])
async def reindex_assets(
    studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> dict[str, Any]:
    """Bring back into the vault every stored file that no asset uses (after a lost or replaced
    database, say a second Colab session's copy on the same Drive): each file becomes an asset
    again from the record the studio wrote into it (a PNG's text chunks, an MP4's tags), or
    from its content when it has none. Counts, the assets back (``assets``), and why each
    skipped file was (``skipped_reasons``); running it again finds nothing new."""
    return await run_in_threadpool(studio.reindex_assets, lang)


@router.get("/{asset_id}")
def get_asset(asset_id: str, studio: Studio = Depends(get_studio)) -> dict[str, Any]:
    """One asset; its ``url`` and ``thumbnail_url`` are freshly signed."""
    return studio.get_asset(asset_id).to_dict()


@router.get("/{asset_id}/provenance")
def asset_provenance(
    asset_id: str, studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> dict[str, Any]:
    """What an ad platform reads of the asset's making: its C2PA manifest validated
    (``state``: trusted, signed by this studio; valid, by another signer; invalid, the file
    changed after signing; none), the IPTC digital source type (``trainedAlgorithmicMedia``,
    ``compositeWithTrainedAlgorithmicMedia``), the actions, the ingredients and a ``summary``
    in the caller's language. The signing key never leaves the data dir."""
    return studio.asset_provenance(asset_id, lang)


def _bucket_link(studio: Studio, asset: Any, thumbnail: bool) -> RedirectResponse | None:
    """With the files in a bucket (``ENFOADS_STORAGE=s3``, ``s3_presign`` on): a redirect to a
    presigned URL of it, valid as long as the studio's own signed links, so the bytes go from
    the bucket to the browser; None otherwise (this server sends the file)."""
    s = studio.settings
    if s.storage != "s3" or not s.s3_presign:
        return None
    url = studio.assets.presigned_url(asset, s.media_url_ttl_s, thumbnail=thumbnail)
    return RedirectResponse(url, status_code=307, headers=NOSNIFF) if url else None


@router.get("/{asset_id}/file", response_class=FileResponse)
def asset_file(asset_id: str, studio: Studio = Depends(get_studio)) -> Any:
    asset = studio.get_asset(asset_id)
    if (redirect := _bucket_link(studio, asset, thumbnail=False)) is not None:
        return redirect
    return FileResponse(
        studio.asset_path(asset),
        media_type=asset.mime,
        filename=asset.file_name,
        content_disposition_type="inline",
        headers=NOSNIFF,
    )


@router.get("/{asset_id}/thumbnail", response_class=FileResponse)
def asset_thumbnail(
    asset_id: str, studio: Studio = Depends(get_studio), lang: str = Depends(language)
) -> Any:
    asset = studio.get_asset(asset_id)
    if asset.has_thumbnail and (redirect := _bucket_link(studio, asset, thumbnail=True)):
        return redirect
    path = studio.thumbnail_path(asset_id)
    if path is None:
        raise ApiError(404, "not_found", t("error.no_thumbnail", lang, id=asset_id))
    return FileResponse(path, media_type="image/jpeg", headers=NOSNIFF)


@router.post(
    "/{asset_id}/tags",
    responses={200: {"description": "the asset", "links": asset_links("$response.body#/id")}},
)
def tag_asset(
    asset_id: str, body: TagsRequest, studio: Studio = Depends(get_studio)
) -> dict[str, Any]:
    asset = studio.tag_asset(asset_id, tuple(body.add), tuple(body.remove))
    return asset.to_dict()


@router.delete("/{asset_id}", status_code=204)
def delete_asset(
    asset_id: str, studio: Studio = Depends(get_studio), confirm: bool = False
) -> None:
    """Delete an asset with its own files (a video's WAV, SRT, VTT). The brand kit's logo or
    font answers 409 ``asset_in_kit`` unless ``confirm=true``; then the kit drops it too."""
    studio.delete_asset(asset_id, confirm=confirm)
