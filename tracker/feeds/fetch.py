"""The one outbound HTTP seam: address guard, deadline, body cap, conditional GET."""

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

MAX_REDIRECTS = 5


class FetchError(Exception):
    """A fetch that failed in a way worth recording on the feed."""

    def __init__(self, message: str, *, status: str = "error", retry_after_s: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class FetchPolicy:
    timeout_s: float
    max_bytes: int
    user_agent: str
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass(frozen=True)
class FetchResult:
    status_code: int
    body: bytes
    headers: dict[str, str]
    final_url: str
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304


def parse_networks(specs: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(spec, strict=False) for spec in specs)


def check_destination(url: str, policy: FetchPolicy) -> None:
    """Refuse URLs whose host resolves to a non-public address unless it is allow-listed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"only http(s) URLs can be fetched, not {url!r}", status="refused")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve {parts.hostname}: {exc.strerror}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in net for net in policy.allow_networks):
            continue
        if not address.is_global or address in ipaddress.ip_network("100.64.0.0/10"):
            raise FetchError(
                f"refused to fetch {parts.hostname}: it resolves to the non-public address "
                f"{address} (allow it with TRACKER_FETCH_ALLOW_NETWORKS)",
                status="refused",
            )


def fetch(
    url: str, policy: FetchPolicy, etag: str | None = None, last_modified: str | None = None
) -> FetchResult:
    """GET a feed with conditional headers, checking every redirect hop's destination."""
    headers = {
        "User-Agent": policy.user_agent,
        "Accept": "application/rss+xml, application/atom+xml, application/rdf+xml, "
        "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + policy.timeout_s
    # trust_env=False: a proxy from the environment would bypass the address check.
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            check_destination(url, policy)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError(
                    f"no complete response within {policy.timeout_s:g} s", status="timeout"
                )
            timeout = httpx.Timeout(min(remaining, 15.0), connect=min(remaining, 5.0))
            with client.stream("GET", url, headers=headers, timeout=timeout) as response:
                if response.has_redirect_location:
                    url = str(response.url.join(response.headers["location"]))
                    continue
                return _read(response, policy, deadline)
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _read(response: httpx.Response, policy: FetchPolicy, deadline: float) -> FetchResult:
    if response.status_code in (429, 503):
        raise FetchError(
            f"HTTP {response.status_code} from the server",
            status="throttled",
            retry_after_s=_retry_after(response.headers.get("retry-after")),
        )
    if response.status_code >= 400:
        raise FetchError(f"HTTP {response.status_code} from the server", status="http_error")
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > policy.max_bytes:
            raise FetchError(f"body larger than {policy.max_bytes} bytes", status="too_large")
        if time.monotonic() > deadline:
            raise FetchError(
                f"no complete response within {policy.timeout_s:g} s", status="timeout"
            )
    return FetchResult(
        status_code=response.status_code,
        body=bytes(body),
        headers={
            k.lower(): v for k, v in response.headers.items() if k.lower() != "content-encoding"
        },
        final_url=str(response.url),
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
    )


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
