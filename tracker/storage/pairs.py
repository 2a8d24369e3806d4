"""Pairs of a rumour and a clarification, as suggested by the matcher and decided by analysts."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from tracker.storage.items import ITEM_FOR_MODEL, ItemForModel


@dataclass(frozen=True)
class PairView:
    id: int
    score: float
    status: str
    created_at: datetime
    explanation: dict[str, Any]
    rumour_id: int
    rumour_title: str
    rumour_summary: str
    rumour_url: str | None
    rumour_feed: str
    rumour_kind: str
    rumour_seen_at: datetime
    clarification_id: int
    clarification_title: str
    clarification_summary: str
    clarification_url: str | None
    clarification_feed: str
    clarification_kind: str
    clarification_seen_at: datetime
    story_id: int | None
    story_outlets: int


@dataclass(frozen=True)
class NewPair:
    rumour_id: int
    clarification_id: int
    score: float
    explanation: dict[str, Any]
    status: str  # suggested or confirmed


@dataclass(frozen=True)
class Added:
    id: int
    status: str


def upsert_many(
    conn: psycopg.Connection, new: Sequence[NewPair], scorer_version: str
) -> list[Added]:
    """Suggest (or auto-confirm) pairs in one statement; returns the new ones. A pair already
    stored, decided or not, is never reopened."""
    if not new:
        return []
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO pairs
                   (rumour_id, clarification_id, score, explanation, scorer_version, status)
               SELECT r, c, s, e, %s, st
               FROM unnest(%s::bigint[], %s::bigint[], %s::float8[], %s::jsonb[], %s::text[])
                   AS n(r, c, s, e, st)
               ON CONFLICT (rumour_id, clarification_id) DO NOTHING RETURNING id, status""",
            (
                scorer_version,
                [p.rumour_id for p in new],
                [p.clarification_id for p in new],
                [p.score for p in new],
                [Jsonb(p.explanation) for p in new],
                [p.status for p in new],
            ),
        )
        return [Added(id, status) for id, status in cur.fetchall()]


@dataclass(frozen=True)
class Candidate:
    label: str
    item: ItemForModel


# Candidates for pairing and for stories in one query: both labels share the text match, so
# the index is searched and the rows are read once. Only rumours and clarifications are
# searched, in the table classification fills (0016). `match` is the distinctive terms of the
# query item (chosen by the caller), looked up tagged with each week of the window in the index
# of week-tagged terms (0007), so the index yields only the window's items; the rank still
# weighs all the item's terms (`rank`): ts_rank, as ts_rank_cd costs ten times more per row
# and found no more items of the same event.
# Each label's best `limits` are kept exactly: every match is a rumour or clarification of the
# window that shares a distinctive term, so all of them are worth ranking (a pool ranked before
# the labels were read, as before 0016, could fill up with one label).
CANDIDATES = (
    """WITH weeks AS (
        SELECT DISTINCT item_week(day) AS week
        FROM unnest(%(arounds)s::timestamptz[]) a,
             generate_series(a - make_interval(days => %(days)s),
                             a + make_interval(days => %(days)s), interval '1 day') day
    ),
    match AS (
        -- The lexemes to_tsquery would make of the terms, each tagged with each week and
        -- quoted as tsquery input: a tagged lexeme must not be parsed again.
        SELECT string_agg(
                   chr(39)
                   || replace(replace(t.lexeme || '@' || w.week, chr(92), repeat(chr(92), 2)),
                              chr(39), repeat(chr(39), 2))
                   || chr(39),
                   ' | ')::tsquery AS q
        FROM unnest(to_tsvector('simple', %(match)s)) AS t, weeks w
    ),
    found AS (
        SELECT p.item_id AS id, p.label,
               row_number() OVER (
                   PARTITION BY p.label
                   ORDER BY ts_rank(p.tsv, to_tsquery('simple', %(rank)s)) DESC, p.item_id DESC
               ) AS n
        FROM pairing_candidates p
        WHERE p.item_id <> %(exclude)s
          AND item_week_terms(p.tsv, p.seen_at) @@ (SELECT q FROM match)
          AND p.model_version = %(version)s AND p.label = ANY(%(labels)s)
          -- Exact windows, checked on the rows found (the weeks overhang them).
          AND EXISTS (SELECT 1 FROM unnest(%(arounds)s::timestamptz[]) a
                      WHERE p.seen_at - a
                            BETWEEN -make_interval(days => %(days)s)
                                AND make_interval(days => %(days)s))
    )
    SELECT found.label, """
    + ITEM_FOR_MODEL.removeprefix("SELECT ")
    + """ JOIN found ON found.id = i.id
    WHERE found.n <= (%(limits)s::int[])[array_position(%(labels)s::text[], found.label)]
    ORDER BY found.label, found.n"""
)


