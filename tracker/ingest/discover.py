"""Find a site's feeds: the page itself, its alternate links in the head, then common paths.

Pure: the caller injects `fetch`, built on the project's safe HTTP seam, so this module never
opens a connection itself.
"""

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

Fetch = Callable[[str], tuple[bytes, str]]

FEED_LINK_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"}
)
COMMON_PATHS = (
    "/feed",
    "/rss",
    "/rss.xml",
    "/atom.xml",
    "/feed.xml",
    "/index.xml",
    "/feeds/posts/default",
)
MAX_PROBED_FEEDS = 3
FEED_MEDIA_TYPES = frozenset({"application/xml", "text/xml", "application/feed+json"})
# After the XML prolog (declaration, processing instructions, comments, a DOCTYPE) the root
# element must be a feed's: an XHTML page also starts with `<?xml`. Each prolog part stops at
# its first terminator, so a hostile prolog cannot make the match backtrack exponentially.
FEED_ROOT = re.compile(
    rb"\A\s*(?:(?:<\?[^>]*>|<!--(?:(?!-->).)*-->|<!DOCTYPE[^>]*>)\s*)*"
    rb"<(?:[\w.-]+:)?(?:rss|feed|RDF)[\s/>]",
    re.DOTALL | re.IGNORECASE,
)
SNIFF_BYTES = 8192
HTML_CHUNK = 65536
BOM = b"\xef\xbb\xbf"


class DiscoveryError(Exception):
    """No feed could be found for a site; the message lists every URL tried and why."""


def discover(site_url: str, fetch: Fetch) -> list[str]:
    """Feed URLs for a site: itself if it is a feed, else its alternate links, else common paths.

    `fetch(url)` returns (body, content_type) or raises; a failure is recorded, not fatal.
    """
    origin = _origin(site_url)
    tried: list[str] = []
    page = _try_fetch(fetch, site_url, tried)
    if page is not None:
        body, content_type = page
        if looks_like_feed(body, content_type):
            return [site_url]
        links = discover_links(body, site_url)
        if links:
            return links
        tried.append(f"{site_url} (no feed links in the page)")
    found = _probe_common_paths(origin, site_url, fetch, tried)
    if not found:
        raise DiscoveryError(f"no feed found at {site_url}; tried: {', '.join(tried)}")
    return found


def discover_links(html: bytes, base_url: str) -> list[str]:
    """Absolute http(s) URLs of feed `<link rel="alternate">` elements in the page head."""
    collector = _HeadLinks()
    text = _decode(html)
    # Feed them in chunks so a huge page costs nothing past its head.
    for start in range(0, len(text), HTML_CHUNK):
        collector.feed(text[start : start + HTML_CHUNK])
        if collector.done:
            break
    else:
        collector.close()
    base = _resolve(base_url, collector.base_href) if collector.base_href else base_url
    resolved = (_resolve(base or base_url, href) for href in collector.hrefs)
    return list(dict.fromkeys(url for url in resolved if url and _is_http(url)))


def looks_like_feed(body: bytes, content_type: str) -> bool:
    """True for a feed media type, an XML body whose root is rss/feed/RDF, or a JSON Feed."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in FEED_MEDIA_TYPES:
        return True
    # application/rss+xml, atom+xml, rdf+xml; not xhtml+xml or svg+xml.
    if media_type.endswith("+xml") and any(word in media_type for word in ("rss", "atom", "rdf")):
        return True
    head = body[:SNIFF_BYTES].removeprefix(BOM)
    return bool(FEED_ROOT.match(head)) or _is_json_feed(body.removeprefix(BOM))


class _HeadLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base_href: str | None = None
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag == "body":
            self.done = True
            return
        values = {name: (value or "").strip() for name, value in attrs}
        # HTML uses the first <base href> for the whole document, wherever the links are.
        if tag == "base" and values.get("href") and self.base_href is None:
            self.base_href = values["href"]
        elif tag == "link" and _is_feed_link(values):
            self.hrefs.append(values["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.done = True


def _is_feed_link(values: dict[str, str]) -> bool:
    rels = values.get("rel", "").lower().split()
    media_type = values.get("type", "").split(";", 1)[0].strip().lower()
    href = values.get("href", "")
    if "alternate" not in rels or media_type not in FEED_LINK_TYPES or not href:
        return False
    # WordPress marks its REST API document as an application/json alternate on every page;
    # it is not a JSON Feed (Miniflux skips it too: miniflux/v2#4040).
    return not (media_type == "application/json" and "/wp-json/" in href)


def _is_json_feed(body: bytes) -> bool:
    if not body.lstrip().startswith(b"{"):
        return False
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return False
    version = document.get("version") if isinstance(document, dict) else None
    return isinstance(version, str) and "jsonfeed.org/version/" in version


def _probe_common_paths(origin: str, site_url: str, fetch: Fetch, tried: list[str]) -> list[str]:
    found: list[str] = []
    for path in COMMON_PATHS:
        url = origin + path
        if url == site_url:
            continue  # already fetched above
        page = _try_fetch(fetch, url, tried)
        if page is None:
            continue
        if not looks_like_feed(*page):
            tried.append(f"{url} (not a feed)")
            continue
        found.append(url)
        if len(found) == MAX_PROBED_FEEDS:
            break
    return found


def _try_fetch(fetch: Fetch, url: str, tried: list[str]) -> tuple[bytes, str] | None:
    try:
        return fetch(url)
    # The fetch callable is injected and may raise anything; a failed URL is only one
    # candidate among several, so it is recorded in the final message, not propagated.
    except Exception as exc:  # noqa: BLE001
        tried.append(f"{url} ({_reason(exc)})")
        return None


def _origin(site_url: str) -> str:
    try:
        parts = urlsplit(site_url)
    except ValueError:
        raise DiscoveryError(f"not a valid URL: {site_url!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise DiscoveryError(f"only http(s) sites can be searched for feeds, not {site_url!r}")
    host = parts.netloc.rpartition("@")[2]  # never carry credentials into probed URLs
    return f"{parts.scheme.lower()}://{host}"


def _resolve(base: str, href: str) -> str | None:
    try:
        return urljoin(base, href)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _decode(html: bytes) -> str:
    # Link hrefs are almost always ASCII; latin-1 keeps odd bytes rather than failing.
    try:
        return html.decode("utf-8")
    except UnicodeDecodeError:
        return html.decode("latin-1")


def _reason(exc: Exception, limit: int = 120) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[:limit] + "..."
