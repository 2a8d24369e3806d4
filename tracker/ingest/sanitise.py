"""HTML from feeds made safe: sanitised markup for display, plain text for the models."""

import html
import re
from functools import partial
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3

MAX_HTML = 500_000
WHITESPACE = re.compile(r"\s+")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Tags that end a line when read as text: without a space there "<p>a</p><p>b</p>" reads "ab".
TEXT_BREAK = re.compile(
    r"<(?=/?(?:p|br|div|li|h[1-6]|tr|td|th|dd|dt|blockquote|pre|hr|section|article)\b)", re.I
)

# Bounds on what one feed can make us store, whatever the body cap lets through.

# The sanitiser's allow-list: reading markup only. No forms, frames, embeds, styles or scripts.
HTML_TAGS = {
    *("a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dfn"),
    *("div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6"),
    *("hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp"),
    *("small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th"),
    *("thead", "time", "tr", "u", "ul", "var"),
}
HTML_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "q": {"cite"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "time": {"datetime"},
}
# Dropped with everything inside: their content is code or widgets, not text to read.
DROPPED_WITH_CONTENT = {"script", "style", "template", "iframe", "noscript", "textarea", "select"}
URL_ATTRIBUTES = {"href", "src", "cite"}
SAFE_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"


def plain_text(value: Any) -> str:
    """HTML to plain text: sanitise away every tag (script and style with their content), then
    decode entities."""
    if not value:
        return ""
    text = str(value)
    if "<" not in text and "&" not in text:
        # Nothing to strip or decode (most titles): the sanitiser would return it unchanged,
        # but for a leading byte order mark, which an HTML parser drops.
        return normalise(scrub(text[:MAX_HTML]).removeprefix("\ufeff"))
    spaced = TEXT_BREAK.sub(" <", scrub(text[:MAX_HTML]))
    stripped = nh3.clean(spaced, tags=set(), clean_content_tags=DROPPED_WITH_CONTENT)
    return normalise(html.unescape(stripped))


def sanitise_html(fragment: str, base: str | None = None) -> str:
    """Untrusted HTML to the markup we display: a strict allow-list, links that neither leak
    the opener nor pass ranking, only http/https/mailto URLs, relative ones made absolute."""
    if not fragment:
        return ""
    return nh3.clean(
        scrub(fragment[:MAX_HTML]),
        tags=HTML_TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=HTML_ATTRIBUTES,
        attribute_filter=partial(_url_attribute, base),
        link_rel=LINK_REL,
        url_schemes=SAFE_SCHEMES,
    ).strip()


def _url_attribute(base: str | None, tag: str, attribute: str, value: str) -> str | None:
    # nh3 checks schemes before this filter and not after, so a resolved URL is checked here.
    if attribute not in URL_ATTRIBUTES:
        return value
    url = resolve(base, value)
    return url if url and scheme(url) in SAFE_SCHEMES else None


def resolve(base: str | None, url: str) -> str | None:
    """An absolute URL, or None: a relative one without a base cannot be placed."""
    url = url.strip()
    try:
        return absolute(urljoin(base, url) if base and url else url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


def absolute(url: str | None) -> str | None:
    url = (url or "").strip()
    if not url:
        return None
    kind = scheme(url)
    if kind == "mailto":
        return url
    try:
        return url if kind in ("http", "https") and urlsplit(url).netloc else None
    except ValueError:
        return None


def scheme(url: str) -> str:
    return url.split(":", 1)[0].strip().lower() if ":" in url else ""


def normalise(text: str) -> str:
    return WHITESPACE.sub(" ", CONTROL_CHARS.sub(" ", scrub(text))).strip()


def scrub(text: str) -> str:
    """Lone surrogates (from JSON escapes or broken encodings) and NUL cannot be stored in
    PostgreSQL or handed to nh3; replace them."""
    if text.isascii():
        return text.replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
