"""ClaimReview JSON-LD and its DataFeed export read as records, and records as items.

Every fact-check here is invented for these tests.
"""

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tracker.ingest import claimreview
from tracker.ingest.claimreview import BadRecordError, MalformedJsonError, Record, Review
from tracker.pipeline import archive


def fact_check(n: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "@context": "https://schema.org",
        "@type": "ClaimReview",
        "url": f"https://checks.example/reviews/{n}?utm_source=feed",
        "headline": f"No, the river bridge was not painted pink ({n})",
        "claimReviewed": f"The river bridge was painted pink overnight ({n})",
        "datePublished": "2026-03-04T09:30:00+02:00",
        "inLanguage": "en",
        "author": {
            "@type": "Organization",
            "name": "Example Checks",
            "url": "https://checks.example",
        },
        "reviewRating": {
            "@type": "Rating",
            "ratingValue": 1,
            "bestRating": 5,
            "alternateName": "False",
        },
        "itemReviewed": {
            "@type": "Claim",
            "author": {"@type": "Person", "name": "A. Poster"},
            "datePublished": "2026-03-01",
            "appearance": [{"@type": "CreativeWork", "url": "https://social.example/p/1"}],
        },
        **fields,
    }


def data_feed(*items: Any) -> dict[str, Any]:
    return {
        "@context": "http://schema.org",
        "@type": "DataFeed",
        "dataFeedElement": [
            {"@type": "DataFeedItem", "dateCreated": "2026-03-05T00:00:00Z", "item": item}
            for item in items
        ],
    }


def read(document: Any) -> list[Record]:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return list(claimreview.records(io.BytesIO(raw)))


def outcome(record: Record) -> Review | str:
    try:
        return claimreview.review(record.value)
    except BadRecordError as exc:
        return f"{record.label}: {exc}"


def test_a_single_json_ld_review_becomes_one_item_of_its_fact_checkers_feed() -> None:
    [record] = read(fact_check())
    found = claimreview.review(record.value)
    entry = found.entry
    assert record.label == "record 1"
    assert found.feed_url == "https://checks.example/"
    assert entry.title == "No, the river bridge was not painted pink (1)"
    assert entry.summary == (
        "Claim: The river bridge was painted pink overnight (1) (by A. Poster) Verdict: False"
    )
    assert entry.url == entry.dedupe_key == "https://checks.example/reviews/1"
    assert entry.published_at == datetime(2026, 3, 4, 7, 30, tzinfo=UTC)
    assert entry.language == "en"
    assert entry.text_hash is not None


def test_an_array_of_reviews_is_numbered_in_file_order() -> None:
    records = read([fact_check(1), fact_check(2), fact_check(3)])
    assert [r.label for r in records] == ["record 1", "record 2", "record 3"]
    reviews = [claimreview.review(r.value) for r in records]
    assert [r.entry.url for r in reviews] == [
        f"https://checks.example/reviews/{n}" for n in (1, 2, 3)
    ]


def test_reviews_inside_a_graph_are_found_and_other_objects_passed_over() -> None:
    page = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "Example Checks", "url": "https://checks.example/"},
            {"@type": "Organization", "name": "Example Checks"},
            {"@type": "NewsArticle", "headline": "An article", "mainEntity": fact_check(2)},
            fact_check(3),
        ],
    }
    records = read(page)
    assert [r.label for r in records] == ["record 1", "record 2"]
    urls = [claimreview.review(r.value).entry.url for r in records]
    assert urls == ["https://checks.example/reviews/2", "https://checks.example/reviews/3"]


def test_a_data_feed_export_yields_every_review_of_every_element() -> None:
    feed = data_feed([fact_check(1), fact_check(2)], fact_check(3), [])
    records = read(feed)
    assert [claimreview.review(r.value).entry.url for r in records] == [
        f"https://checks.example/reviews/{n}" for n in (1, 2, 3)
    ]


def test_bad_records_are_reported_with_their_index_and_the_rest_still_read() -> None:
    feed = data_feed(
        [
            fact_check(1),
            fact_check(2, headline=None, claimReviewed=None),
            fact_check(3, datePublished="the third of March"),
            fact_check(4, claimReviewed=42),
            "https://checks.example/reviews/5",
            fact_check(6, url="ftp://checks.example/6"),
            fact_check(7, reviewRating="False"),
            fact_check(8, author={"name": "Example Checks", "url": "javascript:alert(1)"}),
            fact_check(9),
        ]
    )
    results = [outcome(r) for r in read(feed)]
    problems = [result for result in results if isinstance(result, str)]
    assert problems == [
        "record 2: needs a 'claimReviewed' or a 'headline'",
        "record 3: 'datePublished' is not an ISO 8601 date: 'the third of March'",
        "record 4: 'claimReviewed' must be text, not a number",
        "record 5: not a JSON object but a string",
        "record 6: 'url' must be an http(s) URL, not 'ftp://checks.example/6'",
        "record 7: 'reviewRating' must be an object, not a string",
        "record 8: 'author.url' must be an http(s) URL, not 'javascript:alert(1)'",
    ]
    assert [r.entry.url for r in results if isinstance(r, Review)] == [
        "https://checks.example/reviews/1",
        "https://checks.example/reviews/9",
    ]


