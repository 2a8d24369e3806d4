"""Classification and pairing stages on the demo newsroom, in process against PostgreSQL."""

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from classifiers import context
from tracker.demo import FEEDS_DIR
from tracker.domain import ParsedEntry, Prediction, pairing_role
from tracker.ingest.parse import parse
from tracker.pipeline import classify, pairing
from tracker.pipeline.model_registry import ensure_models, item_classifier, pair_scorer
from tracker.storage import classifications, feeds, items, outbox, pairs


@pytest.fixture
def demo_items(conn: psycopg.Connection, shipped_models: None) -> list[int]:
    ids: list[int] = []
    for entry in json.loads((FEEDS_DIR / "manifest.json").read_text()):
        new = feeds.NewFeed(
            f"http://demo.example/{entry['file']}", entry["kind"], entry["title"], entry["language"]
        )
        feed, _ = feeds.add(conn, new)
        parsed = parse((FEEDS_DIR / entry["file"]).read_bytes())
        ids += items.upsert(conn, feed.id, parsed.entries)
    return ids


def run_stages(conn: psycopg.Connection, item_ids: list[int]) -> int:
    classify.classify_items(conn, item_ids, 0.5, "http://t.example", 0.0)
    config = pairing.PairingConfig(item_classifier(conn).version, 14, 0.5, 1.01, 0.45)
    return pairing.pair_items(conn, item_ids, pair_scorer(conn), config)


