"""A loopback stand-in for the Supabase HTTP APIs the API calls: the JWKS and Storage.

It also answers supabase-js's password sign-in (`POST /auth/v1/token?grant_type=password`,
with CORS for the browser) for users added with `add_user`, issuing tokens from `issue`.

Serves `GET /auth/v1/.well-known/jwks.json` from a mutable key list (counting
hits) and the Storage REST endpoints supabase-py's `storage.from_(bucket)` uses:
signed upload URL, upload to it, signed download URL, download, remove and list.
Objects are kept in memory by `<bucket>/<path>`; every call is recorded.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    method: str
    path: str
    authorization: str | None
    apikey: str | None
    json: Any = None


@dataclass
class FakeSupabase:
    service_key: str = "service-role-key-for-tests"
    jwks: list[dict[str, Any]] = field(default_factory=list)
    jwks_hits: int = 0
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # "<bucket>/<path>" -> (bytes, type)
    # bucket settings as Storage keeps them (every bucket starts private and unlimited)
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _upload_tokens: dict[str, str] = field(default_factory=dict)  # token -> "<bucket>/<path>"
    _download_tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # email -> (password, user id)
    issue: Callable[[str, str], str] | None = None  # (user id, email) -> access token, for password sign-in
    anon_key: str = "anon-key-for-tests"
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeSupabase:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._cors])
        app.router.add_post("/auth/v1/token", self._token)
        app.router.add_post("/auth/v1/logout", self._logout)
        app.router.add_get("/auth/v1/.well-known/jwks.json", self._jwks)
        app.router.add_post("/storage/v1/object/upload/sign/{bucket}/{path:.+}", self._sign_upload)
        app.router.add_put("/storage/v1/object/upload/sign/{bucket}/{path:.+}", self._upload)
        app.router.add_post("/storage/v1/object/sign/{bucket}/{path:.+}", self._sign_download)
        app.router.add_get("/storage/v1/object/sign/{bucket}/{path:.+}", self._download)
        app.router.add_post("/storage/v1/object/list/{bucket}", self._list)
        app.router.add_delete("/storage/v1/object/{bucket}", self._remove)
        app.router.add_get("/storage/v1/bucket/{bucket}", self._get_bucket)
        app.router.add_put("/storage/v1/bucket/{bucket}", self._update_bucket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- helpers -------------------------------------------------------------
    def storage_calls(self, kind: str) -> list[Call]:
        return [c for c in self.calls if c.path.startswith(kind)]

    def _record(self, request: web.Request, body: Any = None) -> None:
        self.calls.append(
            Call(
                request.method,
                request.path.removeprefix("/storage/v1/"),
                request.headers.get("Authorization"),
                request.headers.get("apikey"),
                body,
            )
        )

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.service_key}"

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"statusCode": str(status), "error": "Error", "message": message}, status=status)

    # -- handlers ------------------------------------------------------------
    def bucket(self, name: str) -> dict[str, Any]:
        return self.buckets.setdefault(name, {"public": False, "file_size_limit": None, "allowed_mime_types": None})

    async def _get_bucket(self, request: web.Request) -> web.Response:
        self._record(request)
        if not self._authorised(request):
            return self._error(403, "service key required")
        name = request.match_info["bucket"]
        stamp = "2026-01-01T00:00:00Z"
        return web.json_response(
            {"id": name, "name": name, "owner": "", "created_at": stamp, "updated_at": stamp, **self.bucket(name)}
        )

    async def _update_bucket(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        if not self._authorised(request):
            return self._error(403, "service key required")
        settings = self.bucket(request.match_info["bucket"])
        for name in ("public", "file_size_limit", "allowed_mime_types"):
            if name in body:
                settings[name] = body[name]
        return web.json_response({"message": "Successfully updated"})

    def add_user(self, email: str, password: str, user_id: str) -> None:
        self.users[email] = (password, user_id)

    @web.middleware
    async def _cors(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """The inspector page calls Auth from another origin, as browsers do with a real project."""
        if request.method == "OPTIONS" and request.path.startswith("/auth/v1/"):
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if request.path.startswith("/auth/v1/"):
            response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "*"
            )
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        return response

    async def _token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, {"email": body.get("email")})  # never the password
        if request.headers.get("apikey") != self.anon_key:
            return web.json_response({"code": 401, "msg": "Invalid API key"}, status=401)
        known = self.users.get(body.get("email", ""))
        if request.query.get("grant_type") != "password" or known is None or known[0] != body.get("password"):
            return web.json_response(
                {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}, status=400
            )
        if self.issue is None:
            return web.json_response({"code": 500, "msg": "the test set no token issuer"}, status=500)
        user_id, email = known[1], body["email"]
        now = int(time.time())
        return web.json_response(
            {
                "access_token": self.issue(user_id, email),
                "token_type": "bearer",
                "expires_in": 600,
                "expires_at": now + 600,
                "refresh_token": secrets.token_urlsafe(16),
                "user": {
                    "id": user_id,
                    "aud": "authenticated",
                    "role": "authenticated",
                    "email": email,
                    "app_metadata": {"provider": "email"},
                    "user_metadata": {},
                    "created_at": "2026-01-01T00:00:00Z",
                },
            }
        )

    async def _logout(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.Response(status=204)

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_hits += 1
        return web.json_response({"keys": self.jwks})

    async def _sign_upload(self, request: web.Request) -> web.Response:
        self._record(request)
        if not self._authorised(request):
            return self._error(403, "service key required")
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        token = secrets.token_urlsafe(16)
        self._upload_tokens[token] = f"{bucket}/{path}"
        return web.json_response({"url": f"/object/upload/sign/{bucket}/{path}?token={token}"})

    async def _upload(self, request: web.Request) -> web.Response:
        """The browser's (or supabase-py's) upload: no service key, only the token."""
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        self._record(request)
        key = f"{bucket}/{path}"
        if self._upload_tokens.pop(request.query.get("token", ""), None) != key:
            return self._error(400, "invalid upload token")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = form.get("file")
            if not isinstance(part, web.FileField):
                return self._error(400, "no file")
            data, kind = part.file.read(), part.content_type
        else:
            data, kind = await request.read(), request.content_type
        limits = self.bucket(bucket)  # Storage enforces the bucket's limits on every upload
        if limits["file_size_limit"] is not None and len(data) > limits["file_size_limit"]:
            return self._error(413, "The object exceeded the maximum allowed size")
        if limits["allowed_mime_types"] is not None and kind not in limits["allowed_mime_types"]:
            return self._error(415, f"mime type {kind} is not supported")
        self.objects[key] = (data, kind)
        return web.json_response({"Key": key, "Id": secrets.token_hex(8)})

    async def _sign_download(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        if not self._authorised(request):
            return self._error(403, "service key required")
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        if f"{bucket}/{path}" not in self.objects:
            return self._error(404, "Object not found")
        token = secrets.token_urlsafe(16)
        self._download_tokens[token] = f"{bucket}/{path}"
        return web.json_response({"signedURL": f"/object/sign/{bucket}/{path}?token={token}"})

    async def _download(self, request: web.Request) -> web.Response:
        key = f"{request.match_info['bucket']}/{request.match_info['path']}"
        if self._download_tokens.get(request.query.get("token", "")) != key or key not in self.objects:
            return self._error(400, "invalid or expired token")
        data, kind = self.objects[key]
        return web.Response(body=data, content_type=kind.split(";")[0])

    async def _list(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        if not self._authorised(request):
            return self._error(403, "service key required")
        bucket = request.match_info["bucket"]
        prefix = f"{bucket}/{body.get('prefix', '').strip('/')}/"
        names = sorted(k[len(prefix) :] for k in self.objects if k.startswith(prefix))
        offset, limit = int(body.get("offset", 0)), int(body.get("limit", 100))
        return web.json_response([{"name": n, "id": n, "metadata": {}} for n in names[offset : offset + limit]])

    async def _remove(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        if not self._authorised(request):
            return self._error(403, "service key required")
        bucket = request.match_info["bucket"]
        removed = []
        for path in body.get("prefixes", []):
            if self.objects.pop(f"{bucket}/{path}", None) is not None:
                removed.append({"name": path, "bucket_id": bucket})
        return web.json_response(removed)
