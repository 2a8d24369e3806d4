import gzip
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from tracker.ingest import fetch as fetch_module
from tracker.ingest.fetch import (
    ALLOW_SETTING,
    MAX_RETRY_AFTER_S,
    FetchError,
    FetchPolicy,
    GuardedBackend,
    cache_hint,
    check_destination,
    fetch,
    is_public,
    parse_networks,
    resolve_checked,
    retry_after,
)

LOOPBACK = parse_networks(["127.0.0.0/8"])
POLICY = FetchPolicy(timeout_s=2, max_bytes=100_000, user_agent="test")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def no_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Unit tests never open a socket: every refusal must happen before any connect."""
    attempts: list[object] = []

    def tripwire(_sock: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"unit test tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", tripwire)
    yield attempts
    assert attempts == []


def serve(monkeypatch: pytest.MonkeyPatch, routes: dict[str, Handler]) -> list[httpx.Request]:
    """Swap the guarded transport for a mock answering by path; returns the requests seen."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return routes[request.url.path](request)

    def transport(_policy: FetchPolicy, _deadline: float) -> httpx.BaseTransport:
        return httpx.MockTransport(handle)

    monkeypatch.setattr(fetch_module, "guarded_transport", transport)
    return seen


def answer(status: int = 200, body: bytes = b"<rss/>", **headers: str) -> Handler:
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return lambda _request: httpx.Response(status, content=body, headers=named)


def redirect(status: int, location: str) -> Handler:
    return answer(status, b"", location=location)


def failure(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> FetchError:
    serve(monkeypatch, {"/feed": handler})
    with pytest.raises(FetchError) as caught:
        fetch("http://feeds.example/feed", POLICY)
    return caught.value


# --- address classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "239.1.2.3",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff0e::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "64:ff9b:1::1",
        "2002:7f00:1::1",
        "::7f00:1",
        "::ffff:0:7f00:1",
    ],
)
def test_loopback_private_link_local_cgnat_multicast_and_tunnel_addresses_are_not_public(
    address: str,
) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1", "::ffff:8.8.8.8"])
def test_ordinary_internet_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("host", "meant"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("169.254.169.254", "169.254.169.254"),
        ("100.64.0.1", "100.64.0.1"),
        ("::1", "::1"),
    ],
)
def test_odd_spellings_of_private_addresses_are_refused_as_the_address_they_mean(
    host: str, meant: str
) -> None:
    with pytest.raises(FetchError) as caught:
        resolve_checked(host, 80, ())
    assert caught.value.status == "refused"
    assert f"non-public address {meant} " in str(caught.value)
    assert ALLOW_SETTING in str(caught.value)


def test_an_allow_listed_network_is_accepted_including_its_ipv4_mapped_form() -> None:
    assert resolve_checked("127.1", 80, LOOPBACK) == ["127.0.0.1"]
    assert resolve_checked("::ffff:127.0.0.1", 80, LOOPBACK) == ["::ffff:127.0.0.1"]


@pytest.mark.parametrize("host", ["::1", "169.254.169.254", "10.0.0.1"])
def test_allowing_ipv4_loopback_does_not_allow_other_private_addresses(host: str) -> None:
    with pytest.raises(FetchError, match="non-public address"):
        resolve_checked(host, 80, LOOPBACK)


def test_a_host_is_refused_if_any_of_its_addresses_is_not_public(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    infos = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 80)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *_a, **_k: infos)
    with pytest.raises(FetchError, match=r"non-public address 10\.0\.0\.7"):
        resolve_checked("mixed.example", 80, ())


def test_the_guarded_backend_refuses_before_opening_any_socket() -> None:
    backend = GuardedBackend((), time.monotonic() + 5)
    with pytest.raises(FetchError) as caught:
        backend.connect_tcp("0x7f.1", 80, timeout=1)
    assert caught.value.status == "refused"


