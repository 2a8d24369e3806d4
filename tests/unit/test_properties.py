"""Property-based tests (hypothesis) of what hostile feeds and URLs reach: feed parsing, HTML
sanitising, URL canonicalisation, identity keys, OPML and the SSRF address guard.

One fixed profile keeps CI bounded and repeatable: a set number of examples, no per-example
deadline (the machine is shared), derandomised, and no example database written to disk."""

import html
import ipaddress
import json
import socket
from collections import Counter
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.tally import counted
from tracker.ingest import fetch
from tracker.ingest.dedupe import text_fingerprint
from tracker.ingest.opml import OpmlError, OpmlFeed, export_opml, parse_opml
from tracker.ingest.parse import TRACKING_PARAMS, NotAFeedError, canonical_url, parse
from tracker.ingest.sanitise import HTML_TAGS, SAFE_SCHEMES, sanitise_html

PROFILE = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEWER = settings(PROFILE, max_examples=100)

# Inputs a property's function accepted (parsed, kept, resolved), per group: a property that
# allows "or refuse" would pass as well if the function refused everything, so each such test
# also asserts that enough of its inputs were accepted (`accepts_at_least`).
ACCEPTED: Counter[str] = Counter()


def accepts_at_least(
    group: str, minimum: int
) -> Callable[[Callable[..., None]], Callable[[], None]]:
    """Run the property, then fail unless at least `minimum` of its examples were accepted."""

    def wrap(prop: Callable[..., None]) -> Callable[[], None]:
        def test() -> None:
            ACCEPTED[group] = 0
            prop()
            assert ACCEPTED[group] >= minimum, (
                f"{group}: only {ACCEPTED[group]} inputs accepted, expected {minimum} or more"
            )

        test.__name__ = test.__qualname__ = prop.__name__
        test.__doc__ = prop.__doc__
        return test

    return wrap


# --- strategies ------------------------------------------------------------------------------

XSS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '"><img src=x onerror=alert(1)>',
    "<img src=x onerror=alert(1)//",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;&#97;vascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="\x00javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img src="vbscript:msgbox(1)">',
    "<svg onload=alert(1)><circle/></svg>",
    '<iframe src="javascript:alert(1)"></iframe>',
    "<body onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>@import 'javascript:alert(1)';</style>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<<script>script>alert(1)<</script>/script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<form action=javascript:alert(1)><input type=submit></form>",
    "<object data=javascript:alert(1)></object>",
    '<base href="javascript:alert(1)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<p/onmouseover=alert(1)>x</p>",
    '<img """><script>alert(1)</script>">',
    '<a href="//evil.example/x" onclick="alert(1)">x</a>',
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<template><script>alert(1)</script></template>",
    "<textarea><script>alert(1)</script></textarea>",
    '<a href="mailto:x@example.org" onfocus="alert(1)" autofocus>x</a>',
    '<img srcset="javascript:alert(1) 1x" src="https://ok.example/a.png">',
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="/relative" target="_blank">x</a>',
]
BASES = [None, "https://news.example/a/b/", "http://ministry.example", "javascript:alert(1)//"]

markup = st.lists(
    st.one_of(st.sampled_from(XSS), st.text(max_size=40), st.sampled_from(["<", ">", "&", '"'])),
    max_size=12,
).map("".join)