def test_without_a_headline_the_claim_is_the_title_and_a_score_the_verdict() -> None:
    rating = {"@type": "Rating", "ratingValue": 2, "bestRating": 5}
    record = fact_check(headline=None, reviewRating=rating, itemReviewed=None)
    entry = claimreview.review(record).entry
    assert entry.title == "The river bridge was painted pink overnight (1)"
    assert entry.summary == "Claim: The river bridge was painted pink overnight (1) Verdict: 2/5"


def test_a_review_without_url_gets_a_stable_key_from_claim_publisher_and_date() -> None:
    def key(**fields: Any) -> str:
        return claimreview.review(fact_check(url=None, **fields)).entry.dedupe_key

    assert key() == key() and key().startswith("claimreview:")
    assert key() != key(datePublished="2026-03-05")
    assert key() != key(author={"name": "Other Checks", "url": "https://other.example/"})
    assert key() != key(claimReviewed="A different claim")


def test_the_publisher_stands_in_for_a_missing_author_and_no_url_means_no_feed() -> None:
    publisher = {"@type": "Organization", "name": "Example Checks", "url": "https://pub.example"}
    assert claimreview.review(fact_check(author=None, publisher=publisher)).feed_url == (
        "https://pub.example/"
    )
    named_only = fact_check(author={"@type": "Organization", "name": "Example Checks"})
    assert claimreview.review(named_only).feed_url is None


def test_json_that_breaks_off_yields_the_records_before_the_break_then_an_error() -> None:
    raw = json.dumps([fact_check(1), fact_check(2), fact_check(3)]).encode()
    cut = raw[: raw.index(b"reviews/3")]
    seen: list[str] = []
    with pytest.raises(MalformedJsonError, match="premature EOF"):
        for record in claimreview.records(io.BytesIO(cut)):
            seen.append(record.label)
    assert seen == ["record 1", "record 2"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "no JSON"),
        (b"  \n ", "no JSON"),
        (b'{"@type": "ClaimReview"}\n{"@type": "ClaimReview"}\n', "trailing garbage"),
        (b"[" * 500 + b"]" * 500, "nested deeper"),
        (b'{"claimReviewed": "caf\xff"}', "UTF8"),
    ],
)
def test_malformed_documents_are_one_clear_error(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedJsonError, match=message):
        read(raw)


def test_a_byte_order_mark_and_leading_space_are_allowed() -> None:
    [record] = read(b"\xef\xbb\xbf \n" + json.dumps(fact_check()).encode())
    assert claimreview.review(record.value).entry.title.startswith("No, the river bridge")


def test_an_html_page_yields_the_reviews_of_its_json_ld_blocks() -> None:
    page = (
        "<!doctype html><html><head><title>Checks</title>"
        '<script type="application/ld+json">'
        + json.dumps({"@type": "BreadcrumbList", "itemListElement": []})
        + '</script><script type="application/ld+json">{"@type": "ClaimReview", broken'
        + "</script><script>var notJsonLd = '<b>';</script>"
        + '<script type="application/LD+JSON">'
        + json.dumps(fact_check(2, headline="Pink bridge: <b>false</b>"))
        + "</script></head><body><p>Body text</p></body></html>"
    )
    records = read(page.encode())
    assert [(r.label, r.problem is not None) for r in records] == [
        ("script block 2", True),
        ("record 1", False),
    ]
    assert records[0].problem is not None and records[0].problem.startswith("malformed JSON")
    assert claimreview.review(records[1].value).entry.title == "Pink bridge: <b>false</b>"


def test_a_large_data_feed_is_read_record_by_record_not_whole() -> None:
    raw = json.dumps(data_feed(*[[fact_check(n)] for n in range(4000)])).encode()
    handle = io.BytesIO(raw)
    records = claimreview.records(handle)
    first = next(records)
    assert claimreview.review(first.value).entry.url == "https://checks.example/reviews/0"
    # The parser reads in chunks; how far the file has been read shows what was built.
    assert 0 < handle.tell() < len(raw) // 4
    assert sum(1 for _ in records) == 3999


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("items.jsonl", '{"feed_url": "https://a.example/rss", "title": "x"}\n', "jsonl"),
        ("items.json", '{"feed_url": "https://a.example/rss", "title": "x"}\n{}\n', "jsonl"),
        ("reviews.json", json.dumps(fact_check()) + "\n", "claimreview"),
        ("reviews.json", json.dumps(data_feed(fact_check()), indent=2), "claimreview"),
        ("reviews.txt", json.dumps([fact_check()]), "claimreview"),
        ("page.html", "<html></html>", "claimreview"),
        ("page", "\ufeff  <!doctype html>", "claimreview"),
    ],
)
def test_auto_format_goes_by_extension_then_first_bytes(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert archive.choose_format(path, "auto") == expected


def test_a_file_of_neither_format_asks_for_format(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("plain words")
    with pytest.raises(archive.FormatError, match="--format"):
        archive.choose_format(path, "auto")
    with pytest.raises(archive.FormatError, match="--format must be one of"):
        archive.choose_format(path, "csv")
    assert archive.choose_format(path, "jsonl") == "jsonl"
