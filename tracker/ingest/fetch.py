"""The one outbound HTTP seam: address guard, deadline, body cap, redirects, conditional GET."""

import email.utils
import functools
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx

MAX_REDIRECTS = 5
MAX_RETRY_AFTER_S = 7 * 24 * 3600.0
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 15.0
# One gzip/deflate read inflates at most ~1032x, so small reads bound the memory a bomb can take
# before the decoded-bytes cap sees it (httpcore asks for 64 KiB: up to ~66 MB at once).
READ_CHUNK_BYTES = 16 * 1024
ALLOW_SETTING = "TRACKER_FETCH_ALLOW_NETWORKS"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/feed+json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Endpoint:
    """One address and port allowed although not public (`127.0.0.1:8765`, `[::1]:8765`): the
    demo's feed server, without the rest of the machine."""

    address: Address
    port: int


AllowRule = Network | Endpoint


class FetchError(Exception):
    """A fetch that failed in a way worth recording on the feed.

    `status` is one of: refused, unreachable, timeout, too_large, redirect_error, gone, throttled,
    http_error, error. `retry_after_s` is set for throttled responses that said when to return.
    """

    def __init__(self, message: str, *, status: str = "error", retry_after_s: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class FetchPolicy:
    timeout_s: float
    max_bytes: int
    user_agent: str
    allow_networks: tuple[AllowRule, ...] = ()


@dataclass(frozen=True)
class FetchResult:
    """A 2xx or 304 response. `permanent_url` is the final URL when every redirect was permanent
    (301/308), else None; `cache_hint_s` is the server's freshness hint in seconds, if any."""

    status_code: int
    body: bytes
    headers: dict[str, str]
    final_url: str
    etag: str | None
    last_modified: str | None
    permanent_url: str | None = None
    cache_hint_s: float | None = None

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304


def parse_networks(specs: list[str]) -> tuple[AllowRule, ...]:
    """TRACKER_FETCH_ALLOW_NETWORKS: networks (`10.1.0.0/16`, `::1`) or one address's port
    (`127.0.0.1:8765`, `[::1]:8765`)."""
    return tuple(_allow_rule(spec) for spec in specs)


def _allow_rule(spec: str) -> AllowRule:
    address, colon, port = spec.rpartition(":")
    is_endpoint = colon and port.isdigit() and (spec.count(":") == 1 or address.endswith("]"))
    if not is_endpoint:
        return ipaddress.ip_network(spec, strict=False)
    if not 0 < int(port) < 65536:
        raise ValueError(f"{spec!r}: the port must be between 1 and 65535")
    return Endpoint(unwrapped(ipaddress.ip_address(address.strip("[]"))), int(port))


# ipaddress.is_global misses these on Python 3.11: shared address space (CGNAT); the IPv6
# prefixes that embed an IPv4 address, which may be private (NAT64, 6to4, IPv4-compatible, SIIT);
# deprecated site-local fec0::/10, still routed inside some networks; and blocks IANA registered
# as not globally reachable after 3.11 (3fff::/20 documentation, 5f00::/16 SRv6).
NON_PUBLIC_NETWORKS = tuple(
    ipaddress.ip_network(spec)
    for spec in (
        *("100.64.0.0/10", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96"),
        *("::ffff:0:0:0/96", "fec0::/10", "3fff::/20", "5f00::/16"),
    )
)


# --- the address guard -------------------------------------------------------------------------


def unwrapped(address: Address) -> Address:
    # ::ffff:127.0.0.1 reaches 127.0.0.1, so it is judged (and allow-listed) as that address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_public(address: Address) -> bool:
    address = unwrapped(address)
    if address.is_multicast or address.is_unspecified or not address.is_global:
        return False
    return not any(address in net for net in NON_PUBLIC_NETWORKS)


def is_allowed(address: Address, allow: Iterable[AllowRule], port: int | None = None) -> bool:
    return is_public(address) or any(_admits(rule, unwrapped(address), port) for rule in allow)


def _admits(rule: AllowRule, address: Address, port: int | None) -> bool:
    if isinstance(rule, Endpoint):
        return rule.address == address and rule.port == port
    return address in rule


def resolve_checked(host: str, port: int, allow_networks: Iterable[AllowRule]) -> list[str]:
    """Resolve `host` once and return its addresses, refusing if ANY of them is not allowed.

    Odd spellings (`2130706433`, `0x7f.1`, `127.1`) are resolved by the system exactly as a
    connect would, so they are checked as the address they really mean."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}", status="unreachable") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    nets = tuple(allow_networks)
    for text in addresses:
        address = ipaddress.ip_address(text)
        if not is_allowed(address, nets, port):
            raise FetchError(
                f"refused to fetch {host} port {port}: it resolves to the non-public address "
                f"{unwrapped(address)} (allow it with {ALLOW_SETTING})",
                status="refused",
            )
    return addresses


def check_destination(url: str, policy: FetchPolicy) -> None:
    """Refuse a URL that could not be fetched under `policy` (for checks outside a fetch, e.g.
    before storing a URL). `fetch` itself checks at connect time, on every hop."""
    parsed = _checked_url(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    resolve_checked(parsed.host, port, policy.allow_networks)


class _DeadlineStream(httpcore.NetworkStream):
    """Clamps every socket operation to the fetch's deadline, so slow-drip headers or bodies
    cannot hold a worker longer than the policy allows (httpx has no total timeout)."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        budget = _budget(self._deadline, timeout, httpcore.ReadTimeout)
        return self._stream.read(min(max_bytes, READ_CHUNK_BYTES), budget)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _budget(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        budget = _budget(self._deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, budget), self._deadline
        )

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """Resolves once, refuses non-public addresses, then connects to the checked IP: the pinned
    IP closes the DNS-rebinding gap, and httpcore still sends the hostname for SNI and
    certificate checks. It runs for every new connection, hence for every redirect hop."""

    def __init__(self, allow_networks: tuple[AllowRule, ...], deadline: float) -> None:
        self.allow_networks = allow_networks
        self.deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in resolve_checked(host, port, self.allow_networks):
            budget = _budget(self.deadline, timeout, httpcore.ConnectTimeout)
            try:
                stream = super().connect_tcp(address, port, budget, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
                continue
            return _DeadlineStream(stream, self.deadline)
        raise httpcore.ConnectError(f"{host}:{port}: {last_error}")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~30 ms; one verifying context serves every fetch and thread.
    return httpx.create_ssl_context(trust_env=False)


def guarded_transport(policy: FetchPolicy, deadline: float) -> httpx.BaseTransport:
    transport = httpx.HTTPTransport(verify=_ssl_context(), trust_env=False)
    # httpx 0.28 has no public parameter for the network backend, so the pool is replaced (httpx
    # and httpcore are pinned; test_fetch_hostile proves the guard is the one in use).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_ssl_context(),
        network_backend=GuardedBackend(policy.allow_networks, deadline),
    )
    return transport


def _budget(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error("the fetch deadline has passed")
    return remaining if timeout is None else min(timeout, remaining)


# --- the fetch ---------------------------------------------------------------------------------


def fetch(
    url: str, policy: FetchPolicy, etag: str | None = None, last_modified: str | None = None
) -> FetchResult:
    """GET a feed with conditional headers, following at most MAX_REDIRECTS redirects by hand.

    Returns a FetchResult for 2xx and 304; raises FetchError for everything else."""
    deadline = time.monotonic() + policy.timeout_s
    # trust_env=False: a proxy from the environment would bypass the address check.
    transport = guarded_transport(policy, deadline)
    with httpx.Client(transport=transport, follow_redirects=False, trust_env=False) as client:
        try:
            return _follow(
                client, _checked_url(url), policy, deadline, _headers(policy, etag, last_modified)
            )
        except httpx.TimeoutException as exc:
            raise _timeout(policy) from exc
        except httpx.ConnectError as exc:
            raise FetchError(f"cannot connect: {exc}", status="unreachable") from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from exc


def _headers(policy: FetchPolicy, etag: str | None, last_modified: str | None) -> dict[str, str]:
    # Only codings httpx decodes with the standard library; the decoded size is what is capped.
    headers = {
        "User-Agent": policy.user_agent,
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip, deflate",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _follow(
    client: httpx.Client,
    url: httpx.URL,
    policy: FetchPolicy,
    deadline: float,
    headers: dict[str, str],
) -> FetchResult:
    seen = {url}
    all_permanent = True
    for hops in range(MAX_REDIRECTS + 1):
        with client.stream(
            "GET", url, headers=headers, timeout=_hop_timeout(policy, deadline)
        ) as response:
            if not response.has_redirect_location:
                permanent = str(url) if hops and all_permanent else None
                return _read(response, policy, permanent)
            all_permanent = all_permanent and response.status_code in (301, 308)
            url = _redirect_target(response, seen)
            seen.add(url)
    raise FetchError(f"more than {MAX_REDIRECTS} redirects", status="redirect_error")


def _hop_timeout(policy: FetchPolicy, deadline: float) -> httpx.Timeout:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timeout(policy)
    return httpx.Timeout(min(remaining, READ_TIMEOUT_S), connect=min(remaining, CONNECT_TIMEOUT_S))


def _redirect_target(response: httpx.Response, seen: set[httpx.URL]) -> httpx.URL:
    location = response.headers["location"]
    try:
        target = response.url.join(location)
    except httpx.InvalidURL as exc:
        raise FetchError(
            f"redirect to an invalid URL {location!r}", status="redirect_error"
        ) from exc
    if target in seen:
        raise FetchError(f"redirect loop at {target}", status="redirect_error")
    return _checked_url(str(target))


def _checked_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(f"not a valid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"only http(s) URLs can be fetched, not {url!r}", status="refused")
    if not parsed.host:
        raise FetchError(f"no host in URL {url!r}")
    return parsed


def _timeout(policy: FetchPolicy) -> FetchError:
    return FetchError(f"no complete response within {policy.timeout_s:g} s", status="timeout")


# --- reading the final response ----------------------------------------------------------------


def _read(response: httpx.Response, policy: FetchPolicy, permanent_url: str | None) -> FetchResult:
    _raise_for_status(response)
    body = b"" if response.status_code == 304 else _capped_body(response, policy.max_bytes)
    return FetchResult(
        status_code=response.status_code,
        body=body,
        headers={k: v for k, v in response.headers.items() if k != "content-encoding"},
        final_url=str(response.url),
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        permanent_url=permanent_url,
        cache_hint_s=cache_hint(response.headers),
    )


def _raise_for_status(response: httpx.Response) -> None:
    code = response.status_code
    if 200 <= code < 300 or code == 304:
        return
    if code == 410:
        raise FetchError("HTTP 410: the feed is gone", status="gone")
    if code in (429, 503):
        raise FetchError(
            f"HTTP {code}: the server asks us to slow down",
            status="throttled",
            retry_after_s=retry_after(response.headers.get("retry-after")),
        )
    raise FetchError(f"HTTP {code} from the server", status="http_error")


def _capped_body(response: httpx.Response, max_bytes: int) -> bytes:
    # Layered codings ("gzip, gzip") multiply a bomb's ratio inside one decode call.
    if "," in response.headers.get("content-encoding", ""):
        raise FetchError("more than one content-encoding is not accepted")
    body = bytearray()
    # iter_bytes yields decoded bytes: the cap applies after gzip/deflate, where bombs inflate.
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise FetchError(f"body larger than {max_bytes} bytes", status="too_large")
    return bytes(body)


# --- header parsing ----------------------------------------------------------------------------


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), capped to 7 days."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    when = _http_date(value)
    if when is None:
        return None
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def cache_hint(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Freshness in seconds from Cache-Control max-age (wins, as in RFC 9111) or Expires - Date."""
    max_age = _max_age(headers.get("cache-control", ""))
    if max_age is not None:
        return max_age
    expires = _http_date(headers.get("expires", ""))
    if expires is None:
        return None
    origin = _http_date(headers.get("date", "")) or now or datetime.now(UTC)
    seconds = (expires - origin).total_seconds()
    return seconds if seconds >= 0 else None


_MAX_AGE = re.compile(r'^\s*max-age\s*=\s*"?(\d+)"?\s*$', re.IGNORECASE)


def _max_age(cache_control: str) -> float | None:
    # s-maxage is for shared caches; we are a private client, so only max-age counts.
    for directive in cache_control.split(","):
        match = _MAX_AGE.match(directive)
        if match:
            return float(match.group(1))
    return None


def _http_date(value: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # "-0000" parses as a naive datetime; HTTP dates are always GMT.
    return when if when.tzinfo else when.replace(tzinfo=UTC)