class _Markup(HTMLParser):
    """What a browser would see in sanitised markup: its tags and attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_safe_markup(out: str) -> None:
    assert "<script" not in out.lower()
    reader = _Markup()
    reader.feed(out)
    reader.close()
    for tag, attrs in reader.tags:
        assert tag in HTML_TAGS, (tag, out)
        for name, value in attrs:
            assert not name.startswith("on"), (name, out)
            assert name not in ("style", "srcset", "action", "formaction"), (name, out)
            if name in ("href", "src", "cite"):
                # A browser drops whitespace and control characters inside a scheme.
                squeezed = "".join(c for c in (value or "") if c > " ").lower()
                assert squeezed.split(":", 1)[0] in SAFE_SCHEMES, (value, out)


def xml_text(text: str) -> str:
    # Characters XML 1.0 cannot carry are replaced, so the feed stays well formed when wanted.
    legal = "".join(
        c if c in "\t\n\r" or " " <= c <= "\ud7ff" or c >= "\ue000" else "?" for c in text
    )
    return html.escape(legal.replace("\ufffe", "?").replace("\uffff", "?"))


def rss(items: list[dict[str, str]], escape: bool = True) -> bytes:
    put = xml_text if escape else (lambda s: s)
    body = "".join(
        "<item>" + "".join(f"<{k}>{put(v)}</{k}>" for k, v in item.items()) + "</item>"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://news.example/</link>{body}</channel></rss>"
    ).encode("utf-8", "surrogatepass")


def atom(items: list[dict[str, str]], escape: bool = True) -> bytes:
    put = xml_text if escape else (lambda s: s)
    entries = "".join(
        "<entry>"
        + f"<id>{put(i.get('guid', ''))}</id><title type='html'>{put(i.get('title', ''))}</title>"
        + f"<content type='html'>{put(i.get('description', ''))}</content>"
        + f'<link href="{put(i.get("link", ""))}"/></entry>'
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>T</title>{entries}</feed>"
    ).encode("utf-8", "surrogatepass")


item_fields = st.fixed_dictionaries(
    {},
    optional={
        "title": st.one_of(st.text(max_size=60), markup),
        "description": markup,
        "guid": st.text(max_size=40),
        "link": st.one_of(
            st.text(max_size=60), st.sampled_from(["/a?utm_source=x#f", "javascript:x"])
        ),
        "pubDate": st.sampled_from(["Mon, 01 Dec 2026 08:00:00 GMT", "yesterday", "", "99999"]),
    },
)


@st.composite
def near_valid_xml(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(item_fields, max_size=5))
    build = draw(st.sampled_from([rss, atom]))
    body = build(items, draw(st.booleans()))
    cut = draw(st.sampled_from(["whole", "truncate", "flip"]))
    if cut == "truncate" and body:
        body = body[: draw(st.integers(0, len(body)))]
    if cut == "flip" and body:
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    return body


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
JSON_ITEM_KEYS = [
    "id", "url", "external_url", "title", "content_html", "content_text", "summary",
    "date_published", "date_modified", "authors", "author", "tags", "attachments", "language",
]  # fmt: skip


@st.composite
def near_valid_json(draw: st.DrawFn) -> bytes:
    item = st.dictionaries(
        st.sampled_from(JSON_ITEM_KEYS), st.one_of(json_values, markup), max_size=8
    )
    document: dict[str, Any] = {
        "version": draw(st.sampled_from(["https://jsonfeed.org/version/1.1", "1", ""])),
        "title": draw(json_values),
        "home_page_url": draw(st.one_of(st.text(max_size=30), st.just("https://n.example/"))),
        "items": draw(st.one_of(st.lists(st.one_of(item, json_values), max_size=5), json_values)),
    }
    # NaN and Infinity are not JSON, but servers send them.
    body = json.dumps(document, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return body


content_types = st.sampled_from(
    [None, "application/rss+xml", "application/json", "text/html; charset=koi8-r", "bogus/x"]
)


def parse_or_refuse(body: bytes, content_type: str | None, base: str | None) -> bool:
    """Either entries that are safe to store and show (True: parsed), or our one documented
    error (False: refused)."""
    headers = {"Content-Type": content_type} if content_type else None
    try:
        parsed = parse(body, headers, base)
    except NotAFeedError:
        return False
    for entry in parsed.entries:
        assert entry.title
        assert "\x00" not in entry.title + entry.summary
        assert_safe_markup(entry.content_html)
        assert entry.url is None or entry.url.startswith(("http://", "https://"))
        assert entry.dedupe_key
    return True


# A well-formed feed of one item: the parser must take it whatever else it refuses.
GOOD_RSS = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
    b"<item><guid>g1</guid><title>Troops at the border</title>"
    b"<link>https://news.example/a</link></item></channel></rss>"
)


# --- feed parsing ----------------------------------------------------------------------------


@accepts_at_least("parse: arbitrary bytes", 1)
@PROFILE
@given(st.binary(max_size=3000), content_types)
@example(GOOD_RSS, None)  # random bytes are hardly ever a feed: this one is
def test_arbitrary_bytes_parse_or_raise_not_a_feed(body: bytes, content_type: str | None) -> None:
    with counted("parse: arbitrary bytes"):
        ACCEPTED["parse: arbitrary bytes"] += parse_or_refuse(body, content_type, None)


@accepts_at_least("parse: near-valid XML", 100)
@PROFILE
@given(near_valid_xml(), content_types, st.sampled_from(BASES))
# Found by this test: feedparser raised UnicodeDecodeError and "embedded null character".
@example(b'<?xml version="1.0" encoding="\x80tf-8"?><rss version="2.0"/>', None, None)
@example(b'<?xml version="1.0" encoding="\x00tf-8"?><rss version="2.0"/>', None, None)
def test_near_valid_xml_feeds_parse_to_safe_entries_or_raise_not_a_feed(
    body: bytes, content_type: str | None, base: str | None
) -> None:
    with counted("parse: near-valid XML"):
        ACCEPTED["parse: near-valid XML"] += parse_or_refuse(body, content_type, base)


@accepts_at_least("parse: near-valid JSON", 15)
@PROFILE
@given(near_valid_json(), content_types, st.sampled_from(BASES))
def test_near_valid_json_feeds_parse_to_safe_entries_or_raise_not_a_feed(
    body: bytes, content_type: str | None, base: str | None
) -> None:
    with counted("parse: near-valid JSON"):
        ACCEPTED["parse: near-valid JSON"] += parse_or_refuse(body, content_type, base)


@accepts_at_least("sanitise: XSS markup", 150)
@PROFILE
@given(markup, st.sampled_from(BASES))
@example('<p>Troops <a href="https://news.example/a">at the border</a></p>', None)
def test_sanitised_html_has_no_script_event_handler_or_unsafe_url(
    fragment: str, base: str | None
) -> None:
    with counted("sanitise: XSS markup"):
        out = sanitise_html(fragment, base)
        assert_safe_markup(out)
        # Safe markup is kept, not everything dropped: a safe link survives as written.
        if fragment.startswith("<p>Troops"):
            assert '<a href="https://news.example/a"' in out and "at the border" in out, out
        ACCEPTED["sanitise: XSS markup"] += bool(out.strip())


def test_the_markup_check_would_catch_what_it_looks_for() -> None:
    for unsafe in ('<a href="javascript:alert(1)">', "<img onerror=x>", "<script>", "<iframe>"):
        with pytest.raises(AssertionError):
            assert_safe_markup(unsafe)


# --- URL canonicalisation --------------------------------------------------------------------

TRACKERS = ["utm_source", "utm_medium", "UTM_Campaign", "fbclid", "gclid", "mc_cid", "mc_eid"]
# No whitespace or controls: a URL's ends are stripped of them, as a browser does.
url_text = st.text(
    st.characters(codec="utf-8", exclude_characters="#&=", exclude_categories=["Cc", "Z"]),
    max_size=15,
)
query_pairs = st.lists(
    st.tuples(url_text.filter(lambda k: not TRACKING_PARAMS.match(k)), url_text), max_size=5
)


@st.composite
def web_urls(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], str]:
    """A URL's parts: scheme, host and path as one prefix, its own query pairs, a fragment."""
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    host = draw(
        st.sampled_from(
            ["news.example", "NEWS.Example", "xn--80ak6aa92e.example", "[::1]:8080", "a.example:81"]
        )
    )
    path = draw(st.sampled_from(["", "/", "/a/b", "/%7Euser/x y", "/ro/știri"]))
    return f"{scheme}://{host}{path}", draw(query_pairs), draw(url_text)


