import html
from datetime import UTC, datetime
from pathlib import Path

import nh3
import pytest

from tracker.demo import FEEDS_DIR
from tracker.ingest.parse import NotAFeedError, canonical_url, describe_file, parse
from tracker.ingest.sanitise import (
    DROPPED_WITH_CONTENT,
    normalise,
    plain_text,
    sanitise_html,
    scrub,
)

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>With guid</title><guid>g-1</guid><link>http://a.example/1?utm_source=x</link>
<description>&lt;p&gt;Hello &lt;script&gt;alert(1)&lt;/script&gt;
&lt;b&gt;world&lt;/b&gt;&lt;/p&gt;</description>
<pubDate>not a date at all</pubDate></item>
<item><title>Link only</title><link>http://a.example/2?id=5&amp;utm_medium=y#frag</link></item>
<item><title>Nothing but a title</title></item>
</channel></rss>"""

RICH_RSS = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Rich</title>
<language>ro</language>
<item><guid>r-1</guid><title>Full item</title>
<description>Short teaser</description>
<content:encoded><![CDATA[<p>The <em>whole</em> story, <a href="/more">more</a>.</p>]]>
</content:encoded>
<dc:creator>Ana Pop</dc:creator>
<category> Politics </category><category>politics</category><category>Defence</category>
<enclosure url="https://cdn.example/a.mp3" length="1" type="audio/mpeg"/>
<enclosure url="ftp://cdn.example/b.mp3" length="1" type="audio/mpeg"/>
<enclosure url="/relative.mp3" length="1" type="audio/mpeg"/>
<pubDate>Tue, 02 Jan 2024 10:00:00 +0200</pubDate>
</item></channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>Atom</title><id>urn:f</id>
<author><name>Desk</name></author><updated>2024-01-01T00:00:00Z</updated>
<entry><id>urn:1</id><title>English</title><summary>s</summary>
<published>2024-01-01T08:00:00Z</published><updated>2024-01-03T09:30:00Z</updated></entry>
<entry xml:lang="de"><id>urn:2</id><title>Deutsch</title><summary>s</summary>
<author><name>Own author</name></author><updated>sometime last week</updated></entry>
</feed>"""


def rss_item(inner: str, channel: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{channel}'
        f"<item>{inner}</item></channel></rss>"
    ).encode()


def test_every_demo_feed_parses_with_entries_and_no_errors() -> None:
    for path in sorted(FEEDS_DIR.glob("*.xml")):
        parsed = parse(path.read_bytes())
        assert parsed.entries, path.name
        assert parsed.bozo_reason is None, path.name


def test_identity_is_guid_then_canonical_url_then_content_hash() -> None:
    entries = parse(RSS).entries
    assert [e.dedupe_key for e in entries[:2]] == ["g-1", "http://a.example/2?id=5"]
    assert entries[2].dedupe_key.startswith("sha256:")


def test_html_is_reduced_to_plain_text_without_script_content() -> None:
    entry = parse(RSS).entries[0]
    assert entry.summary == "Hello world"


def test_plain_text_drops_style_content_and_keeps_paragraphs_apart() -> None:
    body = rss_item(
        "<title>t</title><description>&lt;style&gt;p{color:red}&lt;/style&gt;"
        "&lt;p&gt;One&lt;/p&gt;&lt;p&gt;Two&lt;br&gt;Three&lt;/p&gt;</description>"
    )
    assert parse(body).entries[0].summary == "One Two Three"


def test_a_bad_date_is_tolerated_as_missing() -> None:
    assert parse(RSS).entries[0].published_at is None


def test_an_html_page_is_not_a_feed() -> None:
    with pytest.raises(NotAFeedError, match="not a feed"):
        parse(b"<!doctype html><html><body><p>Welcome</p></body></html>")


def test_garbage_bytes_are_not_a_feed() -> None:
    with pytest.raises(NotAFeedError):
        parse(b"\x00\xff\xfe garbage \x89PNG")


def test_a_truncated_feed_keeps_what_could_be_parsed_and_says_why() -> None:
    parsed = parse(b'<rss version="2.0"><channel><item><title>Kept</title></item><item><titl')
    assert [e.title for e in parsed.entries][:1] == ["Kept"]
    assert parsed.bozo_reason


