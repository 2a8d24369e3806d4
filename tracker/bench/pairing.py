"""`tracker bench pairing`: item classification throughput on one core, and pairing latency per
new item against N/10 and then N stored items (with their classifications) loaded with COPY."""

import contextlib
import hashlib
import itertools
import multiprocessing
import os
import random
import resource
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from threadpoolctl import threadpool_limits

from classifiers import embedder, vector_cache
from tracker.bench.corpus import bench_database, target
from tracker.bench.vector_shapes import (
    CHUNK,
    COPY_SIGNATURE,
    COPY_TRAILER,
    HNSW_MEMORY,
    EventVectors,
    id_vector_rows,
)
from tracker.config import Settings
from tracker.domain import (
    DEFAULT_CLAIM_MIN_RUMOUR as CLAIM_MIN,
)
from tracker.domain import (
    ParsedEntry,
    Prediction,
    TextForModel,
    pairing_role,
)
from tracker.ingest.dedupe import text_fingerprint
from tracker.pipeline import classify, pairing
from tracker.pipeline.model_registry import item_classifier, pair_scorer
from tracker.storage import classifications, feeds, items, vectors

END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
LABELS = ("rumour", "clarification", "other")
LABEL_WEIGHTS = (0.3, 0.2, 0.5)
WARMUP_ITEMS = 10
CLASSIFY_BATCH = 100
# Texts embedded to time the sentence embedder: at about 40 ms each, embedding all of the
# classification pass's items would take the bench a quarter of an hour.
EMBED_SAMPLE = 256
# Feeds by kind, and which kinds carry each label: rumours travel on social and media feeds,
# clarifications come from officials, fact-checkers and media.
FEED_MIX = {"social": 20, "media": 24, "official": 8, "factcheck": 6, "other": 6}
KINDS_FOR = {
    "rumour": ("social", "media"),
    "clarification": ("official", "factcheck", "media"),
    "other": ("media", "other", "official", "social"),
}

