"""Secrets in URLs are masked wherever a URL is shown: passwords, bare userinfo tokens and
credential-named query values, and nothing else."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.redact import MASK, redact_text, secret_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),
        ("sentinel://:pw@s1:26379;sentinel://:pw@s2:26379", "sentinel://:***@s1:26379;"),
        ("http://example.org/a:b@c", "http://example.org/a:b@c"),
        ("no url here: user@example.org", "no url here: user@example.org"),
        ("https://3f9a1c@feeds.example/rss", "https://***@feeds.example/rss"),
        (
            "https://a.example/x.xml?api_key=abc123&lang=ro&sig=ff00",
            "https://a.example/x.xml?api_key=***&lang=ro&sig=***",
        ),
        (
            "fetch of http://u:pw@h.example/f?token=t0k&page=2 failed",
            "fetch of http://u:***@h.example/f?token=***&page=2 failed",
        ),
        (
            "https://h.example/f?X-Amz-Signature=9z&author=ana",
            "https://h.example/f?X-Amz-Signature=***&author=ana",
        ),
        ("https://h.example/f?accessToken=q#top", "https://h.example/f?accessToken=***#top"),
    ],
)
def test_secrets_in_urls_are_replaced(text: str, expected: str) -> None:
    assert redact_text(text).startswith(expected)
    assert ":pw@" not in redact_text(text)


@pytest.mark.parametrize(
    "name",
    [
        "key",
        "api_key",
        "apiKey",
        "access_token",
        "client-secret",
        "password",
        "passwd",
        "pwd",
        "sig",
        "signature",
        "auth",
        "jwt",
        "sessionid",
        "private_token",
        "api%5Fkey",
    ],
)
def test_credential_names_are_recognised(name: str) -> None:
    assert secret_name(name)


@pytest.mark.parametrize("name", ["lang", "page", "author", "format", "category", "q", "id"])
def test_ordinary_names_are_left_alone(name: str) -> None:
    assert not secret_name(name)


SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=4, max_size=40)


@given(
    user=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12),
    password=SECRET,
    token=SECRET,
    name=st.sampled_from(["api_key", "token", "sig", "secret", "password", "auth"]),
    position=st.integers(min_value=0, max_value=2),
)
def test_no_secret_survives_in_any_position(
    user: str, password: str, token: str, name: str, position: int
) -> None:
    params = ["lang=en", "page=2"]
    params.insert(position, f"{name}={token}")
    url = f"https://{user}:{password}@feeds.example/rss.xml?{'&'.join(params)}"
    shown = redact_text(f"GET {url} -> 401")
    assert f":{password}@" not in shown and f"={token}" not in shown
    assert f"{name}={MASK}" in shown and "lang=en" in shown and "page=2" in shown
