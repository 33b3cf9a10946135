"""What every route shares: the Studio from the app's state, auth, rate limits, JSON errors."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from enfoads.core.errors import (
    DiskFull,
    EnfoadsError,
    GpuOutOfMemory,
    InvalidInput,
    is_disk_full,
    is_out_of_memory,
)
from enfoads.core.i18n import Reason, t
from enfoads.core.studio import Studio
from enfoads.core.validation import validation_reason
from enfoads.server.guard import presented_token

log = logging.getLogger(__name__)


def get_studio(request: Request) -> Studio:
    """The one Studio built at start-up and handed to the app (never a module global)."""
    return request.app.state.studio


class ApiError(Exception):
    """An HTTP-level problem (auth, rate limit, body) with a status and a clear message."""

    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ):
        self.status, self.error, self.message = status, error, message
        self.headers = headers or {}


def language(request: Request) -> str:
    """The reply's language: the first of ``Accept-Language`` the studio speaks (a dashboard
    page in English beside one in Spanish, a React client's own choice), else the studio's
    language now (a switch in Settings applies to the next reply)."""
    from enfoads.core.i18n import LANGUAGES

    for part in request.headers.get("accept-language", "").split(",")[:8]:
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
        if code == "*":
            break
    return request.app.state.studio.settings.language


def require_token(request: Request) -> None:
    """The token again, per route: the guard middleware checks it first; this keeps the rule
    beside the routes (and in the OpenAPI schema) if the app is mounted without the guard."""
    if request.scope.get("state", {}).get("authorized"):
        return  # the guard let it in (token, local Host on a local server, or a signed URL)
    access = request.app.state.access
    host = request.headers.get("host")
    if access.required(host) and not access.allows(presented_token(request.scope), host):
        raise ApiError(401, "unauthorized", t("error.unauthorized", language(request)))


def client_key(request: Request) -> str:
    """Who is calling, as this server sees it: the socket's peer address. Forwarded headers
    count only when the launcher trusts a proxy (``ENFOADS_TRUSTED_PROXIES``): uvicorn then
    rewrites the peer from them, and only for requests that come from that proxy."""
    return request.client.host if request.client else "unknown"


# What a call costs decides how many a minute an anonymous caller gets: generations (a GPU
# job each) at the setting, uploads (a product shoot: 40 photos one after another) four times
# as many.
RATE_CLASSES = {"generation": 1, "upload": 4}


class RateLimiter:
    """At most ``per_minute`` (times the class's factor) costly calls per client and class in
    any 60 s window (swappable clock)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def limit(self, kind: str) -> int:
        return self.per_minute * RATE_CLASSES[kind]

    def check(self, client: str, kind: str = "generation") -> float:
        """Book a call for ``client``; 0 when allowed, else the seconds until one is."""
        now = self._clock()
        with self._lock:
            calls = self._calls[f"{kind}:{client}"]
            while calls and now - calls[0] >= 60:
                calls.popleft()
            if len(calls) >= self.limit(kind):
                return 60 - (now - calls[0])
            calls.append(now)
            if len(self._calls) > 10_000:  # forget idle clients so the table stays small
                for key in [k for k, v in self._calls.items() if not v]:
                    del self._calls[key]
            return 0.0

    def __call__(self, request: Request, kind: str = "generation") -> None:
        wait = self.check(client_key(request), kind)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "rate_limited",
                t(
                    "error.rate_limited",
                    language(request),
                    limit=self.limit(kind),
                    retry_after=retry_after,
                ),
                {"Retry-After": str(retry_after)},
            )


def _limited(request: Request, kind: str) -> None:
    """The owner (their token) and the engine's own pages and kernels (the attach token, from
    this machine) are not limited; anonymous callers (a local page without a token, a signed
    link) are, per class."""
    state = request.scope.get("state", {})
    if not (state.get("attached") or state.get("owner")):
        request.app.state.rate_limiter(request, kind)


def rate_limit(request: Request) -> None:
    """Costly routes (a generation, a render, a swap): limited per anonymous client."""
    _limited(request, "generation")


