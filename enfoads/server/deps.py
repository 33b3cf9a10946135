"""What every route shares: the Studio from the app's state, auth, rate limits, JSON errors."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from enfoads.core.errors import EnfoadsError, InvalidInput
from enfoads.core.i18n import t
from enfoads.core.studio import Studio

log = logging.getLogger(__name__)


def get_studio(request: Request) -> Studio:
    """The one Studio built at start-up and handed to the app (never a module global)."""
    return request.app.state.studio


class ApiError(Exception):
    """An HTTP-level problem (auth, rate limit, body) with a status and a clear message."""

    def __init__(self, status: int, error: str, message: str):
        self.status, self.error, self.message = status, error, message


def check_token(expected: str, presented: str | None) -> bool:
    return bool(expected) and presented is not None and hmac.compare_digest(expected, presented)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token")  # <img src> and <video src> cannot send headers


def require_token(request: Request) -> None:
    expected = request.app.state.token
    if expected and not check_token(expected, bearer(request)):
        raise ApiError(401, "unauthorized", "A valid bearer token is required "
                       "(Authorization: Bearer <token>).")  # fmt: skip


class RateLimiter:
    """At most ``per_minute`` calls per client in any 60 s window (swappable clock)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        now = self._clock()
        with self._lock:
            calls = self._calls[client]
            while calls and now - calls[0] >= 60:
                calls.popleft()
            if len(calls) >= self.per_minute:
                raise ApiError(429, "rate_limited",
                               f"Too many generation requests: at most {self.per_minute} "
                               "per minute.")  # fmt: skip
            calls.append(now)


def rate_limit(request: Request) -> None:
    request.app.state.rate_limiter(request)


def install_error_handlers(app, lang: str) -> None:
    """Every error is JSON with a message; no traceback ever reaches a client."""

    @app.exception_handler(EnfoadsError)
    async def _enfoads(_request: Request, exc: EnfoadsError) -> JSONResponse:
        return JSONResponse(exc.to_dict(lang), status_code=exc.status)

    @app.exception_handler(ApiError)
    async def _api(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.error, "message": exc.message, "field": None},
                            status_code=exc.status)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        message = f"The field '{field}' is not valid: {first.get('msg', 'invalid')}."
        return JSONResponse({"error": "invalid", "message": message, "field": field},
                            status_code=422)  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            message = t("error.no_route", lang, method=request.method, path=request.url.path)
        return JSONResponse({"error": "http", "message": message, "field": None},
                            status_code=exc.status_code)  # fmt: skip

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal", "message": "Internal server error; the "
                             "server keeps running. See the server log.", "field": None},
                            status_code=500)  # fmt: skip


_DATA_URL = re.compile(r"^data:[\w/+.-]+;base64,", re.I)


def decode_base64(text: str, field: str) -> bytes:
    """Bytes from base64 or a ``data:`` URL (what the React client sends), or a 422 naming
    the field."""
    try:
        data = base64.b64decode(_DATA_URL.sub("", text.strip()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("error.invalid", field=field, reason="malformed base64") from exc
    if not data:
        raise InvalidInput("error.empty", field=field)
    return data