def joined(prefix: str, pairs: list[tuple[str, str]], fragment: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in pairs)
    return prefix + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")


@accepts_at_least("canonical URL: arbitrary text", 2)
@PROFILE
@given(st.text(max_size=200))
@example("HTTPS://News.Example/a/b?utm_source=x&id=7#top")
@example("http://[::1]:8080/%7Euser/x y?b=2&a=1")
def test_canonicalising_arbitrary_text_never_raises_and_is_idempotent(text: str) -> None:
    with counted("canonical URL: arbitrary text"):
        once = canonical_url(text)
        assert once is None or canonical_url(once) == once
        ACCEPTED["canonical URL: arbitrary text"] += once is not None


@PROFILE
@given(web_urls(), st.data())
def test_canonical_urls_drop_tracking_parameters_and_fragments_wherever_they_sit(
    url: tuple[str, list[tuple[str, str]], str], data: st.DataObject
) -> None:
    prefix, pairs, fragment = url
    with counted("canonical URL: tracking params"):
        tracked = list(pairs)
        for name in data.draw(st.lists(st.sampled_from(TRACKERS), max_size=4)):
            tracked.insert(data.draw(st.integers(0, len(tracked))), (name, "x"))
        clean = canonical_url(joined(prefix, pairs, ""))
        assert clean is not None
        assert canonical_url(joined(prefix, tracked, fragment)) == clean
        assert canonical_url(clean) == clean
        parts = urlsplit(clean)
        assert parts.fragment == ""
        assert not any(TRACKING_PARAMS.match(k) for k, _ in parse_qsl(parts.query))