def upload_limit(request: Request) -> None:
    """Uploads and imports: limited per anonymous client, four times as many."""
    _limited(request, "upload")


_BODY_PARSE = "There was an error parsing the body"


def install_error_handlers(app) -> None:
    """Every error is JSON with a message in the studio's current language; no traceback,
    path or tool output ever reaches a client."""

    @app.exception_handler(EnfoadsError)
    async def _enfoads(request: Request, exc: EnfoadsError) -> JSONResponse:
        return JSONResponse(exc.to_dict(language(request)), status_code=exc.status)

    @app.exception_handler(ApiError)
    async def _api(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.error, "message": exc.message, "field": None},
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "body"
        if first.get("type") == "json_invalid":
            return JSONResponse(
                {
                    "error": "bad_json",
                    "message": t("error.bad_json", language(request)),
                    "field": None,
                },
                status_code=422,
            )
        message = t(
            "error.invalid_field", language(request), field=field, reason=validation_reason(first)
        )
        return JSONResponse(
            {"error": "invalid", "message": message, "field": field}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        lang = language(request)
        message, error = str(exc.detail), getattr(exc, "error_code", "http")
        if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            message = t("error.no_route", lang, method=request.method, path=request.url.path[:200])
        elif message == _BODY_PARSE:  # FastAPI's text for a body it could not parse
            message, error = t("error.bad_json", lang), "bad_json"
        return JSONResponse(
            {"error": error, "message": message, "field": None},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        if is_disk_full(exc):
            log.error("disk full on %s %s", request.method, request.url.path)
            return JSONResponse(DiskFull().to_dict(language(request)), status_code=507)
        if is_out_of_memory(exc):  # a synchronous call (a face swap of one image, say)
            log.error("out of GPU memory on %s %s: %s", request.method, request.url.path, exc)
            error = GpuOutOfMemory()
            return JSONResponse(error.to_dict(language(request)), status_code=error.status)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "error": "internal",
                "message": t("error.internal_http", language(request)),
                "field": None,
            },
            status_code=500,
        )


def job_links(expression: str) -> dict[str, Any]:
    """OpenAPI links from a response that names a job to what can be done with it (clients
    and schemathesis' stateful tests follow them)."""
    ops = {
        "GetJob": "get_job_api_jobs__job_id__get",
        "CancelJob": "cancel_job_api_jobs__job_id__cancel_post",
        "RetryJob": "retry_job_api_jobs__job_id__retry_post",
    }
    return {
        name: {"operationId": op, "parameters": {"job_id": expression}} for name, op in ops.items()
    }


def asset_links(expression: str) -> dict[str, Any]:
    """OpenAPI links from a response that names an asset to its reads, tags and delete."""
    ops = {
        "GetAsset": "get_asset_api_assets__asset_id__get",
        "GetAssetFile": "asset_file_api_assets__asset_id__file_get",
        "TagAsset": "tag_asset_api_assets__asset_id__tags_post",
        "DeleteAsset": "delete_asset_api_assets__asset_id__delete",
    }
    return {
        name: {"operationId": op, "parameters": {"asset_id": expression}}
        for name, op in ops.items()
    }


_DATA_URL = re.compile(r"^data:[\w/+.-]+;base64,", re.I)


def decode_base64(text: str, field: str) -> bytes:
    """Bytes from base64 or a ``data:`` URL (what the React client sends), or a 422 naming
    the field."""
    try:
        data = base64.b64decode(_DATA_URL.sub("", text.strip()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(
            "error.invalid", field=field, reason=Reason("reason.bad_base64")
        ) from exc
    if not data:
        raise InvalidInput("error.empty", field=field)
    return data


def queued(job: Any, lang: str, **extra: Any) -> dict[str, Any]:
    """The answer to a request that queued a job: its id and state at once (a Colab tunnel
    cuts long requests), the job in the reply's language, and any ``extra`` fields."""
    return {"job_id": job.id, "status": job.state.value, "job": job.to_dict(lang), **extra}
