"""Upload and download routes of the local attachment backend (`FILES_URL=file://...`).

Upload: `POST` (multipart, field `file`) or `PUT` (raw body) to the URL ChatKit got
from `attachments.create`. Like an S3/Supabase presigned URL, the link itself is the
proof (HMAC over user, attachment, size, type and expiry), because a browser client
may not send its Authorization header to upload URLs; a bearer token, when sent,
must belong to the same user. The size is enforced while the bytes stream in.
Content: signed, short-lived links that work in an `<img>` tag.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from chatkit.store import NotFoundError
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.auth import bearer_token, current_user
from api.body import limited_stream
from api.context import RequestContext
from api.files import LocalFileStorage
from api.files.local import UploadTooLarge
from api.services import Services
from stores.ids import USER_ID_RE, validate_object_id, validate_user_id

router = APIRouter()

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file
CHUNK = 64 * 1024
EXPIRED_LINK = "this upload link is invalid or has expired: create the attachment again"


def _local_files(request: Request) -> LocalFileStorage:
    services: Services = request.app.state.services
    if not isinstance(services.files, LocalFileStorage):
        raise HTTPException(status_code=404, detail="files are not served by this API (FILES_URL is not file://)")
    return services.files


def _int_param(request: Request, name: str) -> int | None:
    try:
        return int(request.query_params[name])
    except (KeyError, ValueError):
        return None


async def _read_upload(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


@router.post("/files/{attachment_id}/upload")  # two routes, not api_route: one OpenAPI operation id each
@router.put("/files/{attachment_id}/upload")
async def upload_file(attachment_id: str, request: Request) -> JSONResponse:
    files = _local_files(request)
    services: Services = request.app.state.services
    validate_object_id(attachment_id, "attachment id")
    size, expires = _int_param(request, "size"), _int_param(request, "exp")
    mime, signature = request.query_params.get("mime", ""), request.query_params.get("sig", "")
    user_id = request.query_params.get("u", "")
    if (
        size is None
        or expires is None
        or not USER_ID_RE.fullmatch(user_id)
        or not files.upload_allowed(user_id, attachment_id, size, mime, expires, signature)
    ):
        raise HTTPException(status_code=403, detail=EXPIRED_LINK)
    if bearer_token(request) is not None and (await current_user(request)).user_id != user_id:
        raise HTTPException(status_code=403, detail="this upload link belongs to another user")
    context = RequestContext(user_id=user_id)
    attachment = await services.store.threads.load_attachment(attachment_id, context)  # deleted -> 404
    if mime != attachment.mime_type:
        raise HTTPException(status_code=403, detail=EXPIRED_LINK)
    if attachment.upload_descriptor is None:
        raise HTTPException(status_code=409, detail="this attachment was already uploaded; create a new one")

    if request.method == "PUT":
        written = await _write(files, user_id, attachment_id, limited_stream(request, size), size)
    else:
        written = await _write_multipart(files, request, user_id, attachment_id, size)
    if written != size:
        await files.delete(user_id, attachment_id)
        raise HTTPException(
            status_code=400,
            detail=f"received {written} bytes but the attachment was created for {size} bytes; upload the whole file",
        )
    # reload: a message may have bound the attachment to a thread while the bytes streamed in,
    # and the attachment may have been deleted (then the bytes go too)
    try:
        current = await services.store.threads.load_attachment(attachment_id, context)
    except NotFoundError:
        await files.delete(user_id, attachment_id)
        raise
    await services.store.threads.save_attachment(current.model_copy(update={"upload_descriptor": None}), context)
    return JSONResponse({"id": attachment_id, "size": written})


async def _write(
    files: LocalFileStorage, user_id: str, attachment_id: str, chunks: AsyncIterator[bytes], size: int
) -> int:
    try:
        return await files.write(user_id, attachment_id, chunks, limit=size)
    except UploadTooLarge:
        raise HTTPException(
            status_code=413, detail=f"the file is larger than the {size} bytes the attachment was created for"
        ) from None


async def _write_multipart(
    files: LocalFileStorage, request: Request, user_id: str, attachment_id: str, size: int
) -> int:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise HTTPException(
            status_code=415, detail="POST a multipart/form-data body with a 'file' field, or PUT the raw bytes"
        )
    parser = MultiPartParser(
        request.headers, limited_stream(request, size + MULTIPART_OVERHEAD), max_files=1, max_fields=10
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(status_code=400, detail=f"malformed multipart body: {exc.message}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(status_code=400, detail="the multipart body has no 'file' field")
        return await _write(files, user_id, attachment_id, _read_upload(upload), size)
    finally:
        await form.close()


@router.get("/files/{attachment_id}/content")
async def file_content(attachment_id: str, request: Request) -> FileResponse:
    """The bytes behind a signed preview link (no Authorization header: it must work in `<img>`)."""
    files = _local_files(request)
    services: Services = request.app.state.services
    user_id = request.query_params.get("u", "")
    expires = _int_param(request, "exp")
    signature = request.query_params.get("sig", "")
    validate_object_id(attachment_id, "attachment id")
    if expires is None or not files.content_allowed(validate_user_id(user_id), attachment_id, expires, signature):
        raise HTTPException(status_code=403, detail="this file link is invalid or has expired; reload the thread")
    attachment = await services.store.threads.load_attachment(attachment_id, RequestContext(user_id=user_id))
    if not await files.exists(user_id, attachment_id):
        raise HTTPException(status_code=404, detail="the file was not uploaded yet")
    is_image = attachment.mime_type.startswith("image/")
    return FileResponse(
        files.path(user_id, attachment_id),
        media_type=attachment.mime_type,
        filename=attachment.name,
        content_disposition_type="inline" if is_image else "attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=300",
        },
    )
