"""URL redaction: no password reaches an error message, whatever characters it holds."""

from __future__ import annotations

import pytest

from stores.errors import has_unencoded_credentials, redact_url, scrub

# passwords with the characters that end a URL's host part (/, ?, #) and an @ of their own
NASTY = ["Ab/cD9xy", "p#ss", "wh?t3ver", "zq/7#k?v", "a@b/c", "s3cr:et/x"]


@pytest.mark.parametrize("password", NASTY)
@pytest.mark.parametrize(
    "form",
    [
        "postgresql://app:{pw}@db.internal:5432/app",
        "postgresql://app:{pw}@db.internal/app?sslmode=require",
        "redis://:{pw}@cache.internal:6379/0",
        "rediss+cluster://user:{pw}@h1:7000,h2:7001",
    ],
)
def test_redact_url_masks_passwords_with_unencoded_special_characters(form: str, password: str) -> None:
    url = form.format(pw=password)

    redacted = redact_url(url)

    assert password not in redacted
    for piece in password.replace("#", "/").replace("?", "/").replace("@", "/").split("/"):
        if len(piece) >= 3:
            assert piece not in redacted, redacted
    host = "db.internal" if "db.internal" in url else ("cache.internal" if "cache" in url else "h1:7000,h2:7001")
    assert ":***@" in redacted and host in redacted  # still says where it points


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:Ab/cD9xy@host/db", "postgresql://app:***@host/db"),
        ("redis://:p#ss@host:6379/0", "redis://:***@host:6379/0"),
        (
            "postgresql://app:pw@host/db?password=again&sslmode=require",
            "postgresql://app:***@host/db?password=***&sslmode=require",
        ),
        ("postgresql://app@host/db", "postgresql://app@host/db"),  # no password: nothing to hide
        ("postgresql://host/db?application_name=a@b", "postgresql://host/db?application_name=a@b"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("app:secret@host/db", "app:***@host/db"),  # the scheme forgotten: still masked
        ("sqlite:///./data/memory-agent.db", "sqlite:///./data/memory-agent.db"),
    ],
)
def test_redact_url_examples(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(expected) == expected  # redacting twice changes nothing


@pytest.mark.parametrize("password", [*NASTY, "p%40ss%2Fword"])
def test_scrub_removes_the_password_as_written_and_decoded(password: str) -> None:
    url = f"postgresql://app:{password}@db.internal/app"
    decoded = password.replace("%40", "@").replace("%2F", "/")
    message = f"connect to {url} failed: password {password!r} / {decoded!r} rejected"

    scrubbed = scrub(message, url)

    assert password not in scrubbed and decoded not in scrubbed
    assert "postgresql://app:***@db.internal/app" in scrubbed


def test_unencoded_credentials_are_told_apart_from_encoded_ones() -> None:
    assert has_unencoded_credentials("postgresql://app:Ab/cD9xy@host/db")
    assert has_unencoded_credentials("redis://:p#ss@host:6379/0")
    assert has_unencoded_credentials("redis://:wh?t@host:6379/0")
    assert not has_unencoded_credentials("postgresql://app:Ab%2FcD9xy@host/db")
    assert not has_unencoded_credentials("redis://:p%23ss@host:6379/0")
    assert not has_unencoded_credentials("postgresql://app:a@b@host/db")  # urlsplit splits at the last @ too
    assert not has_unencoded_credentials("postgresql://host/db?application_name=a@b")
    assert not has_unencoded_credentials("redis://127.0.0.1:6379/0")