def test_a_valid_feed_without_items_is_an_empty_feed_not_an_error() -> None:
    parsed = parse(b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>')
    assert (parsed.title, parsed.entries, parsed.bozo_reason) == ("Quiet", [], None)


def test_a_base_url_alone_does_not_make_a_feed_bozo() -> None:
    # feedparser calls HTTP headers without a Content-Type bozo.
    assert parse(RSS, base_url="https://a.example/feed").bozo_reason is None


def test_a_feed_that_moved_keeps_the_identity_of_its_items_and_resolves_links_anew() -> None:
    body = rss_item("<title>t</title><guid>42</guid><link>/news/42</link>")
    old = parse(body, base_url="https://old.example/rss").entries[0]
    new = parse(body, base_url="https://new.example/feed/rss").entries[0]
    assert old.dedupe_key == new.dedupe_key == "42"
    assert (old.url, new.url) == ("https://old.example/news/42", "https://new.example/news/42")


def test_links_under_a_relative_xml_base_resolve_against_the_fetch_url() -> None:
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="/blog/">'
        b'<title>A</title><entry><id>urn:e</id><title>t</title><link href="posts/1"/>'
        b'<link rel="enclosure" href="media/1.mp3"/></entry></feed>'
    )
    entry = parse(body, base_url="https://site.example/feeds/atom.xml").entries[0]
    assert entry.url == "https://site.example/blog/posts/1"
    assert entry.enclosures == ("https://site.example/blog/media/1.mp3",)


def test_header_names_are_matched_whatever_their_case() -> None:
    latin1 = rss_item("<title>Caf\xe9</title>").decode("latin-1").encode("latin-1")
    parsed = parse(latin1, {"Content-Type": "application/rss+xml; charset=iso-8859-1"})
    assert parsed.entries[0].title == "Café"


def test_canonical_urls_drop_tracking_parameters_and_fragments() -> None:
    assert canonical_url("HTTP://News.Example/a?b=1&utm_campaign=z&fbclid=q#top") == (
        "http://news.example/a?b=1"
    )
    assert canonical_url("javascript:alert(1)") is None
    assert canonical_url("http://[broken/") is None
    assert canonical_url(None) is None


def test_content_html_is_the_longest_body_sanitised_with_links_made_absolute() -> None:
    entry = parse(RICH_RSS, base_url="https://news.example/feed.xml").entries[0]
    assert entry.summary == "Short teaser"
    assert entry.content_html == (
        '<p>The <em>whole</em> story, <a href="https://news.example/more" '
        'rel="noopener noreferrer nofollow">more</a>.</p>'
    )


def test_author_categories_enclosures_and_language_are_filled() -> None:
    entry = parse(RICH_RSS, base_url="https://news.example/feed.xml").entries[0]
    assert entry.author == "Ana Pop"
    assert entry.categories == ("Politics", "Defence")
    assert entry.enclosures == ("https://cdn.example/a.mp3", "https://news.example/relative.mp3")
    assert entry.language == "ro"


def test_categories_are_capped_at_twenty() -> None:
    tags = "".join(f"<category>c{i}</category>" for i in range(30))
    entry = parse(rss_item(f"<title>t</title>{tags}")).entries[0]
    assert entry.categories == tuple(f"c{i}" for i in range(20))


def test_published_and_updated_dates_are_read_and_a_bad_one_is_none() -> None:
    first, second = parse(ATOM).entries
    assert first.published_at == datetime(2024, 1, 1, 8, tzinfo=UTC)
    assert first.updated_at == datetime(2024, 1, 3, 9, 30, tzinfo=UTC)
    assert (second.published_at, second.updated_at) == (None, None)


def test_rss_pub_date_is_converted_to_utc() -> None:
    entry = parse(RICH_RSS).entries[0]
    assert entry.published_at == datetime(2024, 1, 2, 8, tzinfo=UTC)
    assert entry.updated_at is None


def test_atom_entries_inherit_the_feed_author_and_keep_their_own_language() -> None:
    first, second = parse(ATOM).entries
    assert (first.author, first.language) == ("Desk", "en")
    assert (second.author, second.language) == ("Own author", "de")


def test_an_entry_without_title_takes_the_first_120_characters_of_its_summary() -> None:
    text = "word " * 60
    entry = parse(rss_item(f"<description>{text}</description>")).entries[0]
    assert entry.title == entry.summary[:120]
    assert len(entry.title) == 120


def test_relative_links_without_a_fetch_url_resolve_against_the_declared_self_link() -> None:
    body = rss_item(
        "<title>t</title><link>/notes/1.html</link>",
        channel='<atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="self" '
        'href="https://blog.example/feed.xml"/>',
    )
    assert parse(body).entries[0].url == "https://blog.example/notes/1.html"


