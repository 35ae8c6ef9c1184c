"""How errors the user can cause become HTTP answers (never a stack trace, never a secret)."""

from __future__ import annotations

import logging

from chatkit.store import NotFoundError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.files import FileStorageError
from stores import StoreTimeoutError, StoreUnavailableError

logger = logging.getLogger("memory_agent.api")

MAX_DETAIL = 500


def _detail(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": _detail(exc)}, status_code=404)


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    # the store and the validators raise ValueError with a message meant for the caller
    return JSONResponse({"detail": _detail(exc)}, status_code=400)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    # a pydantic ValidationError is a ValueError too, but here it means stored data or our own code
    # is wrong, not the request: log it for the operator and tell the caller nothing about the data
    logger.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("%s %s: %s", request.method, request.url.path, _detail(exc))
    if isinstance(exc, FileStorageError):
        message = _detail(exc)
    elif isinstance(exc, StoreTimeoutError):
        message = "the data store did not answer in time (it may be overloaded or hung); try again shortly"
    else:
        message = "the data store is unavailable right now; try again shortly"
    return JSONResponse({"detail": message}, status_code=503, headers={"Retry-After": "5"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(ValueError, _bad_request)
    app.add_exception_handler(ValidationError, _internal)
    app.add_exception_handler(UnicodeDecodeError, _internal)
    app.add_exception_handler(StoreUnavailableError, _unavailable)
    app.add_exception_handler(FileStorageError, _unavailable)
