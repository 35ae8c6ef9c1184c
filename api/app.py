"""`create_app(settings)`: the FastAPI application (ChatKit, LiveKit tokens, files, export/delete, health)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.accesslog import install_access_log_redaction
from api.baseurl import RequestBaseUrlMiddleware
from api.devlogin import prepare_dev_login
from api.errors import install_error_handlers
from api.routes import chatkit, files, inspector, livekit, me, memories, profile, threads
from api.services import start_services, stop_services
from memory.settings import Settings, get_settings
from stores.retention import Sweeper


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the store and clients are opened when it starts and closed when it stops."""
    settings = prepare_dev_login(settings or get_settings())  # refuses API_DEV_LOGIN on a real project

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await start_services(settings)
        app.state.services = services
        sweeper = Sweeper.from_settings(services.store, settings)
        # retention (docs/retention.md): only when MEMORY_/TRANSCRIPT_RETENTION_DAYS is set
        sweeping = (
            asyncio.create_task(sweeper.run_forever(settings.retention_sweep_interval_seconds), name="retention")
            if sweeper.enabled
            else None
        )
        try:
            yield
        finally:
            if sweeping is not None:
                sweeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeping
            await stop_services(services)

    app = FastAPI(
        title="Memory Agent API", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url="/openapi.json"
    )
    origins = [o.strip() for o in settings.api_cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(RequestBaseUrlMiddleware)
    install_access_log_redaction()
    install_error_handlers(app)
    app.include_router(chatkit.router)
    app.include_router(livekit.router)
    app.include_router(files.router)
    app.include_router(me.router)
    app.include_router(profile.router)
    app.include_router(memories.router)
    app.include_router(threads.router)
    app.include_router(inspector.router)
    return app