# --- identity: fingerprints and dedupe keys --------------------------------------------------

# Letters whose capital folds back to them: not dotless i (U+0131), whose capital is plain I.
letters = st.characters(categories=["Ll", "Lu"]).filter(
    lambda c: c.upper().casefold() == c.casefold()
)
words = st.lists(st.text(letters, min_size=1, max_size=10), min_size=6, max_size=20)


@PROFILE
@given(
    words,
    st.lists(st.sampled_from([" ", "  ", ", ", "! ", "\n", " - ", "…"]), min_size=20, max_size=20),
)
@example(["a", "a", "a", "a", "a", "ß"], [" "] * 20)  # found: "SS" in capitals
@example(["a", "a", "a", "a", "a", "ᾀ"], [" "] * 20)  # found: "ἈΙ" in capitals
def test_a_text_fingerprint_ignores_case_punctuation_and_spacing(
    text_words: list[str], gaps: list[str]
) -> None:
    with counted("fingerprint: rewording"):
        plain = " ".join(text_words)
        respaced = "".join(w + g for w, g in zip(text_words, gaps, strict=False))
        assert text_fingerprint(plain, "") == text_fingerprint(plain, "")
        assert text_fingerprint(plain, "") == text_fingerprint(respaced.upper(), "")
        assert text_fingerprint(plain, "") == text_fingerprint(plain.casefold(), "")
        assert text_fingerprint(plain, "") == text_fingerprint(*plain.split(" ", 1))
        assert text_fingerprint(plain, "") is not None


@PROFILE
@given(st.lists(st.text("aZșȚăÎéüßΣβжЇ", min_size=1, max_size=10), max_size=5), st.integers(0, 5))
def test_texts_of_fewer_than_six_words_have_no_fingerprint(few: list[str], cut: int) -> None:
    with counted("fingerprint: short texts"):
        title, summary = " !? ".join(few[:cut]), " ".join(few[cut:])
        assert text_fingerprint(title, summary) is None


# Not U+0080-U+00FF: feedparser repairs text that reads as UTF-8 taken for Latin-1 ("Â¡" becomes
# "¡") and maps C1 controls to Windows-1252, in GUIDs too, so two GUIDs that differ only so would
# share a key (docs/benchmarks.md, "Hostile input").
guids = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "P", "S"]).filter(
        lambda c: not "\x80" <= c <= "\xff"
    ),
    min_size=1,
    max_size=80,
)


@PROFILE
@given(st.lists(guids, min_size=1, max_size=8, unique=True), st.sampled_from([rss, atom]))
def test_dedupe_keys_are_deterministic_and_distinct_for_distinct_guids(
    ids: list[str], build: Callable[..., bytes]
) -> None:
    body = build([{"guid": g, "title": f"Item {n}"} for n, g in enumerate(ids)])
    with counted("dedupe key: GUIDs"):
        keys = [e.dedupe_key for e in parse(body).entries]
        assert keys == ids
        assert [e.dedupe_key for e in parse(body).entries] == keys


@PROFILE
@given(web_urls(), st.permutations(TRACKERS))
def test_an_items_key_without_guid_is_stable_under_reordered_tracking_parameters(
    url: tuple[str, list[tuple[str, str]], str], trackers: list[str]
) -> None:
    prefix, pairs, _ = url
    links = [
        joined(prefix, pairs + [(t, "1") for t in trackers], "top"),
        joined(prefix, [(t, "2") for t in reversed(trackers)] + pairs, ""),
    ]
    with counted("dedupe key: URLs"):
        keys = {
            parse(rss([{"title": "Same", "link": link}])).entries[0].dedupe_key for link in links
        }
        assert keys == {canonical_url(joined(prefix, pairs, ""))}


# --- OPML ------------------------------------------------------------------------------------


