"""Pairing by role and the fact-check archive, with the shipped models, against PostgreSQL:
fact-checks and official statements are clarifications by their feed's kind, and stay
matchable for years; a fact-check that arrives after the claim it answers still finds it."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from classifiers import embedder
from tests.factories import entry
from tracker.config import Settings
from tracker.domain import ParsedEntry
from tracker.ingest.dedupe import text_fingerprint
from tracker.pipeline import classify, pairing
from tracker.pipeline.model_registry import item_classifier, pair_scorer
from tracker.storage import claim_candidates, feeds, items, pairs, vectors

CLAIM = "Viral video shows a ten-metre anaconda swimming across the Xingu river in Brazil"
CHECK_TITLE = "Does a video show a ten-metre anaconda swimming in the Xingu river?"
CHECK_SUMMARY = (
    "Claim: a viral video shows a ten-metre anaconda swimming across the Xingu river in "
    "Brazil. Rating: miscaptioned. The snake in the footage is about five metres long."
)
NOW = datetime.now(UTC)
YEARS_AGO = NOW - timedelta(days=3 * 365)


def stored(conn: psycopg.Connection, kind: str, found: ParsedEntry) -> int:
    """Stored as a fetch stores it: pointed at the first copy of its text in another feed."""
    feed, _ = feeds.add(conn, feeds.NewFeed(f"http://{kind}.example/feed", kind, kind, "en"))
    [item_id] = items.upsert(conn, feed.id, [found], link_copies=True)
    return item_id


def run(conn: psycopg.Connection, item_ids: list[int], config: pairing.PairingConfig) -> None:
    # Claims meet fact-checks whatever their rumour probability, as the default settings have it.
    settings = Settings()
    classify.classify_items(conn, item_ids, 1.1, None, settings.pair_claim_min_rumour)
    pairing.pair_items(conn, item_ids, pair_scorer(conn), config)


@pytest.fixture
def config(conn: psycopg.Connection, shipped_models: None) -> pairing.PairingConfig:
    return pairing.config_for(Settings(), item_classifier(conn).version)


def paired(conn: psycopg.Connection) -> set[tuple[str, str]]:
    return {(p.rumour_title, p.clarification_kind) for p in pairs.list_pairs(conn)}


def test_a_claim_meets_a_fact_check_published_years_before_it(
    conn: psycopg.Connection, config: pairing.PairingConfig
) -> None:
    check = stored(conn, "factcheck", entry("check", CHECK_TITLE, CHECK_SUMMARY, YEARS_AGO))
    run(conn, [check], config)
    claim = stored(conn, "social", entry("claim", CLAIM, "", NOW))
    run(conn, [claim], config)
    assert paired(conn) == {(CLAIM, "factcheck")}


def test_without_the_archive_the_window_hides_an_old_fact_check(
    conn: psycopg.Connection, config: pairing.PairingConfig
) -> None:
    window_only = pairing.PairingConfig(
        config.model_version, config.window_days, config.suggest_threshold, 1.01, 0.45
    )
    check = stored(conn, "factcheck", entry("check", CHECK_TITLE, CHECK_SUMMARY, YEARS_AGO))
    claim = stored(conn, "social", entry("claim", CLAIM, "", NOW))
    run(conn, [check], window_only)
    run(conn, [claim], window_only)
    assert paired(conn) == set()


def test_an_old_fact_check_fetched_after_the_claim_finds_it(
    conn: psycopg.Connection, config: pairing.PairingConfig
) -> None:
    claim = stored(conn, "social", entry("claim", CLAIM, "", NOW))
    run(conn, [claim], config)
    assert paired(conn) == set()
    check = stored(conn, "factcheck", entry("check", CHECK_TITLE, CHECK_SUMMARY, YEARS_AGO))
    run(conn, [check], config)
    assert paired(conn) == {(CLAIM, "factcheck")}


def compared_with(conn: psycopg.Connection, claim: int, config: pairing.PairingConfig) -> set[int]:
    return set(claim_candidates.of(conn, config.model_version, [claim]).get(claim, []))


def pair_ids(conn: psycopg.Connection) -> set[tuple[int, int]]:
    rows = conn.execute("SELECT rumour_id, clarification_id FROM pairs").fetchall()
    return {(int(r), int(c)) for r, c in rows}


LATER_SUMMARY = (
    "Posts say a ten-metre anaconda swam across the Xingu river in Brazil. The video is "
    "miscaptioned: the snake is about five metres long."
)


def test_a_later_fact_check_scores_a_claim_among_what_the_claim_was_compared_with(
    conn: psycopg.Connection, config: pairing.PairingConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim keeps the fact-checks its own search found; one arriving later is scored
    from the claim's side among them, with no second search for the claim, and joins them."""
    check = stored(conn, "factcheck", entry("check", CHECK_TITLE, CHECK_SUMMARY, NOW))
    run(conn, [check], config)
    claim = stored(conn, "social", entry("claim", CLAIM, "", NOW))
    run(conn, [claim], config)
    assert compared_with(conn, claim, config) == {check}

    searched: list[int] = []
    search = pairing.retrieve

    def counted(
        conn: psycopg.Connection, row: items.ItemForModel, *args: object, **kwargs: object
    ) -> dict[str, list[items.ItemForModel]]:
        searched.append(row.id)
        return search(conn, row, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pairing, "retrieve", counted)
    later = stored(conn, "official", entry("later", CHECK_TITLE, LATER_SUMMARY, NOW))
    run(conn, [later], config)
    assert searched == [later]
    assert (claim, later) in pair_ids(conn)
    assert compared_with(conn, claim, config) == {check, later}


