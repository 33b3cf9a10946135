"""The first thing every HTTP request meets: the origin, the token (or a media URL's
signature), then the body's size, before anything is read or parsed.

An ASGI middleware, so an unauthenticated or oversized request costs the server nothing: the
401 comes before the body is read, a declared ``Content-Length`` over the route's limit is a
413 at once, and a chunked body is counted while it streams and cut at the limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException

from enfoads.core.i18n import Reason, t
from enfoads.server.access import MEDIA_VARIANTS, Access, check_token

__all__ = ["RequestGuard", "check_token", "presented_token", "body_uploads", "uploads_bytes"]

# Open without a token: the health check (tunnels probe it) and the API's own documentation.
PUBLIC_PATHS = frozenset({"/", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
SMALL_BODY = 1 * 2**20  # every JSON request but those that carry files
FORM_OVERHEAD = 64 * 1024  # a multipart form's own fields and boundaries
# A route that carries files declares how many uploads' worth its body may be, in its
# OpenAPI operation (``body_uploads``; a job kind through ``JobSpec.body_uploads``): the guard
# reads the limits from the app's routes, so no path is written here.
BODY_UPLOADS = "x-body-uploads"


def body_uploads(count: float) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body may be ``count`` uploads' worth."""
    return {BODY_UPLOADS: count}


def uploads_bytes(count: float, max_upload_bytes: int) -> int:
    """``count`` uploads' worth of body: a file as base64 in JSON is 4/3 larger, plus a form's
    own fields."""
    return int(count * (max_upload_bytes * 4 // 3 + FORM_OVERHEAD))


def declared_uploads(schema: dict[str, Any]) -> dict[tuple[str, str], float]:
    """(method, path) → uploads' worth, from the operations of the app's OpenAPI schema that
    declare it (the schema is what the routes say of themselves)."""
    table = {}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            count = operation.get(BODY_UPLOADS) if isinstance(operation, dict) else None
            if count:
                table[(method.upper(), path)] = count
    return table


def route_pattern(route: str) -> re.Pattern[str] | None:
    """The paths of a route with ``{parameters}`` (one path segment each); None for a fixed
    route (looked up as it is)."""
    if "{" not in route:
        return None
    return re.compile(re.sub(r"\\{\w+\\}", "[^/]+", re.escape(route)))


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit; FastAPI answers it as
    any HTTP error (a 413 with the message), before the route runs or while it reads."""

    error_code = "body_too_large"

    def __init__(self, limit: int, lang: str):
        super().__init__(413, t("error.body_too_large", lang, limit_mb=limit / 2**20))


class RequestGuard:
    """Origin, token, then the body's size; ``access`` and ``settings`` are read live (a tunnel
    closes the access rule; language and upload cap)."""

    def __init__(
        self,
        app: Any,
        *,
        access: Callable[[], Access],
        settings: Callable[[], Any],
        schema: Callable[[], dict[str, Any]] = dict,
    ):
        self.app = app
        self.access = access
        self.settings = settings
        self._schema = schema
        self._uploads: dict[tuple[str, str], float] | None = None
        self._patterns: list[tuple[str, re.Pattern[str], float]] = []

    def body_limit(self, scope: dict, max_upload_bytes: int) -> int:
        """The largest body this request's route takes: what it declares, else small JSON."""
        if self._uploads is None:  # the routes are all there by the first request
            self._uploads = declared_uploads(self._schema())
            self._patterns = [
                (m, pattern, n)
                for (m, route), n in self._uploads.items()
                if (pattern := route_pattern(route)) is not None
            ]
        method, path = scope.get("method", "GET"), scope.get("path", "")
        count = self._uploads.get((method, path))
        if count is None:  # a route with {parameters}: its pattern
            count = next(
                (n for m, p, n in self._patterns if m == method and p.fullmatch(path)), None
            )
        return uploads_bytes(count, max_upload_bytes) if count else SMALL_BODY

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.settings()
        limit = self.body_limit(scope, settings.max_upload_bytes)
        refusal = self._refusal(scope, settings) or _length_refusal(scope, settings, limit)
        if refusal is not None:
            await _reply(send, *refusal)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit, settings.language)
            return message

        await self.app(scope, counted, send)

    def _refusal(self, scope: dict, settings: Any) -> tuple | None:
        """Why this request may not reach the app (status, code, message[, headers]), or None;
        marks the scope's state with who is asking (the engine's pages, the owner)."""
        lang = settings.language
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if method in UNSAFE_METHODS and not _same_or_allowed_origin(scope, settings.cors_origins):
            # A page on another site (any page the user visits) cannot make the studio change
            # anything: a form post to 127.0.0.1 needs no CORS preflight, so refuse it here.
            return 403, "cross_site", t("error.cross_site", lang)
        access = self.access()
        presented = presented_token(scope)
        state = scope.setdefault("state", {})
        host = _token_host(scope)
        state["attached"] = access.attached(presented, host)  # the engine's own pages, local
        state["owner"] = check_token(access.token, presented)  # the owner's token: not limited
        media = _media_request(method, path, scope)
        if media is not None:  # a signed media URL opens one file, token or not
            verdict = access.check_media(*media)
            if verdict != "ok":
                return 403, f"media_link_{verdict}", t(f"error.media_link_{verdict}", lang)
        elif (
            path not in PUBLIC_PATHS
            and access.required(host)
            and not access.allows(presented, host)
        ):
            headers = [(b"www-authenticate", b"Bearer")]
            return 401, "unauthorized", t("error.unauthorized", lang), headers
        state["authorized"] = True
        return None