# fmt: off
SUBJECTS = (
    "fighter jets", "tanks", "drones", "reservists", "fuel trucks", "air defence systems",
    "troops", "warships", "helicopters", "artillery units", "missiles", "border guards",
    "refugees", "vaccines", "hospital beds", "power cuts", "water supplies", "bread prices",
    "fuel prices", "pensions", "salaries", "ballots", "polling stations", "bank deposits",
    "schools", "bridges", "railway lines", "ferries", "flights", "gas deliveries",
    "grain exports", "evacuation orders", "curfews", "conscription notices",
    "ammunition depots", "medical supplies", "food aid", "checkpoints", "mobile networks",
)
VERBS = (
    "moved to", "spotted near", "deployed to", "seized in", "destroyed near", "withdrawn from",
    "sent to", "stockpiled in", "banned in", "cancelled in", "halted near", "doubled in",
    "cut off in", "evacuated from", "attacked near", "confiscated in", "rationed in",
    "suspended in", "shipped through", "hidden near",
)
ACTORS = (
    "The defence ministry", "The health ministry", "Border police", "The county prefecture",
    "The general staff", "The interior ministry", "The energy regulator", "The central bank",
    "The electoral commission", "The mayor's office", "The national police",
    "The emergency services", "The transport ministry", "The government spokesperson",
)
TOPICS = (
    "football", "tourism", "education", "farming", "wine", "culture", "housing", "transport",
    "healthcare", "jobs", "technology", "music", "cycling", "fishing", "film", "heritage",
    "recycling", "theatre", "basketball", "science",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_PLACE_HEADS_TEXT = (
    "Bor Val Dob Cra Mir Tul Sir Zal Pet Nov Bra Gal Vas Lug Cer Hot Ram Tar Sib Alb Ors Dej "
    "Mag Fag Rad Sla Ves Pod Kam Zhy Lun Bis Cal Dor Fel Gor Iza Jib Lip Mor"
)
PLACE_HEADS = tuple(_PLACE_HEADS_TEXT.split())
_PLACE_TAILS_TEXT = (
    "esti ova ani grad ovo iu eni ca ita ava ok in ovka ets ar ul ea ari ovca ovsk ani uta "
    "eni ilo una"
)
PLACE_TAILS = tuple(_PLACE_TAILS_TEXT.split())
_FILLER_TEXT = (
    "officials residents local regional government week report police city county people "
    "country statement public security army weekend morning evening night area border road "
    "village town market prices energy water health school election council minister power "
    "service workers families children support plan budget project crisis meeting agency "
    "national international emergency response investigation community hospital company "
    "industry trade growth inflation economy funds contract tender court judge prosecutor "
    "protest strike union farmers drivers teachers doctors nurses patients students voters "
    "candidates party opposition coalition parliament law decree measure restrictions "
    "inspection checks traffic accident fire storm flood drought harvest winter summer "
    "spring autumn weather forecast temperatures snow rain heat wind damage repairs works "
    "construction station airport port railway highway bridge tunnel district capital "
    "centre north south east west coast mountains river lake forest cameras footage images "
    "photos video posts channel account followers messages group users platform website "
    "broadcast interview journalists reporters editors newspaper television radio online"
)
FILLER = tuple(_FILLER_TEXT.split())
# Titles and summaries combine freely; many phrasings keep any one stock phrase in a few
# percent of items, as in real feeds.
RUMOUR = (
    (
        "Sources say {n} {s} were {v} {p}",
        "Unconfirmed posts claim {s} {v} {p}",
        "Video circulating online reportedly shows {s} {v} {p}",
        "Leaked memo allegedly orders {s} {v} {p}",
        "Insiders claim {n} {s} secretly {v} {p}",
        "Is it true that {s} were {v} {p}?",
        "Viral message warns {s} will be {v} {p}",
        "{p}: residents say {n} {s} {v} overnight",
        "Anonymous channel alleges {s} {v} {p}",
        "Screenshots suggest {n} {s} quietly {v} {p}",
        "Rumour grows that {s} {v} {p} before {d}",
        "Blogger insists {s} were {v} {p}",
    ),
    (
        "Messages shared on Telegram allege that {n} {s} were {v} {p} on {d}. {f}",
        "A post citing unnamed sources says {s} {v} {p}; the photos cannot be checked. {f}",
        "Footage posted on {d} purports to show {n} {s} {v} {p}. {f}",
        "A scanned page appears to order {n} {s} {v} {p}. {f}",
        "Two people familiar with the plans say {s} {v} {p} by {d}. {f}",
        "Nobody has confirmed the story, which spread quickly in local groups. {f}",
        "The account, created last month, gave no evidence for {n} {s} {v} {p}. {f}",
        "Users forwarded the claim thousands of times within hours. {f}",
    ),
)
CLARIFICATION = (
    (
        "{a} denies reports that {s} were {v} {p}",
        "Fact check: no evidence {n} {s} were {v} {p}",
        "{a} says claims about {s} {v} {p} are false",
        "Clarification: {s} were not {v} {p}",
        "No, {n} {s} were not {v} {p}",
        "{a} rejects story of {s} {v} {p}",
        "Debunked: the photo of {s} {v} {p} is old",
        "Misleading posts about {s} in {p}, {a} warns",
        "Officials: reports of {s} {v} {p} untrue",
        "What we know about the {s} claim from {p}",
    ),
    (
        "In a statement on {d}, {a} said posts about {n} {s} {v} {p} are fake. {f}",
        "Claims that {s} were {v} {p} are misleading; the images date from another year. {f}",
        "The ministry asked people not to share the rumour about {s} {v} {p}. {f}",
        "{a} clarified on {d} that no {s} were {v} {p}. {f}",
        "Our reporters found the video was filmed elsewhere. {f}",
        "A spokesperson called the story about {n} {s} a fabrication. {f}",
        "Satellite images and records contradict the claim. {f}",
    ),
)
OTHER = (
    (
        "{p} council approves {n} million budget for {t}",
        "{a} announces new {t} schedule for {p}",
        "Heavy rain expected in {p} on {d}",
        "{p} hosts regional {t} fair with {n} exhibitors",
        "Local team from {p} wins {t} cup",
        "Roadworks on the {p} bypass to last {n} days",
        "{p} opens new {t} centre",
        "Interview: the {t} teacher who moved to {p}",
        "{n} jobs at risk as {p} factory cuts shifts",
        "{p} celebrates {n} years of {t} festival",
        "Prices of {t} tickets rise in {p}",
        "{p} mayor presents {t} plan",
    ),
    ("{f} {f}", "Residents of {p} {f}", "{f} Details on {d}.", "{f} More in {p}."),
)
# fmt: on
TEMPLATES = {"rumour": RUMOUR, "clarification": CLARIFICATION, "other": OTHER}
PLACES = tuple(dict.fromkeys(h + t for h, t in itertools.product(PLACE_HEADS, PLACE_TAILS)))


SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou")
# Filler: common news words first, then made-up words for the long tail of a real vocabulary.
WORDS = FILLER + tuple(
    random.Random(0).sample(["".join(s) for s in itertools.product(SYLLABLES, repeat=3)], 50_000)  # noqa: S311
)


def _zipf(n: int, shift: int) -> list[float]:
    """Cumulative Zipf-Mandelbrot weights: a few words everywhere, most rare. The shift flattens
    the head so the commonest filler word is in about a tenth of the items, as in real news
    (CheckThat! fact-checks: "president" in 14%)."""
    return list(itertools.accumulate(1 / (rank + shift) for rank in range(n)))


PLACE_WEIGHTS, WORD_WEIGHTS = _zipf(len(PLACES), 5), _zipf(len(WORDS), 30)


@dataclass(frozen=True)
class Event:
    subject: str
    verb: str
    place: str
    number: int
    actor: str


@dataclass(frozen=True)
class Generated:
    label: str
    title: str
    summary: str
    seen_at: datetime
    # Which event a rumour or clarification is about: items of one event belong together.
    event: str | None
    event_index: int  # in the corpus's events; -1 for none


class Corpus:
    """Headlines about events spread over a year: rumours about an event within a day of it,
    clarifications of it within five days, and unrelated local news."""

    def __init__(self, seed: int, n_events: int, item_seed: int | None = None):
        rng = random.Random(seed)  # noqa: S311 - repeatable text, not secrets
        self.seed = seed
        self.item_seed = seed if item_seed is None else item_seed
        self.events = [
            Event(
                rng.choice(SUBJECTS),
                rng.choice(VERBS),
                rng.choices(PLACES, cum_weights=PLACE_WEIGHTS)[0],
                rng.randint(2, 500),
                rng.choice(ACTORS),
            )
            for _ in range(max(n_events, 10))
        ]
        self.rng = random.Random(self.item_seed)  # noqa: S311

    def item(self, fraction: float, label: str | None = None) -> Generated:
        """An item seen at `fraction` of the year (0 oldest, 1 newest)."""
        rng = self.rng
        label = label or rng.choices(LABELS, LABEL_WEIGHTS)[0]
        lag_days = {"rumour": 1.0, "clarification": 5.0}.get(label, 0.0)
        position = fraction - rng.random() * lag_days / SPAN.days
        index = min(max(int(position * len(self.events)), 0), len(self.events) - 1)
        event = self.events[index]
        titles, summaries = TEMPLATES[label]
        title, summary = rng.choice(titles), rng.choice(summaries)
        words = {
            "s": event.subject,
            "v": event.verb,
            "p": event.place if label != "other" else self._place(),
            "n": event.number if label != "other" else rng.randint(2, 90),
            "a": event.actor,
            "d": rng.choice(DAYS),
            "t": rng.choice(TOPICS),
            "f": " ".join(rng.choices(WORDS, cum_weights=WORD_WEIGHTS, k=10)).capitalize(),
        }
        return Generated(
            label,
            title.format(**words),
            summary.format(**words) + ".",
            END - SPAN + SPAN * fraction,
            f"event-{self.seed}-{index}" if label != "other" else None,
            index if label != "other" else -1,
        )

    def _place(self) -> str:
        return self.rng.choices(PLACES, cum_weights=PLACE_WEIGHTS)[0]


@dataclass(frozen=True)
class Feeds:
    by_kind: dict[str, list[int]]

    def for_label(self, rng: random.Random, label: str) -> int:
        return rng.choice(self.by_kind[rng.choice(KINDS_FOR[label])])


def add_feeds(conn: psycopg.Connection) -> Feeds:
    new = [
        feeds.NewFeed(url=f"https://{kind}{n}.example/feed.xml", kind=kind, language="en")
        for kind, count in FEED_MIX.items()
        for n in range(count)
    ]
    with conn.transaction():
        feeds.add_many(conn, new, poll_interval_s=900)
    return _stored_feeds(conn)


def _secondary_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Indexes of items, classifications and pairing candidates that back no constraint:
    dropped for the load and built again afterwards, as a bulk load is done."""
    return [
        (str(name), str(definition))
        for name, definition in conn.execute(
            """SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
               WHERE t.relname IN ('items', 'classifications', 'pairing_candidates')
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"""
        ).fetchall()
    ]


def load(
    conn: psycopg.Connection, feeds_: Feeds, model_version: str, corpus: Corpus, count: int
) -> None:
    """COPY `count` items spread over the year, with their classifications, then rebuild the
    indexes and refresh statistics as autovacuum would."""
    row = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM items").fetchone()
    first = int(row[0]) if row else 1
    labels = bytearray(count)
    kinds = [""] * count
    events = np.empty(count, dtype=np.int64)
    kind_of = {f: kind for kind, ids in feeds_.by_kind.items() for f in ids}
    indexes = _secondary_indexes(conn)
    with conn.transaction(), conn.cursor() as cur:
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        with cur.copy(
            """COPY items (id, feed_id, dedupe_key, guid, url, title, summary, language,
                           published_at, fetched_at, content_hash) FROM STDIN"""
        ) as copy:
            for i in range(count):
                g = corpus.item((i + corpus.rng.random()) / count)
                feed_id = feeds_.for_label(corpus.rng, g.label)
                labels[i] = LABELS.index(g.label)
                kinds[i] = kind_of[feed_id]
                events[i] = g.event_index
                key = f"bench-{first + i}"
                copy.write_row(
                    (first + i, feed_id, key, g.event, f"https://f{feed_id}.example/{key}",
                     g.title, g.summary, "en", g.seen_at, g.seen_at + timedelta(minutes=5), key)
                )  # fmt: skip
        with cur.copy(
            """COPY classifications (item_id, model_version, label, probability, probabilities)
               FROM STDIN"""
        ) as copy:
            roles: dict[int, str] = {}
            for i, code in enumerate(labels):
                # The whole distribution, as the workers store it: the context of later items
                # reads it (classifiers/context.py).
                top = round(0.5 + corpus.rng.random() / 2, 4)
                spread = {label: round((1 - top) / 2, 4) for label in LABELS}
                spread[LABELS[code]] = top
                copy.write_row((first + i, model_version, LABELS[code], top, Jsonb(spread)))
                role = pairing_role(kinds[i], Prediction(LABELS[code], top, spread), CLAIM_MIN)
                if role is not None:
                    roles[first + i] = role
        classifications.add_pairing_candidates(conn, model_version, roles)
        with_role = np.fromiter(roles, dtype=np.int64, count=len(roles))
        _load_vectors(cur, model_version, with_role, events[with_role - first], corpus)
        cur.execute("SELECT setval(pg_get_serial_sequence('items', 'id'), max(id)) FROM items")
        cur.execute(f"SET LOCAL maintenance_work_mem = '{HNSW_MEMORY}'")
        for _, definition in indexes:
            cur.execute(definition)
    conn.execute("VACUUM ANALYZE items, classifications, pairing_candidates")


def _load_vectors(
    cur: psycopg.Cursor, model_version: str, ids: np.ndarray, events: np.ndarray, corpus: Corpus
) -> None:
    """Sentence vectors for the loaded candidates, as classification stores them, shaped like
    the encoder's (vector_shapes): embedding a million texts would take it most of a day here.
    Copied into a staging table, then set in one UPDATE."""
    pgvector = vectors.column_type(cur.connection) == "vector"
    column = "vector" if pgvector else "real[]"
    cur.execute(f"CREATE TEMP TABLE bench_vectors (item_id bigint, embedding {column})")
    shapes = EventVectors(corpus.seed, len(corpus.events))
    with cur.copy("COPY bench_vectors FROM STDIN (FORMAT binary)") as copy:
        copy.write(COPY_SIGNATURE)
        for start in range(0, len(ids), CHUNK):
            part = slice(start, start + CHUNK)
            copy.write(id_vector_rows(ids[part], shapes.of(events[part]), pgvector))
        copy.write(COPY_TRAILER)
    cur.execute(
        """UPDATE pairing_candidates p SET embedding = s.embedding FROM bench_vectors s
           WHERE p.item_id = s.item_id AND p.model_version = %s""",
        (model_version,),
    )
    cur.execute("DROP TABLE bench_vectors")


@dataclass(frozen=True)
class Inserted:
    ids: list[int]
    # Milliseconds per item of each classify-stage call (model, context of similar earlier
    # items, storing), by the items of that call.
    classify_ms_per_item: list[float]


def insert_new(
    conn: psycopg.Connection, feeds_: Feeds, corpus: Corpus, count: int, model_version: str
) -> Inserted:
    """Half rumours, half clarifications about stored events, inserted and classified as the
    workers do; seen inside the year so the whole ±14-day window holds stored items (the
    harder case: live items see only the days before them). Classification embeds their
    texts; their stored vectors are then replaced by ones shaped like the loaded items', about
    the same events, so the vector search finds what it would among real vectors."""
    by_feed: dict[int, list[ParsedEntry]] = {}
    event_of: dict[str, int] = {}
    for n in range(count):
        g = corpus.item(corpus.rng.uniform(0.1, 0.9), LABELS[n % 2])
        feed_id = feeds_.for_label(corpus.rng, g.label)
        key = f"new-{corpus.item_seed}-{n}"
        event_of[key] = g.event_index
        by_feed.setdefault(feed_id, []).append(
            ParsedEntry(
                dedupe_key=key,
                guid=g.event,
                url=f"https://f{feed_id}.example/{key}",
                title=g.title,
                summary=g.summary,
                language="en",
                published_at=g.seen_at,
                content_hash=hashlib.sha256(f"{g.title}{g.summary}".encode()).hexdigest(),
                text_hash=text_fingerprint(g.title, g.summary),
            )
        )
    ids: list[int] = []
    timed: list[float] = []
    for feed_id, entries in by_feed.items():
        with conn.transaction():
            new_ids = items.upsert(conn, feed_id, entries)
        for start in range(0, len(new_ids), 50):
            batch = new_ids[start : start + 50]
            started = time.perf_counter()
            # Above any probability: a benchmark queues no alerts.
            classify.classify_items(conn, batch, 1.1, None)
            timed += [(time.perf_counter() - started) * 1000 / len(batch)] * len(batch)
        ids += new_ids
    keys = conn.execute("SELECT id, dedupe_key FROM items WHERE id = ANY(%s)", (ids,)).fetchall()
    shapes = EventVectors(corpus.seed, len(corpus.events))
    shaped = shapes.of(np.array([event_of[key] for _, key in keys], dtype=np.int64))
    with conn.transaction():
        vectors.store(conn, model_version, dict(zip((i for i, _ in keys), shaped, strict=True)))
    return Inserted(sorted(ids), timed)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    if len(values) == 1:
        values = [values[0]] * 2  # quantiles() needs two
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 2),
        "p95": round(cuts[94], 2),
        "p99": round(cuts[98], 2),
        "max": round(max(values), 2),
    }


@dataclass(frozen=True)
class Steps:
    retrieval_ms: float
    scoring_ms: float
    found: set[int]  # candidates of the other label


def _steps(
    conn: psycopg.Connection,
    row: items.ItemForModel,
    role: str,
    story: bool,
    scorer: pairing.PairScorer,
    version: str,
) -> Steps:
    """Retrieval and scoring of one item, timed apart: the query and scorers pairing ran for
    it (`story`: it also searched for and scored near-duplicate rumours, with the story
    scorer)."""
    config = _config(version)
    started = time.perf_counter()
    found = pairing.retrieve(conn, row, role, config, with_story=story)
    other = pairing.OTHER_LABEL[role]
    # The texts were just scored by the timed run: start from an empty cache, the worst case.
    with vector_cache.fresh_cache():
        retrieved = time.perf_counter()
        pairing.score_candidates(row, role == "rumour", found[other], scorer)
        if story:
            pairing.score_candidates(row, True, found["rumour"], pairing.STORY_SCORER)
        scored = time.perf_counter()
    return Steps(
        (retrieved - started) * 1000, (scored - retrieved) * 1000, {c.id for c in found[other]}
    )


def same_event_recall(conn: psycopg.Connection, found: dict[int, set[int]], version: str) -> float:
    """Of the items of the other label about the same event within the window, the share
    that retrieval found (averaged over new items that have any): what the speed may cost."""
    roles = classifications.roles(conn, version, list(found))
    other = {i: pairing.OTHER_LABEL[roles[i][0]] for i in found}
    window = _config(version).window_days
    rows = conn.execute(
        """SELECT n.id, o.id FROM unnest(%s::bigint[], %s::text[]) AS q(id, other)
           JOIN items n ON n.id = q.id
           JOIN items o ON o.guid = n.guid AND o.id <> n.id
           JOIN pairing_candidates c
             ON c.item_id = o.id AND c.model_version = %s AND c.label = q.other
           WHERE coalesce(o.published_at, o.fetched_at) - coalesce(n.published_at, n.fetched_at)
                 BETWEEN -make_interval(days => %s) AND make_interval(days => %s)""",
        (list(other), list(other.values()), version, window, window),
    ).fetchall()
    truth: dict[int, set[int]] = {}
    for item_id, related in rows:
        truth.setdefault(item_id, set()).add(related)
    shares = [len(found[i] & related) / len(related) for i, related in truth.items()]
    return round(statistics.mean(shares), 3) if shares else 0.0


def pairing_latency(
    conn: psycopg.Connection,
    feeds_: Feeds,
    config: pairing.PairingConfig,
    new: int,
    events: tuple[int, int],
) -> dict[str, Any]:
    """pair_items on one new item at a time, after an untimed warm-up; `events` is the seed
    and count of the events the last load wrote about."""
    stored = int((conn.execute("SELECT count(*) FROM items").fetchone() or (0,))[0])
    row = conn.execute(
        "SELECT count(*), count(embedding) FROM pairing_candidates WHERE model_version = %s",
        (config.model_version,),
    ).fetchone()
    candidates, with_vector = (int(row[0]), int(row[1])) if row else (0, 0)
    scorer = pair_scorer(conn)
    version = config.model_version
    warmup = insert_new(conn, feeds_, Corpus(*events, item_seed=-events[0]), WARMUP_ITEMS, version)
    for item_id in warmup.ids:
        pairing.pair_items(conn, [item_id], scorer, config)
    inserted = insert_new(conn, feeds_, Corpus(*events, item_seed=events[0] + 1), new, version)
    ids = inserted.ids
    roles = classifications.roles(conn, config.model_version, ids)
    remembered = remember_rescored_claims(
        conn, [i for i in ids if roles.get(i, ("", ""))[0] == "clarification"], config
    )
    timed: dict[str, list[float]] = {}
    steps: list[tuple[int, Steps]] = []
    created = 0
    rows = {row.id: row for row in items.for_model(conn, ids)}
    for item_id in ids:
        started = time.perf_counter()
        created += pairing.pair_items(conn, [item_id], scorer, config)
        elapsed = (time.perf_counter() - started) * 1000
        role, label = roles.get(item_id, ("", ""))
        if role:  # items with no pairing role are not paired: timing them flatters
            timed.setdefault(role, []).append(elapsed)
            # As pairing saw the item: before it, the item was in no story.
            story = pairing.joins_stories(rows[item_id], role, label)
            steps.append(
                (item_id, _steps(conn, rows[item_id], role, story, scorer, config.model_version))
            )
    return {
        "stored_items": stored,
        # Stored rumours and clarifications, and those with a sentence vector to search.
        "stored_candidates": {"rows": candidates, "with_vector": with_vector},
        "new_items": len(ids),
        "pairing_roles": dict(Counter(role for role, _ in roles.values())),
        "latency_ms": percentiles([ms for role in timed.values() for ms in role]),
        # A clarification also scores its best claims from their side: roles differ in cost.
        "latency_ms_by_role": {role: percentiles(ms) for role, ms in timed.items()},
        # Classifying the same new items beforehand, per item.
        "classify_stage_ms_per_item": percentiles(inserted.classify_ms_per_item),
        # The same steps again, apart: where the time goes.
        "retrieval_ms": percentiles([s.retrieval_ms for _, s in steps]),
        "scoring_ms": percentiles([s.scoring_ms for _, s in steps]),
        "same_event_recall": same_event_recall(
            conn, {i: s.found for i, s in steps}, config.model_version
        ),
        "pairs_created": created,
        # Loaded claims given, untimed, what they would have been compared with (see below).
        "claims_remembered": remembered,
    }


def remember_rescored_claims(
    conn: psycopg.Connection, clarification_ids: Sequence[int], config: pairing.PairingConfig
) -> int:
    """A claim a worker paired keeps what it was compared with (storage.claim_candidates), and
    a clarification arriving later scores it among those. Loaded claims were never paired: the
    claims about the new clarifications' events, within the window, are searched for and kept
    here, untimed, so the timed pairing meets them as a running tracker would (a best claim
    about another event is searched for while timed). Returns how many were searched."""
    rows = conn.execute(
        """SELECT DISTINCT c.item_id FROM items n
           JOIN items o ON o.guid = n.guid AND o.id <> n.id
           JOIN pairing_candidates c
             ON c.item_id = o.id AND c.model_version = %s AND c.label = 'rumour'
           WHERE n.id = ANY(%s)
             AND coalesce(o.published_at, o.fetched_at) - coalesce(n.published_at, n.fetched_at)
                 BETWEEN -make_interval(days => %s) AND make_interval(days => %s)""",
        (config.model_version, list(clarification_ids), config.window_days, config.window_days),
    ).fetchall()
    with conn.transaction():
        return pairing.remember_searches(conn, [int(r[0]) for r in rows], config)


@contextlib.contextmanager
def one_core() -> Iterator[bool]:
    """Pin every thread of this process to one CPU (and native pools to one thread)."""
    if not hasattr(os, "sched_setaffinity"):
        with threadpool_limits(limits=1):
            yield False
        return
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    before = {tid: os.sched_getaffinity(tid) for tid in tids}
    core = min(os.sched_getaffinity(0))
    for tid in tids:
        os.sched_setaffinity(tid, {core})
    try:
        with threadpool_limits(limits=1):
            yield True
    finally:
        for tid, cpus in before.items():
            with contextlib.suppress(OSError):  # a thread may have ended meanwhile
                os.sched_setaffinity(tid, cpus)


def classification_rate(conn: psycopg.Connection, n: int) -> dict[str, Any]:
    model = item_classifier(conn)
    corpus = Corpus(7, 1000)
    texts = []
    for i in range(n):
        g = corpus.item(i / n)
        kind = corpus.rng.choice(KINDS_FOR[g.label])
        texts.append(TextForModel(g.title, g.summary, kind, "en"))
    # The embedder is timed on a sample; the model then reads given vectors, as a worker's
    # model reads the vectors classification computed for it a moment before.
    with one_core():
        embedder.default().embed(["warm-up"])
        started = time.perf_counter()
        sample = embedder.default().embed(
            [embedder.embedding_text(t) for t in texts[:EMBED_SAMPLE]]
        )
        embedding_ms = 1000 * (time.perf_counter() - started) / len(sample)
    texts = [replace(t, embedding=sample[i % len(sample)]) for i, t in enumerate(texts)]
    model.predict(texts[:CLASSIFY_BATCH])  # warm-up: first-call imports and allocations

    def rate(batch: int) -> tuple[float, float]:
        """Items per second of wall-clock time, and per second of this process's CPU time:
        on a shared machine the second is what one core does when it is ours."""
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, n, batch):
            model.predict(texts[start : start + batch])
        return n / (time.perf_counter() - started), n / (time.process_time() - cpu)

    # The batched pass runs first, so it meets most words for the first time, as a worker
    # meets new items' words; the one-batch pass finds them remembered.
    with one_core() as pinned:
        (batched, batched_cpu), (whole, whole_cpu) = rate(CLASSIFY_BATCH), rate(n)
    return {
        "model_version": model.version,
        "items": n,
        "mean_chars_per_item": round(sum(len(t.title) + len(t.summary) for t in texts) / n),
        "one_core": pinned,
        "embedding_ms_per_item": round(embedding_ms, 1),
        "embedded_for_timing": len(sample),
        f"items_per_s_batches_of_{CLASSIFY_BATCH}": round(batched),
        "items_per_s_one_batch": round(whole),
        f"items_per_cpu_s_batches_of_{CLASSIFY_BATCH}": round(batched_cpu),
        "items_per_cpu_s_one_batch": round(whole_cpu),
    }


def _worker_rss(db_url: str, item_ids: list[int], out: Any) -> None:
    """What a worker holds: both models and the sentence embedder loaded, a batch classified
    and embedded, items paired."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        model = item_classifier(conn)
        scorer = pair_scorer(conn)
        rows = items.for_model(conn, item_ids)
        # The model embeds the items it is given without a vector, as classification does.
        model.predict([classify.to_model_text(r) for r in rows])
        config = _config(model.version)
        for item_id in item_ids:
            pairing.pair_items(conn, [item_id], scorer, config)
    out.put(_peak_rss_mb())


def _peak_rss_mb() -> float:
    """Peak RSS of this process. Linux carries ru_maxrss across exec, so a spawned child
    would report its parent's peak: VmHWM is the child's own."""
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_peak_rss_mb(db_url: str, item_ids: list[int]) -> float:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_worker_rss, args=(db_url, item_ids, out))
    process.start()
    process.join()  # one float fits the pipe: joining first cannot deadlock
    if process.exitcode != 0:
        raise RuntimeError(f"the worker-like process failed (exit code {process.exitcode})")
    return float(out.get(timeout=10))


