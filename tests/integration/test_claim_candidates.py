"""What claims were compared with (storage.claim_candidates, 0021), against PostgreSQL."""

from datetime import UTC, datetime

import psycopg

from tests.factories import entry
from tracker.storage import claim_candidates, feeds, items

VERSION = "v1"


def candidates(conn: psycopg.Connection, count: int) -> list[int]:
    """Stored items, each a candidate of pairing under VERSION (the first a claim)."""
    feed, _ = feeds.add(conn, feeds.NewFeed("http://social.example/feed", "social", "s", "en"))
    now = datetime.now(UTC)
    ids = items.upsert(conn, feed.id, [entry(f"k{n}", f"Title {n}", "", now) for n in range(count)])
    conn.execute(
        """INSERT INTO classifications (item_id, model_version, label, probability)
           SELECT id, %s, 'rumour', 0.9 FROM unnest(%s::bigint[]) AS id""",
        (VERSION, ids),
    )
    conn.execute(
        """INSERT INTO pairing_candidates (item_id, model_version, label, kind, seen_at, tsv)
           SELECT id, %s, 'rumour', 'social', now(), ''::tsvector
           FROM unnest(%s::bigint[]) AS id""",
        (VERSION, ids),
    )
    return ids


def test_extend_keeps_order_adds_each_id_once_and_drops_the_earliest_past_the_limit(
    conn: psycopg.Connection,
) -> None:
    [claim] = candidates(conn, 1)
    claim_candidates.extend(conn, VERSION, {claim: [5, 3]})
    claim_candidates.extend(conn, VERSION, {claim: [3, 9]})
    assert claim_candidates.of(conn, VERSION, [claim]) == {claim: [5, 3, 9]}
    many = list(range(1000, 1000 + claim_candidates.KEPT))
    claim_candidates.extend(conn, VERSION, {claim: many})
    assert claim_candidates.of(conn, VERSION, [claim]) == {claim: many}


def test_each_version_keeps_its_own(conn: psycopg.Connection) -> None:
    [claim] = candidates(conn, 1)
    claim_candidates.extend(conn, VERSION, {claim: [5, 3]})
    assert claim_candidates.of(conn, "another version", [claim]) == {}


def test_a_deleted_claim_takes_what_it_kept_with_it(conn: psycopg.Connection) -> None:
    claim, other = candidates(conn, 2)
    claim_candidates.extend(conn, VERSION, {claim: [other], other: [claim]})
    conn.execute("DELETE FROM items WHERE id = %s", (claim,))
    assert claim_candidates.of(conn, VERSION, [claim, other]) == {other: [claim]}


def test_only_stored_clarifications_of_the_version_are_read_back(conn: psycopg.Connection) -> None:
    claim, clarification, gone = candidates(conn, 3)
    conn.execute(
        "UPDATE pairing_candidates SET label = 'clarification' WHERE item_id = ANY(%s)",
        ([clarification, gone],),
    )
    conn.execute("DELETE FROM items WHERE id = %s", (gone,))
    found = claim_candidates.clarifications(conn, VERSION, [claim, clarification, gone, 10**9])
    assert [c.id for c in found] == [clarification]
