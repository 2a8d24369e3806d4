"""The fetcher against real, hostile HTTP servers on loopback. No traffic leaves loopback: a
tripwire on socket.connect fails any test that tries."""

import contextlib
import gzip
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tracker.ingest.fetch import ALLOW_SETTING, FetchError, FetchPolicy, FetchResult, fetch

LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
POLICY = FetchPolicy(
    timeout_s=2, max_bytes=100_000, user_agent="test", allow_networks=(LOOPBACK_V4,)
)
STRICT = FetchPolicy(timeout_s=2, max_bytes=100_000, user_agent="test")
DRIPS = 16  # 8 s of dripping: a fetch without a working deadline fails instead of hanging
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
GZIP_BOMB = gzip.compress(b"\0" * 20_000_000, compresslevel=9)  # ~20 KB on the wire
ETAG = 'W/"feed-v1"'
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"

Route = Callable[[BaseHTTPRequestHandler, threading.Event], None]


class HostileServer:
    """A threaded HTTP server on 127.0.0.1 whose routes are functions writing raw responses."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path, status(404))
                # The client hanging up mid-response is what the hostile tests expect.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    route(self, server.stop)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def __enter__(self) -> "HostileServer":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()  # ends drip and endless handlers still writing
        self.httpd.shutdown()
        self.httpd.server_close()


def status(code: int, body: bytes = b"", **headers: str) -> Route:
    def route(handler: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
        handler.send_response(code)
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return route


def redirect(code: int, location: str) -> Route:
    return status(code, Location=location)


def drip_body(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    handler.send_response(200)
    handler.end_headers()
    for _ in range(DRIPS):
        if stop.wait(0.5):
            return
        handler.wfile.write(b"<")
        handler.wfile.flush()


def drip_headers(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for _ in range(DRIPS):
        if stop.wait(0.5):
            return
        handler.wfile.write(b"X: y\r\n")
        handler.wfile.flush()


def endless_body(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    handler.send_response(200)
    handler.end_headers()
    chunk = b"<item>" * 1000
    for _ in range(10_000):  # bounded, in case a broken client never hangs up
        if stop.is_set():
            return
        handler.wfile.write(chunk)


def conditional(handler: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
    fresh = (
        handler.headers.get("If-None-Match") == ETAG
        and handler.headers.get("If-Modified-Since") == LAST_MODIFIED
    )
    status(304 if fresh else 200, b"" if fresh else FEED, ETag=ETAG, Last_Modified=LAST_MODIFIED)(
        handler, _stop
    )


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as s:
        yield s


@pytest.fixture(autouse=True)
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every outgoing connect; anything but loopback fails the test before it is sent."""
    attempts: list[str] = []
    real_connect = socket.socket.connect

    def tripwire(sock: socket.socket, address: Any) -> None:
        host = str(address[0])
        attempts.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"a test tried to connect to {host}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", tripwire)
    yield attempts
    assert all(ipaddress.ip_address(host).is_loopback for host in attempts)


def failure(url: str, policy: FetchPolicy = POLICY) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, policy)
    return caught.value


# --- the address guard --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://[::1]/",
    ],
)
def test_odd_and_private_addresses_are_refused_without_any_connection(
    url: str, connects: list[str]
) -> None:
    error = failure(url, STRICT)
    assert error.status == "refused" and ALLOW_SETTING in str(error)
    assert connects == []


def test_a_hostname_resolving_to_loopback_is_refused_at_connect_time(
    server: HostileServer, connects: list[str]
) -> None:
    server.routes["/feed"] = status(200, FEED)
    error = failure(f"http://localhost:{server.port}/feed", STRICT)
    assert error.status == "refused" and "non-public address 127.0.0.1" in str(error)
    assert server.requests == [] and connects == []


def test_a_rebinding_hostname_is_fetched_from_the_address_that_was_checked_under_its_name(
    server: HostileServer, connects: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding resolver: first answer allowed, later answers point at the metadata service.
    answers = iter(["127.0.0.1"] + ["169.254.169.254"] * 10)
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "feeds.example":
            host = next(answers)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    server.routes["/feed"] = status(200, FEED)
    result = fetch(f"http://feeds.example:{server.port}/feed", POLICY)
    assert result.body == FEED
    assert server.requests[0][1]["Host"] == f"feeds.example:{server.port}"
    assert connects == ["127.0.0.1"]


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://[::1]:{port}/"]
)
def test_a_redirect_to_a_private_address_is_refused_before_connecting(
    server: HostileServer, connects: list[str], target: str
) -> None:
    server.routes["/moved"] = redirect(302, target.format(port=server.port))
    error = failure(server.url("/moved"))
    assert error.status == "refused" and ALLOW_SETTING in str(error)
    assert connects == ["127.0.0.1"]  # the first hop only


