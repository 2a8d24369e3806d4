import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tracker.ingest.jsonfeed import MAX_ITEMS, looks_like_json, parse_rfc3339
from tracker.ingest.parse import NotAFeedError, describe_file, parse

V1 = "https://jsonfeed.org/version/1"
V11 = "https://jsonfeed.org/version/1.1"
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def feed(version: str = V11, **fields: Any) -> bytes:
    return json.dumps({"version": version, "title": "Desk", **fields}).encode()


FEED_11 = feed(
    feed_url="https://desk.example/feed.json",
    language="ro",
    authors=[{"name": "Desk team"}],
    items=[
        {
            "id": "a-1",
            "url": "/2024/claim?utm_source=x",
            "title": "Claim  about\nbridges",
            "content_html": '<p>Full <a href="/ref">text</a><script>alert(1)</script></p>',
            "summary": "A short summary.",
            "date_published": "2024-05-01T10:00:00+02:00",
            "date_modified": "2024-05-02T08:00:00Z",
            "authors": [{"name": "Ana Pop"}, {"name": "Ion Ene"}],
            "tags": ["Bridges", " bridges ", "Infrastructure"],
            "attachments": [
                {"url": "https://cdn.example/a.mp3", "mime_type": "audio/mpeg"},
                {"url": "ftp://cdn.example/b.mp3", "mime_type": "audio/mpeg"},
            ],
            "language": "en",
        },
        {"id": 42, "content_text": "Plain <b>text</b> only", "date_published": "yesterday"},
    ],
)


def test_a_json_feed_1_1_fills_every_entry_field() -> None:
    parsed = parse(FEED_11)
    first = parsed.entries[0]
    assert (parsed.title, parsed.language, parsed.bozo_reason) == ("Desk", "ro", None)
    assert (first.dedupe_key, first.guid) == ("a-1", "a-1")
    assert first.url == "https://desk.example/2024/claim"
    assert (first.title, first.summary) == ("Claim about bridges", "A short summary.")
    assert first.published_at == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert first.updated_at == datetime(2024, 5, 2, 8, tzinfo=UTC)
    assert (first.author, first.language) == ("Ana Pop, Ion Ene", "en")
    assert first.categories == ("Bridges", "Infrastructure")
    assert first.enclosures == ("https://cdn.example/a.mp3",)


def test_json_feed_html_is_sanitised_and_its_links_made_absolute() -> None:
    assert parse(FEED_11).entries[0].content_html == (
        '<p>Full <a href="https://desk.example/ref" rel="noopener noreferrer nofollow">text</a></p>'
    )


def test_a_json_item_without_title_or_author_falls_back_to_its_text_and_the_feed_authors() -> None:
    second = parse(FEED_11).entries[1]
    assert (second.dedupe_key, second.title) == ("42", "Plain <b>text</b> only")
    assert second.content_html == "Plain &lt;b&gt;text&lt;/b&gt; only"
    assert (second.author, second.language, second.published_at) == ("Desk team", "ro", None)


def test_a_json_feed_1_0_reads_the_single_author_object() -> None:
    body = feed(V1, author={"name": "Old style"}, items=[{"id": "1", "content_text": "x"}])
    assert parse(body).entries[0].author == "Old style"


def test_a_json_item_without_id_is_identified_by_url_then_by_content_hash() -> None:
    items = [{"url": "https://x.example/a#top", "title": "a"}, {"title": "only a title"}]
    first, second = parse(feed(items=items)).entries
    assert (first.guid, first.dedupe_key) == (None, "https://x.example/a")
    assert second.dedupe_key.startswith("sha256:")


def test_items_that_are_not_objects_are_skipped_and_the_feed_is_bozo() -> None:
    parsed = parse(feed(items=["junk", {"id": "1", "title": "kept"}, 7]))
    assert [e.title for e in parsed.entries] == ["kept"]
    assert parsed.bozo_reason == "skipped 2 items that are not objects"


