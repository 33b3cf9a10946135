"""Builds the ASGI app: FastAPI routes + Socket.IO, around one Studio handed in. Wiring only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from enfoads.core.studio import Studio
from enfoads.server.access import Access
from enfoads.server.deps import RateLimiter, install_error_handlers
from enfoads.server.guard import RequestGuard
from enfoads.server.realtime import EventBridge, create_sio
from enfoads.server.routes import (
    assets,
    faceswap,
    health,
    images,
    job_kinds,
    jobs,
    video,
)
from enfoads.server.routes import (
    studio as studio_routes,
)
from enfoads.version import __version__


def create_app(studio: Studio, *, token: str | None = None, local_open: bool = False) -> Any:
    """The ASGI app serving ``studio``. ``token`` (default: the setting) guards every route
    but the health check and the docs, and the Socket.IO handshake; with ``local_open`` (a
    generated token on a loopback server) a request whose Host is local passes without it.
    ``app.api.state.access`` is the live rule (a tunnel closes it)."""
    settings = studio.settings
    token = settings.server_token if token is None else token
    access = Access(
        token=token,
        attach_token=getattr(studio, "attach_token", ""),
        local_open=local_open,
        media_ttl_s=settings.media_url_ttl_s,
    )
    sio = create_sio(lambda: access, settings.cors_origins)
    bridge = EventBridge(sio, lambda: api.state.access)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = bridge.start(studio.subscribe)
        yield
        stop()

    class SignedJSONResponse(JSONResponse):
        """Every answer's asset paths signed (``Access.sign_urls``)."""

        def render(self, content: Any) -> bytes:
            return super().render(api.state.access.sign_urls(content))

    api = FastAPI(
        title="Enfoads Studio API",
        version=__version__,
        lifespan=lifespan,
        default_response_class=SignedJSONResponse,
    )
    api.state.studio = studio
    api.state.access = access
    api.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    api.state.sio = sio
    # Added first, so it runs inside CORS (preflights are answered before the token check).
    api.add_middleware(
        RequestGuard,
        access=lambda: api.state.access,
        settings=lambda: studio.settings,
        schema=lambda: api.openapi(),
    )
    api.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    install_error_handlers(api)
    for module in (health, images, faceswap, video, assets, jobs, studio_routes):
        api.include_router(module.router)
    # POST /api/jobs/{kind} and the seed's paths, from the registered job kinds
    api.include_router(job_kinds.build_router(studio.capabilities.job_specs()))
    app = socketio.ASGIApp(sio, other_asgi_app=api)
    app.api = api  # for tests and the OpenAPI export
    return app