def _length_refusal(scope: dict, settings: Any, limit: int) -> tuple | None:
    """A declared Content-Length that is not a number, or past the route's limit."""
    declared = _header(scope, b"content-length")
    if declared is None:
        return None
    lang = settings.language
    if not declared.isdigit():
        reason = Reason("reason.number_expected")
        return 400, "invalid", t("error.invalid", lang, field="Content-Length", reason=reason)
    if int(declared) > limit:
        return 413, "body_too_large", t("error.body_too_large", lang, limit_mb=limit / 2**20)
    return None


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _same_or_allowed_origin(scope: dict, allowed: list[str]) -> bool:
    """No Origin (a program, not a browser page), the server's own origin, or one the
    settings allow (the React dev server). Without an Origin, ``Sec-Fetch-Site: cross-site``
    still counts as foreign; ``Origin: null`` (a sandboxed or local page) is foreign too."""
    origin = _header(scope, b"origin")
    if origin is None:
        return _header(scope, b"sec-fetch-site") != "cross-site"
    if "*" in allowed or origin in allowed:
        return True
    host = _header(scope, b"host") or ""
    # the server's own pages (its /docs) through a tunnel: the tunnel speaks https to the
    # browser and http to us, so the same host under either scheme is the same origin
    return origin in (f"http://{host}", f"https://{host}")


def _token_host(scope: dict) -> str | None:
    """The ``Host`` the token rule judges by: the header, unless the request came through a
    proxy (``Forwarded`` / ``X-Forwarded-*``: a local Host behind a proxy is not a local
    caller) or from a browser page of another origin (a local dev server's page must send the
    token like any client): then no host, so the token is required."""
    host = _header(scope, b"host")
    for key, _value in scope.get("headers", ()):
        name = key.lower()
        if name == b"forwarded" or name.startswith(b"x-forwarded-"):
            return None
    origin = _header(scope, b"origin")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        return None
    return host


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def presented_token(scope: dict) -> str | None:
    """The bearer token of a request, from the ``Authorization`` header only: a token in the
    query string would end up in logs and Referer headers (media use signed URLs instead)."""
    header = _header(scope, b"authorization") or ""
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def _media_request(method: str, path: str, scope: dict) -> tuple[str, str, str] | None:
    """``(sig, asset_id, variant)`` for a GET of an asset's file or thumbnail with ``?sig=``."""
    if method not in ("GET", "HEAD"):
        return None
    parts = path.split("/")  # "", "api", "assets", id, variant
    if len(parts) != 5 or parts[1:3] != ["api", "assets"] or parts[4] not in MEDIA_VARIANTS:
        return None
    from urllib.parse import parse_qs

    sig = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("sig", [None])[0]
    return None if sig is None else (sig, parts[3], parts[4])


async def _reply(
    send: Callable, status: int, error: str, message: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(
        {"error": error, "message": message, "field": None}, ensure_ascii=False
    ).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