# --- the deadline and the body cap --------------------------------------------------------------


def test_a_body_that_drips_forever_times_out_at_the_deadline(server: HostileServer) -> None:
    server.routes["/drip"] = drip_body
    # The drip server gives up after 8 s and closes: only the deadline yields "timeout".
    assert failure(server.url("/drip")).status == "timeout"


def test_headers_that_drip_forever_time_out_at_the_deadline(server: HostileServer) -> None:
    server.routes["/drip"] = drip_headers
    # The drip server gives up after 8 s and closes: only the deadline yields "timeout".
    assert failure(server.url("/drip")).status == "timeout"


def test_the_deadline_covers_the_whole_redirect_chain(server: HostileServer) -> None:
    def slow_redirect(hop: int) -> Route:
        def route(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
            stop.wait(0.8)  # each hop is well within a read timeout, all of them are not
            redirect(302, f"/s{hop + 1}")(handler, stop)

        return route

    for hop in range(5):
        server.routes[f"/s{hop}"] = slow_redirect(hop)
    assert failure(server.url("/s0")).status == "timeout"


def test_an_endless_body_is_cut_at_the_cap(server: HostileServer) -> None:
    server.routes["/endless"] = endless_body
    assert failure(server.url("/endless")).status == "too_large"


def test_a_gzip_bomb_is_cut_at_the_decoded_cap(server: HostileServer) -> None:
    assert len(GZIP_BOMB) < POLICY.max_bytes
    server.routes["/bomb"] = status(200, GZIP_BOMB, Content_Encoding="gzip")
    assert failure(server.url("/bomb")).status == "too_large"


def test_a_small_gzip_body_is_decoded(server: HostileServer) -> None:
    server.routes["/feed"] = status(200, gzip.compress(FEED), Content_Encoding="gzip")
    result = fetch(server.url("/feed"), POLICY)
    assert result.body == FEED and "content-encoding" not in result.headers


# --- redirects ----------------------------------------------------------------------------------


def test_a_redirect_loop_is_a_redirect_error(server: HostileServer) -> None:
    server.routes["/a"] = redirect(301, "/b")
    server.routes["/b"] = redirect(301, "/a")
    assert failure(server.url("/a")).status == "redirect_error"
    assert server.paths() == ["/a", "/b"]


def test_a_seven_hop_chain_is_a_redirect_error(server: HostileServer) -> None:
    for hop in range(7):
        server.routes[f"/r{hop}"] = redirect(302, f"/r{hop + 1}")
    server.routes["/r7"] = status(200, FEED)
    assert failure(server.url("/r0")).status == "redirect_error"
    assert "/r7" not in server.paths()


def fetched(server: HostileServer, chain: list[int]) -> FetchResult:
    for hop, code in enumerate(chain):
        server.routes[f"/h{hop}"] = redirect(code, f"/h{hop + 1}")
    server.routes[f"/h{len(chain)}"] = status(200, FEED)
    return fetch(server.url("/h0"), POLICY)


def test_301_then_301_gives_the_final_url_as_permanent(server: HostileServer) -> None:
    result = fetched(server, [301, 301])
    assert result.permanent_url == server.url("/h2") == result.final_url


def test_301_then_302_gives_no_permanent_url(server: HostileServer) -> None:
    result = fetched(server, [301, 302])
    assert result.permanent_url is None and result.final_url == server.url("/h2")


# --- statuses and conditional GET ---------------------------------------------------------------


def test_a_410_is_gone(server: HostileServer) -> None:
    server.routes["/feed"] = status(410)
    assert failure(server.url("/feed")).status == "gone"


def test_a_429_with_retry_after_is_throttled_for_that_long(server: HostileServer) -> None:
    server.routes["/feed"] = status(429, Retry_After="120")
    error = failure(server.url("/feed"))
    assert error.status == "throttled" and error.retry_after_s == 120.0


def test_etag_and_last_modified_round_trip_to_a_304(server: HostileServer) -> None:
    server.routes["/feed"] = conditional
    first = fetch(server.url("/feed"), POLICY)
    assert first.body == FEED and (first.etag, first.last_modified) == (ETAG, LAST_MODIFIED)
    second = fetch(server.url("/feed"), POLICY, first.etag, first.last_modified)
    assert second.not_modified and second.status_code == 304
    assert server.requests[1][1]["If-None-Match"] == ETAG
    assert server.requests[1][1]["If-Modified-Since"] == LAST_MODIFIED