GOOD_OPML = export_opml(
    [OpmlFeed("https://mod.example/rss", "Ministry", ("defence",), "official", "ro")], "feeds"
)


@accepts_at_least("OPML: arbitrary bytes", 1)
@PROFILE
@given(
    st.one_of(st.binary(max_size=2000), near_valid_xml().map(lambda b: b.replace(b"rss", b"opml")))
)
@example(GOOD_OPML)  # an export of one feed: it must import
def test_arbitrary_bytes_as_opml_import_or_raise_opml_error(data: bytes) -> None:
    with counted("OPML: arbitrary bytes"):
        try:
            result = parse_opml(data)
        except OpmlError:
            return
        assert all(f.url.startswith(("http://", "https://")) for f in result.feeds)
        ACCEPTED["OPML: arbitrary bytes"] += bool(result.feeds)


opml_text = st.text(st.characters(codec="utf-8"), max_size=30)
opml_feeds = st.builds(
    OpmlFeed,
    url=st.builds(
        lambda h, p: f"https://{h}.example/{p}",
        st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9/?=&._~-]{0,30}", fullmatch=True),
    ),
    title=st.none() | opml_text,
    tags=st.lists(opml_text, max_size=3).map(tuple),
    kind=st.sampled_from([None, "media", "official", "factcheck"]),
    language=st.sampled_from([None, "en", "ro", "en-GB", "uk"]),
)


@FEWER
@given(st.lists(opml_feeds, max_size=8, unique_by=lambda f: f.url.lower()), opml_text)
def test_an_opml_export_reads_back_as_the_same_feeds(feeds: list[OpmlFeed], title: str) -> None:
    with counted("OPML: export round trip"):
        once = parse_opml(export_opml(feeds, title))
        assert once.problems == []
        assert [f.url for f in once.feeds] == sorted(
            (f.url for f in feeds), key=[f.url for f in once.feeds].index
        )
        # The export's cleaning (whitespace, control characters, case of tags) is applied once.
        again = parse_opml(export_opml(once.feeds, title))
        assert sorted(again.feeds, key=lambda f: f.url) == sorted(once.feeds, key=lambda f: f.url)


# Encodings an OPML file may declare: multi-byte and legacy ones expat cannot read itself (read
# here), ones it can, and ones refused with a clear error (UTF-7, a name Python does not know).
READABLE_ENCODINGS = [
    "Shift_JIS", "EUC-JP", "GB2312", "GBK", "Big5", "EUC-KR", "windows-1251", "KOI8-R",
    "ISO-8859-2", "cp1252", "UTF-8", "UTF-16", "ISO-8859-1",
]  # fmt: skip
REFUSED_ENCODINGS = ["UTF-7", "UTF-32", "x-no-such-encoding"]


@FEWER
@given(
    st.lists(opml_feeds, min_size=1, max_size=4, unique_by=lambda f: f.url.lower()),
    st.sampled_from(READABLE_ENCODINGS + REFUSED_ENCODINGS),
)
def test_an_opml_file_in_any_declared_encoding_reads_as_utf_8_does_or_gets_a_clear_error(
    feeds: list[OpmlFeed], encoding: str
) -> None:
    with counted("OPML: declared encodings"):
        exported = export_opml(feeds, "feeds").decode("utf-8")
        declared = exported.replace('encoding="UTF-8"', f'encoding="{encoding}"', 1)
        assert f'encoding="{encoding}"' in declared
        try:
            # What the encoding cannot carry travels as character references, as editors save it.
            data = declared.encode(encoding, errors="xmlcharrefreplace")
            # The same text in UTF-8, as the encoding reads back (Shift_JIS reads "¥" as "\\").
            in_utf_8 = data.decode(encoding).replace(encoding, "UTF-8", 1).encode("utf-8")
        except LookupError:
            data = in_utf_8 = declared.encode("utf-8")
        try:
            found = parse_opml(data).feeds
        except OpmlError as refused:
            assert encoding in REFUSED_ENCODINGS, refused
            return
        assert encoding in READABLE_ENCODINGS
        assert found == parse_opml(in_utf_8).feeds


# --- the SSRF guard ----------------------------------------------------------------------------