def candidates(
    conn: psycopg.Connection,
    *,
    match_terms: Sequence[str],
    rank_terms: Sequence[str],
    limits: dict[str, int],
    model_version: str,
    arounds: Sequence[datetime],
    window_days: int,
    exclude_id: int,
) -> dict[str, list[ItemForModel]]:
    """Per label (pairing role) of `limits`, up to that many items with the label under
    `model_version` within `window_days` of one of `arounds` that share one of `match_terms`,
    best FTS rank over `rank_terms` first."""
    labels = list(limits)
    found: dict[str, list[ItemForModel]] = {label: [] for label in labels}
    if not match_terms:
        return found
    with conn.cursor(binary=True) as cur:
        # Never prepared: a generic plan, made without the terms and the window, took two to
        # four times longer than plans for the actual ones (psycopg prepares a query once it
        # has run five times on a connection).
        cur.execute(
            CANDIDATES,
            {
                "match": " ".join(match_terms),
                "rank": " | ".join(rank_terms),
                "labels": labels,
                "limits": [limits[label] for label in labels],
                "version": model_version,
                "exclude": exclude_id,
                "arounds": list(arounds),
                "days": window_days,
            },
            prepare=False,
        )
        for label, *columns in cur.fetchall():
            found[label].append(ItemForModel(*columns))
    return found


# Clarifications of the archived feed kinds outside the window, by a plain index of their
# terms (0017): each kind for as long as configured.
ARCHIVED = (
    """WITH match AS (
        SELECT string_agg(
                   chr(39)
                   || replace(replace(t.lexeme, chr(92), repeat(chr(92), 2)),
                              chr(39), repeat(chr(39), 2))
                   || chr(39),
                   ' | ')::tsquery AS q
        FROM unnest(to_tsvector('simple', %(match)s)) AS t
    ),
    found AS (
        SELECT p.item_id AS id
        FROM pairing_candidates p
        JOIN unnest(%(kinds)s::text[], %(days)s::int[]) AS a(kind, days) ON a.kind = p.kind
        WHERE p.label = 'clarification' AND p.tsv @@ (SELECT q FROM match)
          AND p.model_version = %(version)s AND p.item_id <> %(exclude)s
          AND p.seen_at >= %(around)s - make_interval(days => a.days)
          -- The window's own are found by the week-tagged index; the archive brings the
          -- older ones, and those published long after an old claim.
          AND NOT p.seen_at - %(around)s
              BETWEEN -make_interval(days => %(window)s) AND make_interval(days => %(window)s)
        ORDER BY ts_rank(p.tsv, to_tsquery('simple', %(rank)s)) DESC, p.item_id DESC
        LIMIT %(limit)s
    )
    """
    + ITEM_FOR_MODEL
    + " JOIN found ON found.id = i.id"
)


def archived_clarifications(
    conn: psycopg.Connection,
    *,
    match_terms: Sequence[str],
    rank_terms: Sequence[str],
    archive_days: Sequence[tuple[str, int]],
    model_version: str,
    around: datetime,
    window_days: int,
    exclude_id: int,
    limit: int,
) -> list[ItemForModel]:
    """Up to `limit` clarifications of the archived kinds (kind, days kept), outside the window
    around `around` and at most their days before it, sharing one of `match_terms`, best FTS
    rank first."""
    if not match_terms or not archive_days:
        return []
    with conn.cursor(row_factory=class_row(ItemForModel), binary=True) as cur:
        cur.execute(
            ARCHIVED,
            {
                "match": " ".join(match_terms),
                "rank": " | ".join(rank_terms),
                "kinds": [kind for kind, _ in archive_days],
                "days": [days for _, days in archive_days],
                "version": model_version,
                "exclude": exclude_id,
                "around": around,
                "window": window_days,
                "limit": limit,
            },
            prepare=False,
        )
        return cur.fetchall()


def term_frequencies(conn: psycopg.Connection) -> dict[str, float]:
    """The share of the items pairing searches (rumours and clarifications) containing each
    of the commonest words, from the planner's statistics (pg_stats, kept fresh by
    autovacuum; empty before the first ANALYZE)."""
    rows = conn.execute(
        """SELECT e.term, e.freq
           FROM pg_stats p,
                unnest(p.most_common_elems::text::text[], p.most_common_elem_freqs)
                    AS e(term, freq)
           WHERE p.schemaname = current_schema() AND p.tablename = 'pairing_candidates'
             AND p.attname = 'tsv'"""
    ).fetchall()
    # The array of frequencies ends with three summary figures: they pair with no term.
    return {str(term): float(freq) for term, freq in rows if term is not None}


