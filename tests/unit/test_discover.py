import pytest

from tracker.ingest.discover import (
    COMMON_PATHS,
    DiscoveryError,
    Fetch,
    discover,
    discover_links,
    looks_like_feed,
)

RSS = b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel/></rss>'
HTML = "text/html; charset=utf-8"


def page(head: str, body: str = "<p>Hello</p>") -> bytes:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>".encode()


def fake_fetch(pages: dict[str, tuple[bytes, str]]) -> tuple[Fetch, list[str]]:
    calls: list[str] = []

    def fetch(url: str) -> tuple[bytes, str]:
        calls.append(url)
        if url not in pages:
            raise RuntimeError("HTTP 404")
        return pages[url]

    return fetch, calls


def test_alternate_links_are_resolved_against_the_page_and_kept_in_document_order() -> None:
    html = page(
        '<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
        '<link rel="alternate" type="application/rss+xml" href="feed/">'
        '<link rel="alternate" type="application/feed+json" href="https://cdn.example/f.json">'
    )
    assert discover_links(html, "https://news.example/section/") == [
        "https://news.example/atom.xml",
        "https://news.example/section/feed/",
        "https://cdn.example/f.json",
    ]


def test_a_rel_with_several_tokens_and_odd_case_still_counts_as_alternate() -> None:
    html = page('<LINK REL="home Alternate" TYPE="Application/RSS+XML; charset=utf-8" HREF="/r">')
    assert discover_links(html, "https://a.example/") == ["https://a.example/r"]


def test_links_with_other_rels_or_types_are_ignored() -> None:
    html = page(
        '<link rel="stylesheet" type="text/css" href="/s.css">'
        '<link rel="alternate" hreflang="fr" type="text/html" href="/fr/">'
        '<link rel="alternate" type="application/json+oembed" href="/oembed">'
        '<link rel="alternate stylesheet" type="text/css" href="/dark.css">'
        '<link rel="feed" type="application/rss+xml" href="/not-alternate">'
        '<link rel="alternate" type="application/rss+xml">'
    )
    assert discover_links(html, "https://a.example/") == []


def test_a_wordpress_rest_api_link_is_not_taken_for_a_json_feed() -> None:
    html = page(
        '<link rel="alternate" type="application/rss+xml" href="/feed/">'
        '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/2">'
        '<link rel="alternate" type="application/json" href="/feed.json">'
    )
    assert discover_links(html, "https://wp.example/") == [
        "https://wp.example/feed/",
        "https://wp.example/feed.json",
    ]


def test_non_http_links_are_dropped_and_repeated_links_kept_once() -> None:
    html = page(
        '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
        '<link rel="alternate" type="application/rss+xml" href="ftp://a.example/rss">'
        '<link rel="alternate" type="application/rss+xml" href="/rss">'
        '<link rel="alternate" type="application/atom+xml" href="https://a.example/rss">'
    )
    assert discover_links(html, "https://a.example/") == ["https://a.example/rss"]


def test_links_in_the_body_are_ignored() -> None:
    html = page("", body='<link rel="alternate" type="application/rss+xml" href="/user-content">')
    assert discover_links(html, "https://a.example/") == []


def test_a_base_element_decides_how_relative_links_resolve() -> None:
    html = page(
        '<link rel="alternate" type="application/rss+xml" href="rss.xml">'
        '<base href="https://static.example/blog/">'
    )
    assert discover_links(html, "https://a.example/x/") == ["https://static.example/blog/rss.xml"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html>not parsed</html>", "application/rss+xml"),
        (b"", "application/atom+xml; charset=utf-8"),
        (b"\xef\xbb\xbf \n <rss version='2.0'></rss>", "text/plain"),
        (b'<?xml version="1.0"?>\n<!-- hi -->\n<feed xmlns="http://www.w3.org/2005/Atom">', HTML),
        (b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="x">', "application/octet-stream"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', "application/json"),
    ],
)
def test_a_page_that_is_itself_a_feed_is_returned_as_is(body: bytes, content_type: str) -> None:
    fetch, calls = fake_fetch({"https://a.example/news": (body, content_type)})
    assert discover("https://a.example/news", fetch) == ["https://a.example/news"]
    assert calls == ["https://a.example/news"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">',
            "application/xhtml+xml",
        ),
        (b'{"name": "wp", "routes": {}}', "application/json"),
        (b"<!doctype html><html><head><title>feed</title>", HTML),
        (b"{not json", "text/plain"),
    ],
)
def test_pages_that_only_resemble_feeds_are_not_feeds(body: bytes, content_type: str) -> None:
    assert not looks_like_feed(body, content_type)


def test_the_page_links_are_returned_without_probing_common_paths() -> None:
    html = page('<link rel="alternate" type="application/rss+xml" href="/news.rss">')
    fetch, calls = fake_fetch({"https://a.example/": (html, HTML)})
    assert discover("https://a.example/", fetch) == ["https://a.example/news.rss"]
    assert calls == ["https://a.example/"]


def test_common_paths_are_tried_on_the_origin_in_order_when_the_page_has_no_links() -> None:
    fetch, calls = fake_fetch(
        {
            "https://a.example/blog/post": (page(""), HTML),
            "https://a.example/feed": (page("<title>Not found</title>"), HTML),
            "https://a.example/atom.xml": (b"<feed>", "text/plain"),
            "https://a.example/rss": (RSS, "application/rss+xml"),
        }
    )
    assert discover("https://a.example/blog/post", fetch) == [
        "https://a.example/rss",
        "https://a.example/atom.xml",
    ]
    assert calls == ["https://a.example/blog/post"] + [
        f"https://a.example{p}" for p in COMMON_PATHS
    ]


def test_probing_stops_after_three_feeds_are_found() -> None:
    pages = {f"https://a.example{path}": (RSS, "text/xml") for path in COMMON_PATHS}
    fetch, calls = fake_fetch({"https://a.example/": (page(""), HTML), **pages})
    found = discover("https://a.example/", fetch)
    assert found == [f"https://a.example{path}" for path in COMMON_PATHS[:3]]
    assert len(calls) == 4


def test_probing_goes_on_when_the_site_page_itself_cannot_be_fetched() -> None:
    fetch, _ = fake_fetch({"https://a.example/index.xml": (RSS, "application/xml")})
    assert discover("https://user:pw@a.example/", fetch) == ["https://a.example/index.xml"]


def test_the_error_names_the_site_and_every_url_tried_with_the_reason() -> None:
    fetch, _ = fake_fetch(
        {"https://a.example/": (page(""), HTML), "https://a.example/feed": (page(""), HTML)}
    )
    with pytest.raises(DiscoveryError) as caught:
        discover("https://a.example/", fetch)
    message = str(caught.value)
    assert message.startswith(
        "no feed found at https://a.example/; tried:"
        " https://a.example/ (no feed links in the page),"
        " https://a.example/feed (not a feed), https://a.example/rss (RuntimeError: HTTP 404),"
    )
    assert message.endswith("https://a.example/feeds/posts/default (RuntimeError: HTTP 404)")


def test_a_site_url_that_is_not_http_is_refused_without_fetching() -> None:
    fetch, calls = fake_fetch({})
    with pytest.raises(DiscoveryError, match="only http"):
        discover("file:///etc/passwd", fetch)
    assert calls == []