def test_the_guarded_transport_uses_the_guarded_backend() -> None:
    transport = fetch_module.guarded_transport(POLICY, time.monotonic() + 5)
    pool = transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool._network_backend, GuardedBackend)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://feeds.example/x", "gopher://feeds.example/"]
)
def test_schemes_other_than_http_and_https_are_refused(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch(url, POLICY)
    assert caught.value.status == "refused"
    with pytest.raises(FetchError):
        check_destination(url, POLICY)


def test_an_unparseable_url_is_an_error_not_a_crash() -> None:
    with pytest.raises(FetchError) as caught:
        fetch("http://127.0.0.1:notaport/feed.xml", POLICY)
    assert caught.value.status == "error"


def test_allow_list_specs_are_parsed_leniently() -> None:
    assert parse_networks(["10.1.2.3/8", "::1"]) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


def test_an_address_and_port_rule_admits_that_port_only() -> None:
    """`tracker up --demo` allows its feed server this way, not the machine's PostgreSQL."""
    demo = parse_networks(["127.0.0.1:8765", "[::1]:8765"])
    assert resolve_checked("127.0.0.1", 8765, demo) == ["127.0.0.1"]
    assert resolve_checked("::1", 8765, demo) == ["::1"]
    assert resolve_checked("::ffff:127.0.0.1", 8765, demo) == ["::ffff:127.0.0.1"]
    for host, port in (("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.2", 8765)):
        with pytest.raises(FetchError, match=f"{re.escape(host)} port {port}: .*non-public"):
            resolve_checked(host, port, demo)
    with pytest.raises(ValueError, match="port"):
        parse_networks(["127.0.0.1:70000"])


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), (" 0 ", 0.0), ("86400", 86400.0)])
def test_retry_after_in_seconds_is_read_as_seconds(value: str, seconds: float) -> None:
    assert retry_after(value) == seconds


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    later = format_datetime(NOW + timedelta(minutes=2), usegmt=True)
    assert retry_after(later, now=NOW) == 120.0


def test_retry_after_in_the_past_means_now() -> None:
    earlier = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert retry_after(earlier, now=NOW) == 0.0


def test_retry_after_is_capped_to_seven_days() -> None:
    far = format_datetime(NOW + timedelta(days=400), usegmt=True)
    assert retry_after("999999999", now=NOW) == MAX_RETRY_AFTER_S
    assert retry_after(far, now=NOW) == MAX_RETRY_AFTER_S


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-5", "1.5", "\u00b2", "120, 120", "Tue, 99 Foo 2026 00:00:00"]
)
def test_an_absent_or_garbage_retry_after_gives_no_hint(value: str | None) -> None:
    assert retry_after(value, now=NOW) is None


# --- cache hints --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        ("max-age=300", 300.0),
        ("public, max-age=60, s-maxage=600", 60.0),
        ("Max-Age=0", 0.0),
        ('max-age="90"', 90.0),
    ],
)
def test_max_age_is_the_cache_hint(cache_control: str, seconds: float) -> None:
    assert cache_hint(httpx.Headers({"Cache-Control": cache_control})) == seconds


@pytest.mark.parametrize("cache_control", ["s-maxage=600", "max-age=-1", "max-age=abc", "no-cache"])
def test_shared_cache_negative_or_garbage_max_age_gives_no_hint(cache_control: str) -> None:
    assert cache_hint(httpx.Headers({"Cache-Control": cache_control})) is None


def test_expires_minus_date_is_the_cache_hint() -> None:
    headers = httpx.Headers(
        {
            "Date": format_datetime(NOW, usegmt=True),
            "Expires": format_datetime(NOW + timedelta(hours=1), usegmt=True),
        }
    )
    assert cache_hint(headers) == 3600.0


def test_expires_without_a_date_is_measured_from_now() -> None:
    headers = httpx.Headers({"Expires": format_datetime(NOW + timedelta(minutes=5), usegmt=True)})
    assert cache_hint(headers, now=NOW) == 300.0


def test_max_age_wins_over_expires() -> None:
    headers = httpx.Headers(
        {"Cache-Control": "max-age=60", "Expires": format_datetime(NOW, usegmt=True)}
    )
    assert cache_hint(headers, now=NOW) == 60.0


@pytest.mark.parametrize("expires", ["0", "-1", "yesterday"])
def test_a_garbage_or_past_expires_gives_no_hint(expires: str) -> None:
    assert cache_hint(httpx.Headers({"Expires": expires}), now=NOW) is None
    past = format_datetime(NOW - timedelta(seconds=1), usegmt=True)
    assert cache_hint(httpx.Headers({"Expires": past}), now=NOW) is None


def test_no_cache_headers_give_no_hint() -> None:
    assert cache_hint(httpx.Headers()) is None


# --- the HTTP layer -----------------------------------------------------------------------------