def list_pairs(
    conn: psycopg.Connection,
    status: str | None = None,
    limit: int = 100,
    unreviewed: bool = False,
    sample_seed: str | None = None,
) -> list[PairView]:
    """Pairs, best score first, newest first among equals. `unreviewed`: only pairs no analyst
    has decided (with status confirmed: those confirmed automatically). `sample_seed`: instead
    of the best, a random sample, the same for the same seed (a day's spot-check)."""
    with conn.cursor(row_factory=class_row(PairView)) as cur:
        cur.execute(
            """SELECT p.id, p.score, p.status, p.created_at, p.explanation,
                   r.id AS rumour_id, r.title AS rumour_title, r.summary AS rumour_summary,
                   r.url AS rumour_url, coalesce(rf.title, rf.host) AS rumour_feed,
                   rf.kind AS rumour_kind,
                   coalesce(r.published_at, r.fetched_at) AS rumour_seen_at,
                   c.id AS clarification_id, c.title AS clarification_title,
                   c.summary AS clarification_summary, c.url AS clarification_url,
                   coalesce(cf.title, cf.host) AS clarification_feed,
                   cf.kind AS clarification_kind,
                   coalesce(c.published_at, c.fetched_at) AS clarification_seen_at,
                   r.story_id,
                   (SELECT count(DISTINCT s.feed_id) FROM items s
                     WHERE s.story_id = r.story_id)::int AS story_outlets
               FROM pairs p
               JOIN items r ON r.id = p.rumour_id JOIN feeds rf ON rf.id = r.feed_id
               JOIN items c ON c.id = p.clarification_id JOIN feeds cf ON cf.id = c.feed_id
               WHERE (%(status)s::text IS NULL OR p.status = %(status)s)
                 AND (NOT %(unreviewed)s OR NOT EXISTS (SELECT 1 FROM reviews v
                                                       WHERE v.pair_id = p.id
                                                         AND v.undone_at IS NULL))
               ORDER BY CASE WHEN %(seed)s::text IS NOT NULL
                             THEN md5(p.id::text || %(seed)s) END,
                        p.score DESC, p.created_at DESC, p.id DESC
               LIMIT %(limit)s""",
            {"status": status, "limit": limit, "unreviewed": unreviewed, "seed": sample_seed},
        )
        return cur.fetchall()


def clarified(conn: psycopg.Connection, story_id: int | None, item_id: int | None) -> bool:
    """Whether a confirmed pair already answers the story (any of its rumours) or the item."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT EXISTS (SELECT 1 FROM pairs p JOIN items r ON r.id = p.rumour_id
                              WHERE p.status = 'confirmed'
                                AND (r.story_id = %s OR r.id = %s))""",
            (story_id, item_id),
        )
        row = cur.fetchone()
        return bool(row and row[0])


def spread_to_stories(conn: psycopg.Connection, item_ids: Sequence[int]) -> list[int]:
    """Pair each clarification of a story's rumour with every rumour of that story, so the
    story is answered for every outlet that carried it. Touches the stories of `item_ids`
    and of the rumours paired with them; returns the ids of the pairs added (suggested)."""
    with conn.cursor() as cur:
        cur.execute(
            """WITH touched AS (
                   SELECT story_id FROM items
                   WHERE id = ANY(%(ids)s) AND story_id IS NOT NULL
                   UNION
                   SELECT r.story_id FROM pairs p JOIN items r ON r.id = p.rumour_id
                   WHERE p.clarification_id = ANY(%(ids)s) AND r.story_id IS NOT NULL)
               INSERT INTO pairs
                   (rumour_id, clarification_id, score, explanation, scorer_version, status)
               SELECT DISTINCT ON (i.id, p.clarification_id)
                      i.id, p.clarification_id, p.score,
                      jsonb_build_object('via_story', r.story_id,
                                         'shared_terms', p.explanation -> 'shared_terms'),
                      p.scorer_version, 'suggested'
               FROM pairs p
               JOIN items r ON r.id = p.rumour_id
               JOIN touched t ON t.story_id = r.story_id
               JOIN items i ON i.story_id = r.story_id AND i.id <> r.id
               WHERE p.status <> 'rejected'
               ORDER BY i.id, p.clarification_id, p.score DESC
               ON CONFLICT (rumour_id, clarification_id) DO NOTHING
               RETURNING id""",
            {"ids": list(item_ids)},
        )
        return [row[0] for row in cur.fetchall()]