XSS = {
    "script": '<script>alert("x")</script>',
    "onerror": '<img src="https://i.example/a.png" onerror="alert(1)">',
    "javascript href": '<a href="javascript:alert(1)">x</a>',
    "encoded javascript href": '<a href="java&#x09;script&#58;alert(1)">x</a>',
    "svg onload": '<svg onload="alert(1)"><circle r="1"/></svg>',
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "style tag": "<style>body{display:none}</style>",
    "style attribute": '<p style="background:url(javascript:alert(1))">p</p>',
    "form": '<form action="https://evil.example"><input name="q"><button>Go</button></form>',
    "data url": '<a href="data:text/html;base64,PHNjcmlwdD4=">d</a>',
    "object": '<object data="https://evil.example/x.swf"></object>',
}
FORBIDDEN = (
    *("<script", "onerror", "onload", "javascript", "<iframe", "<style", "style="),
    *("<form", "<input", "<button", "<svg", "data:", "<object"),
)


@pytest.mark.parametrize("payload", XSS.values(), ids=XSS.keys())
def test_sanitised_html_keeps_no_active_content(payload: str) -> None:
    cleaned = sanitise_html(f"<p>before</p>{payload}<p>after</p>").lower()
    assert not [word for word in FORBIDDEN if word in cleaned]
    assert cleaned.startswith("<p>before</p>") and cleaned.endswith("<p>after</p>")


@pytest.mark.parametrize("payload", XSS.values(), ids=XSS.keys())
def test_an_xss_payload_in_a_feed_is_sanitised_in_content_and_absent_from_text(
    payload: str,
) -> None:
    body = rss_item(f"<title>t</title><description><![CDATA[ok {payload}]]></description>")
    entry = parse(body).entries[0]
    assert not [word for word in FORBIDDEN if word in entry.content_html.lower()]
    assert "alert" not in entry.summary and "display:none" not in entry.summary


def test_sanitised_links_get_rel_and_only_web_and_mail_schemes() -> None:
    cleaned = sanitise_html(
        '<a href="https://x.example/">w</a><a href="mailto:desk@x.example">m</a>'
        '<a href="ftp://x.example/f">f</a><a href="rel/page">r</a>',
        base="https://x.example/feed/",
    )
    rel = 'rel="noopener noreferrer nofollow"'
    assert cleaned == (
        f'<a href="https://x.example/" {rel}>w</a><a href="mailto:desk@x.example" {rel}>m</a>'
        f'<a {rel}>f</a><a href="https://x.example/feed/rel/page" {rel}>r</a>'
    )


def test_a_relative_link_without_any_base_is_dropped_not_kept_relative() -> None:
    # Left relative, it would point at the tracker's own host when displayed.
    assert sanitise_html('<a href="/x">x</a>') == '<a rel="noopener noreferrer nofollow">x</a>'


def test_describe_file_reports_entries_titles_and_bozo(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    assert describe_file(path) == {
        "entries": 3,
        "titles": ["With guid", "Link only", "Nothing but a title"],
        "bozo": False,
        "error": None,
    }


def test_describe_file_of_a_broken_feed_says_bozo(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_bytes(b'<rss version="2.0"><channel><item><title>Kept</title></item><item><ti')
    described = describe_file(path)
    assert (described["entries"], described["bozo"], described["error"]) == (1, True, None)


def test_describe_file_of_a_non_feed_or_missing_file_gives_no_entries_and_the_error(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(b"<!doctype html><html><body>hi</body></html>")
    missing = describe_file(tmp_path / "missing.xml")
    assert describe_file(page)["error"].startswith("not a feed")
    assert (missing["entries"], missing["titles"]) == (0, [])
    assert "cannot read" in missing["error"]


def test_describe_file_refuses_a_file_over_the_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(RSS)
    assert "larger than 100 bytes" in describe_file(path, max_bytes=100)["error"]


MARKUP_FREE = [
    "Plain headline",
    "  spaced\t\r\nout  ",
    "\ufeffA title after a byte order mark",
    "\x00\ufeffNUL, then a mark",
    "Quotes \" and ' and > alone",
    "Control \x01\x0b\x7f characters",
    "Lone surrogate \ud800 here",
    "Diacritics: ș ț ă î â, Ελληνικά, кириллица 😀",
    "\u2028line separator\xa0and no-break space\u200b",
]


@pytest.mark.parametrize("text", MARKUP_FREE)
def test_text_without_markup_reads_as_the_sanitiser_would_read_it(text: str) -> None:
    # The short cut for text with neither "<" nor "&" must not change what is stored.
    stripped = nh3.clean(scrub(text), tags=set(), clean_content_tags=DROPPED_WITH_CONTENT)
    assert plain_text(text) == normalise(html.unescape(stripped))
