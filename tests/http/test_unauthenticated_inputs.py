"""Arbitrary query strings on the routes anyone can call: a clear 4xx, never a 500 (issue 14, item 1)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http.conftest import RunningApp

FUTURE = str(int(time.time()) + 10**6)
FIELDS = st.sampled_from(["u", "exp", "sig", "size", "mime", "x"])
VALUES = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
    st.just(FUTURE),
    st.just("é"),
    st.just("\x00"),
)
ROUTES = [
    ("GET", "/files/atc_1/content"),
    ("PUT", "/files/atc_1/upload"),
    ("POST", "/files/atc_1/upload"),
    ("GET", "/healthz"),
    ("POST", "/chatkit"),
    ("POST", "/livekit/token"),
    ("GET", "/me/export"),
    ("DELETE", "/me"),
]


def _query(pairs: list[tuple[str, str]], percent_bytes: bytes, plausible: bool) -> str:
    parts = ["u=a", f"exp={FUTURE}", "size=1", "mime=text/plain"] if plausible else []
    parts += [f"{quote(k)}={quote(v, safe='')}" for k, v in pairs]
    parts.append("sig=" + "".join(f"%{b:02X}" for b in percent_bytes))  # raw, possibly invalid UTF-8
    return "&".join(parts)


async def test_non_ascii_signature_with_a_future_expiry_is_403(api: RunningApp) -> None:
    for method, path in (("GET", "/files/atc_1/content"), ("PUT", "/files/atc_1/upload")):
        response = await api.client.request(method, f"{path}?u=a&exp=9999999999&size=1&mime=text/plain&sig=%C3%A9")
        assert response.status_code == 403, (method, response.text)
        assert "invalid or has expired" in response.json()["detail"]


async def test_arbitrary_query_strings_never_give_500(api: RunningApp) -> None:
    seen: list[int] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        route=st.sampled_from(ROUTES),
        pairs=st.lists(st.tuples(FIELDS, VALUES), max_size=6),
        percent_bytes=st.binary(max_size=12),
        attachment=st.one_of(st.just("atc_1"), st.text(min_size=1, max_size=20)),
        plausible=st.booleans(),
    )
    def probe(
        route: tuple[str, str], pairs: list[tuple[str, str]], percent_bytes: bytes, attachment: str, plausible: bool
    ) -> None:
        method, path = route
        path = path.replace("atc_1", quote(attachment, safe=""))
        with httpx.Client(base_url=api.base_url, timeout=30) as client:
            response = client.request(method, path + "?" + _query(pairs, percent_bytes, plausible), content=b"x")
        seen.append(response.status_code)
        assert response.status_code < 500 or (path == "/healthz" and response.status_code == 503), (
            method,
            path,
            response.status_code,
            response.text,
        )

    await asyncio.to_thread(probe)
    assert any(code == 403 for code in seen)