def test_the_demo_rumour_is_paired_with_the_ministry_clarification(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    run_stages(conn, demo_items)
    found = pairs.list_pairs(conn)
    f16 = [p for p in found if "F-16" in p.rumour_title and p.clarification_kind == "official"]
    assert f16, [(p.rumour_title, p.clarification_title) for p in found]
    assert all(p.status == "suggested" and 0 < p.score <= 1 for p in found)
    assert "f-16" in " ".join(f16[0].explanation["shared_terms"]) or any(
        "16" in term for term in f16[0].explanation["shared_terms"]
    )


def test_no_pair_joins_two_unrelated_stories(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    run_stages(conn, demo_items)
    for p in pairs.list_pairs(conn, limit=1000):
        water = ("Valea Verde" in p.rumour_title) or ("apei" in p.rumour_title)
        assert not (water and "F-16" in p.clarification_title), p


def test_running_the_stages_twice_changes_nothing(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    run_stages(conn, demo_items)
    counts = [
        conn.execute(f"SELECT count(*) FROM {t}").fetchone()
        for t in ("classifications", "pairs", "stories", "alert_outbox")
    ]
    assert run_stages(conn, demo_items) == 0
    assert counts == [
        conn.execute(f"SELECT count(*) FROM {t}").fetchone()
        for t in ("classifications", "pairs", "stories", "alert_outbox")
    ]


def test_rumours_repeated_by_several_outlets_form_one_story(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    run_stages(conn, demo_items)
    row = conn.execute("""SELECT count(DISTINCT i.feed_id) FROM items i
                          WHERE i.story_id IS NOT NULL AND i.title LIKE '%F-16%'""").fetchone()
    assert row is not None and row[0] >= 3


def test_the_english_and_romanian_copies_of_the_rumour_are_one_story(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    """The Romanian outlets' copies share few words with the English ones: they join the story
    by meaning (pairing.STORY_TRANSLATION_COSINE)."""
    run_stages(conn, demo_items)
    rows = conn.execute("""SELECT i.story_id, coalesce(i.language, f.language)
                           FROM items i JOIN feeds f ON f.id = i.feed_id
                           JOIN classifications c ON c.item_id = i.id AND c.label = 'rumour'
                           WHERE i.title LIKE '%F-16%' OR i.title LIKE '%Ucrain%'""").fetchall()
    assert {language for _, language in rows} >= {"en", "ro"}, rows
    assert len({story for story, _ in rows}) == 1 and rows[0][0] is not None, rows


def test_a_subscriber_gets_one_alert_per_matching_rumour(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    outbox.subscribe(conn, "desk@example.org", ["valea verde"], 0.5)
    run_stages(conn, demo_items)
    rows = conn.execute("SELECT recipient, subject FROM alert_outbox").fetchall()
    assert rows and all(r[0] == "desk@example.org" for r in rows)
    assert all("Valea Verde" in r[1] for r in rows)


def test_a_clarification_pairs_with_every_outlet_of_the_story(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    run_stages(conn, demo_items)
    found = pairs.list_pairs(conn, limit=1000)
    stories = {p.story_id for p in found if p.story_id is not None and "F-16" in p.rumour_title}
    assert stories, [(p.rumour_title, p.story_id) for p in found]
    for story in stories:
        rows = conn.execute("SELECT id FROM items WHERE story_id = %s", (story,)).fetchall()
        members = {r[0] for r in rows}
        assert len(members) > 1
        answered = {p.clarification_id for p in found if p.story_id == story}
        for clarification in answered:
            paired = {p.rumour_id for p in found if p.clarification_id == clarification}
            assert members <= paired, (story, clarification)


def test_pairing_searches_every_item_with_a_pairing_role_as_that_role(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    run_stages(conn, demo_items)
    searched = {
        row[0]: (row[1], row[2])
        for row in conn.execute("SELECT item_id, label, kind FROM pairing_candidates")
    }
    rows = conn.execute(
        """SELECT c.item_id, c.label, c.probabilities, f.kind FROM classifications c
           JOIN items i ON i.id = c.item_id JOIN feeds f ON f.id = i.feed_id"""
    ).fetchall()
    expected = {
        item_id: (role, kind)
        for item_id, label, probabilities, kind in rows
        if (role := pairing_role(kind, Prediction(label, 1.0, probabilities), 0.0)) is not None
    }
    assert searched == expected
    assert {role for role, _ in searched.values()} == {"rumour", "clarification"}
    assert {kind for role, kind in searched.values() if role == "clarification"} >= {
        "official",
        "factcheck",
    }


def test_an_edited_rumour_is_found_by_its_new_words(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    run_stages(conn, demo_items)
    row = conn.execute(
        """SELECT i.id, i.feed_id, i.dedupe_key, i.published_at FROM items i
           JOIN pairing_candidates p ON p.item_id = i.id AND p.label = 'rumour' LIMIT 1"""
    ).fetchone()
    assert row is not None
    item_id, feed_id, key, published_at = row
    version = item_classifier(conn).version

    def found() -> list[int]:
        got = pairs.candidates(
            conn,
            match_terms=["zorblaxite"],
            rank_terms=["zorblaxite"],
            limits={"rumour": 5},
            model_version=version,
            arounds=[published_at],
            window_days=14,
            exclude_id=0,
        )
        return [c.id for c in got["rumour"]]

    assert found() == []
    edited = ParsedEntry(
        dedupe_key=key,
        guid=None,
        url=None,
        title="Zorblaxite spotted at the air base",
        summary="Witnesses describe zorblaxite crates.",
        language="en",
        published_at=published_at,
        content_hash="edited",
    )
    assert items.upsert(conn, feed_id, [edited]) == [item_id]
    assert found() == [item_id]


def _entry(key: str, title: str, published_at: datetime) -> ParsedEntry:
    return ParsedEntry(
        dedupe_key=key,
        guid=None,
        url=None,
        title=title,
        summary="",
        language="en",
        published_at=published_at,
        content_hash=key,
    )


def test_an_item_is_classified_in_the_context_of_similar_stored_items(
    conn: psycopg.Connection,
) -> None:
    ensure_models(conn)
    model = item_classifier(conn)
    feed, _ = feeds.add(conn, feeds.NewFeed("http://wave.example/feed", "social", "Wave", "en"))
    now = datetime.now(UTC)
    wave = "Zorblax tanker convoy seen on the road to Galati port at night"
    earlier = items.upsert(
        conn,
        feed.id,
        [_entry(f"wave-{n}", f"{wave} ({n})", now - timedelta(hours=n)) for n in (3, 2, 1)]
        + [_entry("stale", wave, now - context.WINDOW - timedelta(hours=1))],
    )
    # Stored by another model version: the context outlives a model switch.
    sure = Prediction("rumour", 0.95, {"rumour": 0.95, "clarification": 0.01, "other": 0.04})
    classifications.insert(conn, "an-earlier-model", [(i, sure, "rumour") for i in earlier])
    [new, unrelated] = items.upsert(
        conn,
        feed.id,
        [
            _entry("new", f"{wave}, again", now),
            _entry("bread", "Bakeries in Cluj raise bread prices after a flour tax", now),
        ],
    )
    rows = {row.id: row for row in items.for_model(conn, [new, unrelated])}
    texts = {i: classify.to_model_text(row) for i, row in rows.items()}
    own = {i: model.predict([t])[0] for i, t in texts.items()}
    query = classifications.ContextQuery(new, ["zorblax"], "en", now)
    window = context.WINDOW.total_seconds()
    found_ids = {row.id for row, _ in classifications.context(conn, [query], window, 40)}
    assert found_ids == set(earlier[:3])  # not the stale one, nor the new items themselves
    [found] = classify.in_context(conn, [rows[new]], [texts[new]], [own[new]])
    assert found.probabilities["rumour"] > own[new].probabilities["rumour"] + 0.2, (own, found)

    classify.classify_items(conn, [new, unrelated], 1.1, None)
    stored = classifications.labels(conn, model.version, [new, unrelated])
    assert stored[new] == ("rumour", pytest.approx(found.probability, abs=1e-4))
    assert stored[unrelated][1] == pytest.approx(own[unrelated].probability, abs=1e-4)