def test_a_200_returns_the_decoded_body_lower_cased_headers_and_validators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = gzip.compress(b"<rss>hello</rss>")
    serve(
        monkeypatch,
        {
            "/feed": answer(
                200,
                body,
                Content_Encoding="gzip",
                ETag='W/"v1"',
                Last_Modified="Wed, 21 Oct 2015 07:28:00 GMT",
                Cache_Control="max-age=900",
                X_Thing="kept",
            )
        },
    )
    result = fetch("http://feeds.example/feed", POLICY)
    assert result.body == b"<rss>hello</rss>" and not result.not_modified
    assert "content-encoding" not in result.headers and result.headers["x-thing"] == "kept"
    assert result.etag == 'W/"v1"' and result.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert result.cache_hint_s == 900.0 and result.permanent_url is None


def test_validators_are_sent_back_exactly_and_a_304_is_not_modified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = serve(monkeypatch, {"/feed": answer(304, b"", ETag='"v1"')})
    result = fetch("http://feeds.example/feed", POLICY, 'W/"v1"', "Wed, 21 Oct 2015 07:28:00 GMT")
    assert result.not_modified and result.status_code == 304 and result.body == b""
    assert seen[0].headers["If-None-Match"] == 'W/"v1"'
    assert seen[0].headers["If-Modified-Since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert seen[0].headers["Accept-Encoding"] == "gzip, deflate"


def test_a_410_means_the_feed_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert failure(monkeypatch, answer(410)).status == "gone"


@pytest.mark.parametrize("code", [429, 503])
def test_429_and_503_are_throttling_with_the_servers_retry_after(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    error = failure(monkeypatch, answer(code, Retry_After="120"))
    assert error.status == "throttled" and error.retry_after_s == 120.0


def test_throttling_without_retry_after_leaves_the_wait_to_the_scheduler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    error = failure(monkeypatch, answer(503))
    assert error.status == "throttled" and error.retry_after_s is None


@pytest.mark.parametrize("code", [300, 401, 403, 404, 500, 502])
def test_other_error_statuses_are_http_errors_naming_the_code(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    error = failure(monkeypatch, answer(code))
    assert error.status == "http_error" and str(code) in str(error)


def test_layered_content_encodings_are_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = gzip.compress(gzip.compress(b"<rss/>"))
    error = failure(monkeypatch, answer(200, body, Content_Encoding="gzip, gzip"))
    assert "content-encoding" in str(error)


def test_a_chain_of_301_and_308_gives_the_permanent_url(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(
        monkeypatch,
        {
            "/a": redirect(301, "/b"),
            "/b": redirect(308, "http://other.example/c"),
            "/c": answer(),
        },
    )
    result = fetch("http://feeds.example/a", POLICY)
    assert result.final_url == result.permanent_url == "http://other.example/c"


@pytest.mark.parametrize("temporary", [302, 303, 307])
def test_one_temporary_redirect_anywhere_gives_no_permanent_url(
    monkeypatch: pytest.MonkeyPatch, temporary: int
) -> None:
    serve(
        monkeypatch,
        {"/a": redirect(301, "/b"), "/b": redirect(temporary, "/c"), "/c": redirect(308, "/d")}
        | {"/d": answer()},
    )
    result = fetch("http://feeds.example/a", POLICY)
    assert result.final_url == "http://feeds.example/d" and result.permanent_url is None


def test_five_redirects_are_followed_and_six_are_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    routes = {f"/r{i}": redirect(302, f"/r{i + 1}") for i in range(6)} | {"/r6": answer()}
    serve(monkeypatch, routes)
    assert fetch("http://feeds.example/r1", POLICY).final_url == "http://feeds.example/r6"
    with pytest.raises(FetchError) as caught:
        fetch("http://feeds.example/r0", POLICY)
    assert caught.value.status == "redirect_error"


def test_a_redirect_loop_is_a_redirect_error(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, {"/a": redirect(301, "/b"), "/b": redirect(302, "/a")})
    with pytest.raises(FetchError, match="loop") as caught:
        fetch("http://feeds.example/a", POLICY)
    assert caught.value.status == "redirect_error"


def test_a_redirect_to_another_scheme_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    error = failure(monkeypatch, redirect(301, "file:///etc/passwd"))
    assert error.status == "refused"


def test_a_body_over_the_cap_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    error = failure(monkeypatch, answer(200, b"x" * (POLICY.max_bytes + 1)))
    assert error.status == "too_large"