def test_a_claim_that_kept_nothing_is_searched_for_once_then_kept(
    conn: psycopg.Connection, config: pairing.PairingConfig
) -> None:
    """As claims paired before migration 0021: the first fact-check to score one searches."""
    claim = stored(conn, "social", entry("claim", CLAIM, "", NOW))
    run(conn, [claim], config)
    conn.execute("DELETE FROM claim_candidates")
    check = stored(conn, "factcheck", entry("check", CHECK_TITLE, CHECK_SUMMARY, NOW))
    run(conn, [check], config)
    assert (claim, check) in pair_ids(conn)
    assert compared_with(conn, claim, config) == {check}


def test_an_official_statement_is_a_clarification_whatever_its_label(
    conn: psycopg.Connection, config: pairing.PairingConfig
) -> None:
    # Worded as a claim: the classifier alone would not call it a clarification.
    statement = stored(
        conn,
        "official",
        entry("st", "Ten-metre anaconda seen in the Xingu river, video shows", "", NOW),
    )
    run(conn, [statement], config)
    role = conn.execute(
        "SELECT label, kind FROM pairing_candidates WHERE item_id = %s", (statement,)
    ).fetchone()
    assert role == ("clarification", "official")


def test_the_archive_keeps_each_kind_as_long_as_configured(
    conn: psycopg.Connection, config: pairing.PairingConfig
) -> None:
    short = pairing.PairingConfig(
        config.model_version, 14, config.suggest_threshold, 1.01, 0.45, (("factcheck", 365),)
    )
    check = stored(conn, "factcheck", entry("check", CHECK_TITLE, CHECK_SUMMARY, YEARS_AGO))
    claim = stored(conn, "social", entry("claim", CLAIM, "", NOW))
    run(conn, [check], short)
    run(conn, [claim], short)
    assert paired(conn) == set()


RUSSIAN_CLAIM = "Вирусное видео: десятиметровая анаконда переплывает реку Шингу в Бразилии"


def test_a_claim_in_another_language_meets_its_fact_check_by_meaning(
    conn: psycopg.Connection, config: pairing.PairingConfig
) -> None:
    """No word of the Russian claim is in the English fact-check: only the vector channel
    brings it as a candidate, whichever vector column the server has (0018)."""
    check = stored(conn, "factcheck", entry("check", CHECK_TITLE, CHECK_SUMMARY, NOW))
    run(conn, [check], config)
    claim = stored(conn, "social", entry("claim", RUSSIAN_CLAIM, "", NOW))
    run(conn, [claim], config)
    assert paired(conn) == {(RUSSIAN_CLAIM, "factcheck")}


def test_vectors_are_stored_at_classification_in_the_column_the_server_offers(
    conn: psycopg.Connection, config: pairing.PairingConfig
) -> None:
    check = stored(conn, "factcheck", entry("check", CHECK_TITLE, CHECK_SUMMARY, NOW))
    run(conn, [check], config)
    [row] = items.for_model(conn, [check])
    assert row.embedding is not None and len(row.embedding) == embedder.DIM
    assert abs(sum(x * x for x in row.embedding) - 1) < 1e-3
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        has_pgvector = cur.fetchone() is not None
    assert vectors.column_type(conn) == ("vector" if has_pgvector else "real[]")


def test_a_copy_of_an_item_in_another_feed_is_given_the_vector_of_the_first(
    conn: psycopg.Connection, config: pairing.PairingConfig
) -> None:
    def fetched(key: str, summary: str) -> ParsedEntry:
        # As refresh stores an entry: with the fingerprint dedupe finds copies by.
        found = entry(key, CHECK_TITLE, summary, NOW)
        return replace(found, text_hash=text_fingerprint(CHECK_TITLE, summary))

    first = stored(conn, "factcheck", fetched("check", CHECK_SUMMARY))
    run(conn, [first], config)
    copy = stored(conn, "official", fetched("copy", CHECK_SUMMARY.upper()))
    reworded = stored(conn, "media", fetched("other", "A different summary of the same video."))
    [first_row, copy_row, reworded_row] = items.for_model(conn, [first, copy, reworded])
    assert first_row.embedding is not None and copy_row.embedding is not None
    assert list(copy_row.embedding) == list(first_row.embedding)
    assert reworded_row.embedding is None