def _config(model_version: str) -> pairing.PairingConfig:
    """Pairing as `tracker up` ships it: the default window, thresholds and fact-check archive;
    auto-confirm is off by default."""
    return pairing.config_for(Settings.model_construct(), model_version)


def bench(
    server_url: str,
    n_items: int,
    new_items: int = 200,
    classify_n: int = 20_000,
    progress: Callable[[str], None] = lambda _: None,
    reuse: str | None = None,
) -> dict[str, Any]:
    """With `reuse`, the named database is kept: a first run loads it as usual (N/10, then N),
    later runs find N items there, restore the loaded state and measure at N only."""
    with (
        bench_database(server_url, reuse) as db_url,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        progress(f"classifying {classify_n} items on one core ...")
        rate = classification_rate(conn, classify_n)
        config = _config(rate["model_version"])
        if reuse and _restore_loaded(conn, n_items):
            progress(f"reusing {n_items} loaded items; pairing {new_items} new items ...")
            feeds_ = _stored_feeds(conn)
            run = pairing_latency(conn, feeds_, config, new_items, (n_items, _events(n_items)))
            runs = [{**run, "load_seconds": None, "reused": True}]
        else:
            feeds_ = add_feeds(conn)
            runs = _load_and_measure(conn, feeds_, config, n_items, new_items, progress)
        progress("peak RSS of a worker-like process with both models ...")
        newest = conn.execute("SELECT id FROM items ORDER BY id DESC LIMIT 10").fetchall()
        rss = worker_peak_rss_mb(db_url, [int(r[0]) for r in newest])
    return _figures(rate, runs, rss, n_items)


def _events(size: int) -> int:
    """Events the load up to `size` wrote about: N/10 first, then the rest."""
    return (size - max(size // 10, 1)) // 25


def _load_and_measure(
    conn: psycopg.Connection,
    feeds_: Feeds,
    config: pairing.PairingConfig,
    n_items: int,
    new_items: int,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    runs, loaded = [], 0
    for size in (max(n_items // 10, 1), n_items):
        progress(f"loading {size - loaded} items with COPY (to {size}) ...")
        started = time.perf_counter()
        events = (size, (size - loaded) // 25)
        load(conn, feeds_, config.model_version, Corpus(*events), size - loaded)
        seconds = time.perf_counter() - started
        progress(f"loaded in {seconds:.0f} s; pairing {new_items} new items one at a time ...")
        run = pairing_latency(conn, feeds_, config, new_items, events)
        runs.append({**run, "load_seconds": round(seconds, 1)})
        loaded = size
    return runs


def _restore_loaded(conn: psycopg.Connection, n_items: int) -> bool:
    """Back to the state right after the load: only the loaded items (keys `bench-N`), no
    pairs, stories or claims' kept candidates, and a pair model trained afresh from this code.
    False when the database does not hold exactly `n_items` loaded items (then it is loaded
    from scratch)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE dedupe_key LIKE 'bench-%%'), count(*) FROM items"
    ).fetchone()
    loaded, total = (int(row[0]), int(row[1])) if row else (0, 0)
    if loaded != n_items:
        if total:
            raise RuntimeError(f"the reused database holds {total} items, not {n_items}")
        return False
    with conn.transaction():
        conn.execute("DELETE FROM pairs")
        conn.execute("DELETE FROM claim_candidates")
        conn.execute("UPDATE items SET story_id = NULL WHERE story_id IS NOT NULL")
        conn.execute("DELETE FROM stories")
        conn.execute("DELETE FROM items WHERE dedupe_key NOT LIKE 'bench-%%'")
        conn.execute("DELETE FROM models WHERE kind = 'pair'")
    conn.execute("VACUUM ANALYZE items, classifications, pairs, stories")
    return True


def _stored_feeds(conn: psycopg.Connection) -> Feeds:
    by_kind: dict[str, list[int]] = {}
    for feed in feeds.list_all(conn):
        by_kind.setdefault(feed.kind, []).append(feed.id)
    return Feeds(by_kind)


def _figures(
    rate: dict[str, Any], runs: list[dict[str, Any]], rss: float, n_items: int
) -> dict[str, Any]:
    small, large = runs[0]["latency_ms"].get("p95", 0.0), runs[-1]["latency_ms"].get("p95", 0.0)
    # A reused database is measured at N only: no ratio to report.
    ratio = round(large / small, 2) if small and len(runs) > 1 else 0.0
    return {
        "classification": rate,
        "pairing": runs,
        "pairing_p95_ratio_n_to_n_over_10": ratio,
        "worker_peak_rss_mb": round(rss, 1),
        "bench_process_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "targets": {
            "classification_items_per_s": target(
                rate[f"items_per_s_batches_of_{CLASSIFY_BATCH}"], 10_000, at_most=False
            ),
            f"pairing_p95_ms_at_{n_items}": target(large, 50),
            "pairing_p95_ratio_n_to_n_over_10": (
                target(ratio, 2) if len(runs) > 1 else {"value": None, "met": None}
            ),
            "worker_peak_rss_mb": target(round(rss, 1), 500),
        },
    }
