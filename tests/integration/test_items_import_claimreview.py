"""`tracker items import` of ClaimReview fact-checks: JSON-LD, the DataFeed export, HTML pages.

Every fact-check here is invented for these tests.
"""

import json
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import run_tracker


def fact_check(n: int, checker: str = "https://checks.example", **fields: Any) -> dict[str, Any]:
    return {
        "@context": "https://schema.org",
        "@type": "ClaimReview",
        "url": f"{checker}/reviews/{n}",
        "claimReviewed": f"Tram line {n} will be closed for a year from Monday",
        "datePublished": f"2026-02-{n % 28 + 1:02d}",
        "inLanguage": "en",
        "author": {"@type": "Organization", "name": "Example Checks", "url": checker},
        "reviewRating": {"@type": "Rating", "alternateName": "Misleading"},
        "itemReviewed": {"@type": "Claim", "author": {"@type": "Person", "name": "A. Poster"}},
        **fields,
    }


def write_feed(path: Path, reviews: list[Any]) -> Path:
    feed = {
        "@context": "http://schema.org",
        "@type": "DataFeed",
        "dataFeedElement": [{"@type": "DataFeedItem", "item": [r]} for r in reviews],
    }
    path.write_text(json.dumps(feed, indent=1))
    return path


def stored(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        """SELECT f.url, f.kind, f.enabled, i.title, i.summary, i.url, i.language,
                  i.published_at::date::text
           FROM items i JOIN feeds f ON f.id = i.feed_id ORDER BY i.url"""
    ).fetchall()


def test_a_data_feed_loads_once_and_a_bad_record_is_reported_by_its_index(
    cli_env: dict[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    reviews: list[Any] = [fact_check(n) for n in range(1, 7)]
    reviews[2]["datePublished"] = "last Tuesday"  # record 3
    reviews.append(fact_check(7, checker="https://other-checks.example"))
    path = write_feed(tmp_path / "export.json", reviews)
    first = run_tracker("items", "import", str(path), env=cli_env)
    assert first.returncode == 0, first.stderr
    assert "7 records: 6 items imported, 0 already stored, 1 rejected" in first.stdout
    assert "record 3: 'datePublished' is not an ISO 8601 date" in first.stderr
    rows = stored(conn)
    assert len(rows) == 6
    assert rows[0] == (
        "https://checks.example/",
        "factcheck",
        False,  # an archive's fact-checker is registered, not polled
        "Tram line 1 will be closed for a year from Monday",
        "Claim: Tram line 1 will be closed for a year from Monday (by A. Poster) "
        "Verdict: Misleading",
        "https://checks.example/reviews/1",
        "en",
        "2026-02-02",
    )
    assert {row[0] for row in rows} == {"https://checks.example/", "https://other-checks.example/"}
    again = run_tracker("items", "import", str(path), env=cli_env)
    assert again.returncode == 0, again.stderr
    assert "7 records: 0 items imported, 6 already stored, 1 rejected" in again.stdout
    assert len(stored(conn)) == 6


def test_reviews_without_a_fact_checker_url_need_feed_url_and_kind_overrides(
    cli_env: dict[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    anonymous = [fact_check(n, author={"name": "Desk"}, url=None) for n in (1, 2)]
    path = tmp_path / "reviews.json"
    path.write_text(json.dumps(anonymous))
    refused = run_tracker("items", "import", str(path), env=cli_env)
    assert "2 records: 0 items imported" in refused.stdout
    assert "record 1: no fact-checker url" in refused.stderr
    loaded = run_tracker(
        "items", "import", str(path), "--feed-url", "https://desk.example/checks",
        "--kind", "media", env=cli_env,
    )  # fmt: skip
    assert "2 records: 2 items imported" in loaded.stdout, loaded.stderr
    assert {(row[0], row[1]) for row in stored(conn)} == {("https://desk.example/checks", "media")}
    again = run_tracker(
        "items", "import", str(path), "--feed-url", "https://desk.example/checks", env=cli_env
    )
    assert "0 items imported, 2 already stored" in again.stdout


def test_json_that_breaks_off_is_a_clear_error_and_keeps_the_records_before_it(
    cli_env: dict[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    whole = json.dumps([fact_check(n) for n in range(1, 5)])
    path = tmp_path / "cut.json"
    path.write_text(whole[: whole.index("reviews/4")])
    result = run_tracker("items", "import", str(path), env=cli_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "malformed JSON" in result.stderr and "3 items imported" in result.stdout
    assert len(stored(conn)) == 3


def test_an_html_page_and_a_forced_format_are_read(
    cli_env: dict[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    page = tmp_path / "review-page"
    page.write_text(
        '<html><head><script type="application/ld+json">'
        + json.dumps({"@context": "https://schema.org", "@graph": [fact_check(9)]})
        + "</script></head><body>Tram line 9 will not close.</body></html>"
    )
    result = run_tracker("items", "import", str(page), "--format", "claimreview", env=cli_env)
    assert "1 records: 1 items imported" in result.stdout, result.stderr
    assert [row[5] for row in stored(conn)] == ["https://checks.example/reviews/9"]
    wrong = run_tracker("items", "import", str(page), "--format", "xml", env=cli_env)
    assert wrong.returncode == 2 and "'xml' is not one of jsonl," in wrong.stderr