# IANA's special-purpose registries (not globally reachable) plus multicast and the deprecated
# IPv6 site-local block: none of these may ever be fetched. IPv4-mapped IPv6 (::ffff:0:0/96) is
# judged as the IPv4 address it maps, below.
FORBIDDEN_V4 = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/29", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
]  # fmt: skip
FORBIDDEN_V6 = [
    "::/128", "::1/128", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
    "2001::/32", "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10",
    "fec0::/10", "ff00::/8",
]  # fmt: skip
FORBIDDEN = [ipaddress.ip_network(n) for n in FORBIDDEN_V4 + FORBIDDEN_V6]
PUBLIC_ADDRESSES = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::1"]


@st.composite
def forbidden_addresses(draw: st.DrawFn) -> fetch.Address:
    net = draw(st.sampled_from(FORBIDDEN))
    offset = draw(st.integers(0, net.num_addresses - 1))
    return (
        ipaddress.ip_address(int(net.network_address) + offset)
        if net.version == 4
        else ipaddress.IPv6Address(int(net.network_address) + offset)
    )


def embeddings(v4: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    """IPv6 spellings that reach (or may be translated to) an IPv4 address."""
    n = int(v4)
    return [
        ipaddress.IPv6Address(f"::ffff:{v4}"),  # IPv4-mapped
        ipaddress.IPv6Address(f"::{v4}"),  # IPv4-compatible (deprecated)
        ipaddress.IPv6Address(f"64:ff9b::{v4}"),  # NAT64
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1),  # 6to4
    ]


@PROFILE
@given(forbidden_addresses())
@example(ipaddress.IPv6Address("fec0::1"))  # found: judged public on Python 3.11
@example(ipaddress.IPv6Address("3fff::"))
def test_every_special_purpose_address_is_refused(address: fetch.Address) -> None:
    with counted("SSRF: special-purpose addresses"):
        # A guard that refused every address would pass the rest: public ones must pass it.
        assert all(fetch.is_public(ipaddress.ip_address(a)) for a in PUBLIC_ADDRESSES)
        assert not fetch.is_public(address), address
        assert not fetch.is_allowed(address, ())
        if isinstance(address, ipaddress.IPv4Address):
            assert not any(fetch.is_public(a) for a in embeddings(address)), address


@accepts_at_least("SSRF: IPv4 written as IPv6", 100)
@PROFILE
@given(st.ip_addresses(v=4))
@example(ipaddress.IPv4Address("93.184.215.14"))
def test_an_ipv4_address_written_as_ipv6_is_judged_as_itself(
    address: ipaddress.IPv4Address,
) -> None:
    with counted("SSRF: IPv4 written as IPv6"):
        mapped = ipaddress.IPv6Address(f"::ffff:{address}")
        assert fetch.is_public(mapped) == fetch.is_public(address)
        ACCEPTED["SSRF: IPv4 written as IPv6"] += fetch.is_public(address)
        allow = (ipaddress.ip_network(f"{address}/32"),)
        assert fetch.is_allowed(mapped, allow)


def odd_spellings(address: ipaddress.IPv4Address) -> list[str]:
    """Ways inet_aton (and so getaddrinfo) reads the same IPv4 address without any DNS."""
    a, b, c, d = address.packed
    n = int(address)
    return [
        str(n),  # one 32-bit number
        hex(n),
        f"0{n:o}",  # octal
        ".".join(f"0x{x:02x}" for x in (a, b, c, d)),
        ".".join(f"0{x:o}" for x in (a, b, c, d)),
        f"{a}.{b}.{(c << 8) | d}",  # a.b.16bit
        f"{a}.{(b << 16) | (c << 8) | d}",  # a.24bit
        f"::ffff:{address}",
    ]


# Counted as "accepted": spellings this machine's resolver reads, so the guard is really tried.
@accepts_at_least("SSRF: odd encodings", 30)
@FEWER
@given(forbidden_addresses().filter(lambda a: a.version == 4), st.integers(0, 7))
def test_oddly_spelled_private_hosts_are_refused_before_any_connection(
    address: ipaddress.IPv4Address, spelling: int
) -> None:
    host = odd_spellings(address)[spelling]
    try:
        socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return  # this resolver does not read that spelling at all: nothing would connect
    ACCEPTED["SSRF: odd encodings"] += 1
    with counted("SSRF: odd encodings"), pytest.raises(fetch.FetchError) as refused:
        fetch.resolve_checked(host, 80, ())
    assert refused.value.status == "refused"
