import pytest

from tracker.demo import FEEDS_DIR
from tracker.feeds.parse import NotAFeedError, canonical_url, parse

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>With guid</title><guid>g-1</guid><link>http://a.example/1?utm_source=x</link>
<description>&lt;p&gt;Hello &lt;script&gt;alert(1)&lt;/script&gt;
&lt;b&gt;world&lt;/b&gt;&lt;/p&gt;</description>
<pubDate>not a date at all</pubDate></item>
<item><title>Link only</title><link>http://a.example/2?id=5&amp;utm_medium=y#frag</link></item>
<item><title>Nothing but a title</title></item>
</channel></rss>"""


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


def test_canonical_urls_drop_tracking_parameters_and_fragments() -> None:
    assert canonical_url("HTTP://News.Example/a?b=1&utm_campaign=z&fbclid=q#top") == (
        "http://news.example/a?b=1"
    )
    assert canonical_url("javascript:alert(1)") is None
    assert canonical_url(None) is None