def test_invalid_json_is_not_a_feed_and_says_so() -> None:
    with pytest.raises(NotAFeedError, match="not a feed: invalid JSON"):
        parse(b'{"version": "https://jsonfeed.org/version/1", "items": [')


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        (b'{"title": "no version"}', None),
        (b'{"version": "https://example.org/rss"}', None),
        (b"[1, 2]", "application/json"),
    ],
)
def test_json_that_is_not_a_json_feed_is_not_a_feed(body: bytes, media_type: str | None) -> None:
    headers = {"content-type": media_type} if media_type else None
    with pytest.raises(NotAFeedError, match="not a feed: JSON"):
        parse(body, headers)


def test_json_nested_absurdly_deep_is_not_a_feed_rather_than_a_crash() -> None:
    with pytest.raises(NotAFeedError):
        parse(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)


def test_items_beyond_the_cap_are_not_read() -> None:
    items = [{"id": str(i), "title": "t"} for i in range(MAX_ITEMS + 10)]
    assert len(parse(feed(items=items)).entries) == MAX_ITEMS


def test_a_lone_surrogate_in_json_text_is_replaced_not_fatal() -> None:
    body = b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", ' + (
        b'"title": "bad \\ud800 char", "content_html": "<p>\\ud800</p>"}]}'
    )
    entry = parse(body).entries[0]
    assert entry.title == "bad ? char" and entry.content_html == "<p>?</p>"


def test_json_is_recognised_by_media_type_or_by_its_opening_brace() -> None:
    assert looks_like_json(b'\xef\xbb\xbf \n {"version": 1}', None)
    assert looks_like_json(b"[]", "application/feed+json; charset=utf-8")
    assert looks_like_json(b"", "Application/JSON")
    # Servers mislabel RSS as JSON more often than JSON starts with "<".
    assert not looks_like_json(b"<rss/>", "application/json")
    assert not looks_like_json(b"<rss/>", "application/rss+xml")


def test_a_json_feed_with_a_bom_and_a_json_content_type_is_parsed() -> None:
    body = b"\xef\xbb\xbf" + feed(items=[{"id": "1", "title": "t"}])
    assert len(parse(body, {"Content-Type": "application/feed+json"}).entries) == 1


def test_rfc3339_dates_are_read_into_utc_and_bad_ones_are_none() -> None:
    plus_two = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert parse_rfc3339("2024-05-01T12:00:00+02:00") == plus_two
    assert parse_rfc3339("2024-05-01t10:00:00.123456789z") == datetime(
        2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC
    )
    assert parse_rfc3339("2024-05-01T10:00:00") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert [parse_rfc3339(v) for v in ("May 1st", "", None, 1714557600)] == [None] * 4
    assert parse_rfc3339("0001-01-01T00:00:00+01:00") is None


def test_describe_file_reads_a_json_feed(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    path.write_bytes(FEED_11)
    assert describe_file(path) == {
        "entries": 2,
        "titles": ["Claim about bridges", "Plain <b>text</b> only"],
        "bozo": False,
        "error": None,
    }


def test_the_json_feed_of_the_conformance_corpus_gives_its_two_items() -> None:
    root = Path(os.environ.get("TRACKER_SHARED_DATA") or SHARED_DATA).resolve()
    path = root / "feeds" / "feedparser_tests" / "json" / "example.json"
    if not path.is_file():
        pytest.skip(f"shared feed data not found at {path} (set TRACKER_SHARED_DATA)")
    parsed = parse(path.read_bytes())
    first, second = parsed.entries
    assert (parsed.title, parsed.bozo_reason) == ("My Example Feed", None)
    assert (first.title, first.categories) == ("post 2", ("test", "JSON"))
    assert first.enclosures == ("https://example.org/second-item-show.mp4",)
    assert (second.author, second.content_html) == ("you", "<p>Hello, world!</p>")
    assert first.author == "me"  # the feed's author, inherited
