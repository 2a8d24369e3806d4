"""`tracker bench replay`: a CheckThat!-format split through the whole pipeline as a user gets
it. The split's tweets are one social feed; their gold fact-checks and distractors from the same
collection are four fact-check feeds; all are served on loopback to the beat, fetch and classify
workers `tracker up` starts, with the models it would run, on a fresh database. Once every item
is stored, classified and paired, the suggested pairs are scored against the qrels."""

import contextlib
import json
import os
import random
import re
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import psycopg
from celery import Celery

from classifiers.datasets import load_checkthat_collection, load_checkthat_split
from tracker.bench.corpus import scratch_database
from tracker.bench.faultenv import FeedServer
from tracker.bench.scale import purge_queues
from tracker.config import Settings
from tracker.domain import TextForModel
from tracker.runtime import supervisor
from tracker.storage import models
from tracker.usecases import feed_admin

# recent: fact-checks a day before the claims; real: fact-checks at their real dates (years
# before, most of them) and claims now, a rumour coming round again; all-real: each at its own
# date, CheckThat!'s own timeline (fact-checks mostly days after their tweet).
DATE_MODES = ("recent", "real", "all-real")
FACTCHECK_FEEDS = 4
# Distractors are a seeded sample: two runs on one split serve the same fact-checks.
SEED = 2022
# Items of one side are spread over this many seconds before their moment ("now", or a day
# before for fact-checks), so their published dates are distinct as real ones would be.
SPREAD_S = 300.0
# Fast dispatch so the run does not wait on the schedule. A fast sweep too: a pair task that
# fails (a deadlock between two workers) leaves its items unpaired until the sweeper re-queues
# them, after a grace above the time a pair message spends queued behind the fact-check feeds'
# classify messages.
PIPELINE_SETTINGS = {"DISPATCH_EVERY_S": "1", "SWEEP_EVERY_S": "10", "SWEEP_GRACE_S": "120"}
READY_TIMEOUT_S = 180.0
POLL_S = 0.5
PROGRESS_EVERY_S = 10.0
LOG = "pipeline.log"
ERROR_EXAMPLES = 5
# Characters XML 1.0 forbids; a tweet could carry one, and the whole feed would be malformed.
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
TASK_NAME = re.compile(r"Task (rt\.\w+)\[")
PLAIN_ERROR = re.compile(r"\b(ERROR|CRITICAL)/|^Traceback")

DEFINITIONS = {
    "pairs of a query": "stored pairs (suggested or confirmed) with the query's tweet on either "
    "side",
    "top_pair_is_gold": "share of the queries with a gold fact-check whose best-scoring pair "
    "(ties: the lower item id) is with one of their gold fact-checks",
    "gold_among_pairs": "share of the queries with a gold fact-check that have a pair with one "
    "of their gold fact-checks",
    "pair_precision": "pairs whose rumour is a tweet and whose clarification is one of that "
    "tweet's gold fact-checks, divided by all pairs whose rumour is a tweet",
    "seconds_to_settle": "from registering the first feed until every served item is stored, "
    f"classified and paired by the active model (checked every {POLL_S} s)",
}


@dataclass(frozen=True)
class Entry:
    key: str  # the item's GUID: the query id or the vclaim id
    text: TextForModel
    published: datetime
    real_date: bool


@dataclass(frozen=True)
class Replay:
    split: str
    claims: list[tuple[str, TextForModel]]  # (query id, tweet)
    factchecks: list[tuple[str, TextForModel]]  # (vclaim id, fact-check), gold and distractors
    gold: dict[str, set[str]]  # query id -> its gold fact-checks found in the collection
    distractors: int
    gold_missing: int  # gold fact-checks the qrels name that the collection lacks


def load(directory: Path, split: str, n_distractors: int, say: Callable[[str], None]) -> Replay:
    """The split's queries and the fact-checks to serve: every gold one, then `n_distractors`
    drawn from the collection's others (never gold of any query of the split)."""
    # The workers embed what they are served: the texts here go out as feeds, no vectors.
    data = load_checkthat_split(directory, split, say, vectors=False)
    collection = load_checkthat_collection(directory, say, vectors=False)
    named = {doc for docs in data.relevant.values() for doc in docs}
    rng = random.Random(SEED)  # noqa: S311 - a reproducible sample, not a secret
    pool = sorted(collection.keys() - named)
    chosen = rng.sample(pool, min(n_distractors, len(pool)))
    served = sorted(named & collection.keys()) + chosen
    rng.shuffle(served)
    return Replay(
        split=split,
        claims=list(data.queries.items()),
        factchecks=[(d, collection[d]) for d in served],
        gold={q: set(docs) & collection.keys() for q, docs in data.relevant.items()},
        distractors=len(chosen),
        gold_missing=len(named - collection.keys()),
    )


def _dated(rows: Sequence[tuple[str, TextForModel]], moment: datetime, dates: str) -> list[Entry]:
    entries = []
    for i, (key, text) in enumerate(rows):
        recent = moment - timedelta(seconds=SPREAD_S * i / max(len(rows), 1))
        real = text.seen_at if dates == "real" else None
        entries.append(Entry(key, text, real or recent, real is not None))
    return entries


def rss(title: str, entries: Sequence[Entry]) -> bytes:
    """An RSS 2.0 feed of the entries, as a social-media bridge or a fact-checker publishes."""
    items = "".join(_rss_item(e) for e in entries)
    return (
        "<?xml version='1.0' encoding='utf-8'?>"
        "<rss version='2.0' xmlns:dc='http://purl.org/dc/elements/1.1/'><channel>"
        f"<title>{_xml(title)}</title><link>http://127.0.0.1/</link>"
        f"<description>{_xml(title)}</description><language>en</language>{items}"
        "</channel></rss>"
    ).encode()


def _rss_item(e: Entry) -> str:
    summary = f"<description>{_xml(e.text.summary)}</description>" if e.text.summary else ""
    author = f"<dc:creator>{_xml(e.text.author)}</dc:creator>" if e.text.author else ""
    return (
        f"<item><title>{_xml(e.text.title)}</title>{summary}"
        f"<guid isPermaLink='false'>{_xml(e.key)}</guid>"
        f"<pubDate>{format_datetime(e.published)}</pubDate>{author}</item>"
    )


def _xml(text: str) -> str:
    return escape(NOT_XML.sub(" ", text))


@dataclass(frozen=True)
class ServedFeed:
    path: str
    kind: str
    title: str
    body: bytes


@dataclass(frozen=True)
class Served:
    """One run's feeds: the claims as one social feed, the fact-checks dealt to four."""

    claims: list[Entry]
    factchecks: list[Entry]
    feeds: list[ServedFeed]


def serve_as(replay: Replay, dates: str, now: datetime) -> Served:
    """Dated as `dates` says (DATE_MODES; each side spread over a few minutes where it is not
    at its real date, and at recent dates where it has none)."""
    claims = _dated(replay.claims, now, "real" if dates == "all-real" else "recent")
    checks = _dated(
        replay.factchecks, now - timedelta(days=1), "recent" if dates == "recent" else "real"
    )
    social = ServedFeed(
        "/social.xml",
        "social",
        f"Claims on social media ({replay.split})",
        rss(replay.split, claims),
    )
    dealt = [
        ServedFeed(
            f"/factchecks-{n + 1}.xml",
            "factcheck",
            f"Fact-checks {n + 1}",
            rss(f"Fact-checks {n + 1}", checks[n::FACTCHECK_FEEDS]),
        )
        for n in range(FACTCHECK_FEEDS)
    ]
    return Served(claims, checks, [social, *dealt])


@contextlib.contextmanager
def pipeline(db_url: str, broker_url: str, directory: Path) -> Iterator[supervisor.Supervisor]:
    """Fetch worker, classify worker and beat with `tracker up`'s command lines, fetching from
    loopback, all writing JSON log lines to one file."""
    env = supervisor.child_env(
        db_url, broker_url, directory, "http://replay.invalid", ["127.0.0.1/32"], None
    )
    env.update({f"TRACKER_{k}": v for k, v in PIPELINE_SETTINGS.items()})
    # Every feed is on one loopback host: the per-host politeness cap would hold one back.
    env.update({"TRACKER_FETCH_PER_HOST": str(1 + FACTCHECK_FEEDS), "TRACKER_LOG_FORMAT": "json"})
    roles = [r for r in supervisor.roles(directory, "127.0.0.1", 0) if r.name != "web"]
    with open(directory / LOG, "wb") as log:
        sup = supervisor.Supervisor(roles, env, log)
        sup.start()
        try:
            yield sup
        finally:
            sup.stop()


def wait_for_workers(broker_url: str, sup: supervisor.Supervisor, directory: Path) -> None:
    """Until the fetch and classify workers this process started answer a ping."""
    app = Celery("rt-bench-replay", broker=broker_url, set_as_current=False)
    prefix = f"tracker-{os.getpid()}-"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        names = {name for reply in app.control.ping(timeout=1.0) for name in reply}
        if all(any(n.startswith(f"{prefix}{q}@") for n in names) for q in ("fetch", "classify")):
            return
        dead = _exited(sup)
        if dead or sup.stopping.is_set() or time.monotonic() > deadline:
            raise RuntimeError(
                f"the workers did not start (exited: {dead or 'none'}); log tail:\n"
                + _tail(directory / LOG)
            )


def _exited(sup: supervisor.Supervisor) -> list[str]:
    return [name for name, proc in sup.procs.items() if proc.poll() is not None]


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


@dataclass(frozen=True)
class Progress:
    fetched: int  # feeds polled successfully at least once
    feed_errors: list[str]
    stored: int
    classified: int
    paired: int


def progress(conn: psycopg.Connection, version: str) -> Progress:
    feeds_row = conn.execute(
        """SELECT count(*) FILTER (WHERE last_polled_at IS NOT NULL AND error_count = 0),
                  coalesce(array_agg(last_error) FILTER (WHERE last_error IS NOT NULL), '{}')
           FROM feeds"""
    ).fetchone()
    items_row = conn.execute(
        """SELECT count(*), count(c.item_id), count(c.paired_at)
           FROM items i LEFT JOIN classifications c
             ON c.item_id = i.id AND c.model_version = %s""",
        (version,),
    ).fetchone()
    assert feeds_row is not None and items_row is not None
    return Progress(int(feeds_row[0]), list(feeds_row[1]), *map(int, items_row))


@dataclass(frozen=True)
class Settled:
    settled: bool
    timed_out: bool
    seconds: float
    reason: str | None
    last: Progress


def wait_settled(
    conn: psycopg.Connection,
    sup: supervisor.Supervisor,
    version: str,
    served: tuple[int, int],
    started: float,
    timeout_s: float,
    echo: Callable[[str], None],
) -> Settled:
    """Until every feed was fetched and each stored item classified and paired, a worker or
    beat exits, we are asked to stop, or `timeout_s` passes since `started`."""
    n_feeds, n_items = served
    next_line = started + PROGRESS_EVERY_S
    while True:
        now = time.monotonic()
        seen = progress(conn, version)
        if seen.fetched == n_feeds and seen.stored == seen.classified == seen.paired:
            lost = None if seen.stored == n_items else f"{n_items - seen.stored} items not stored"
            return Settled(lost is None, False, now - started, lost, seen)
        stop = _stop_reason(sup, now - started, timeout_s)
        if stop is not None:
            return Settled(False, stop.startswith("timed out"), now - started, stop, seen)
        if now >= next_line:
            echo(_progress_line(now - started, seen, n_feeds, n_items))
            next_line += PROGRESS_EVERY_S
        time.sleep(POLL_S)


def _stop_reason(sup: supervisor.Supervisor, elapsed: float, timeout_s: float) -> str | None:
    if elapsed > timeout_s:
        return f"timed out after {timeout_s:.0f} s"
    dead = _exited(sup)
    if dead:
        return f"exited: {', '.join(dead)}"
    return "interrupted" if sup.stopping.is_set() else None


def _progress_line(elapsed: float, p: Progress, n_feeds: int, n_items: int) -> str:
    line = (
        f"{elapsed:6.0f} s: feeds fetched {p.fetched}/{n_feeds}, items stored {p.stored}/"
        f"{n_items}, classified {p.classified}, paired {p.paired}"
    )
    return line + (f"; feed errors: {p.feed_errors}" if p.feed_errors else "")


def register(
    conn: psycopg.Connection, s: Settings, server: FeedServer, served: list[ServedFeed]
) -> None:
    """As `tracker feeds add URL --kind K --language en` registers each."""
    with conn.transaction():
        for f in served:
            new = feed_admin.new_feed(server.url(f.path), f.kind, f.title, "en", ("replay",), s)
            feed_admin.add(conn, new, s, "bench")


@dataclass(frozen=True)
class Stored:
    """What the run left in the database: items by id as (feed kind, GUID), the active item
    model's labels, and the pairs not rejected as (rumour id, clarification id, score)."""

    items: dict[int, tuple[str, str]]
    labels: dict[int, str]
    pairs: list[tuple[int, int, float]]
    models: dict[str, Any]


def stored(conn: psycopg.Connection, version: str) -> Stored:
    items = conn.execute(
        "SELECT i.id, f.kind, i.dedupe_key FROM items i JOIN feeds f ON f.id = i.feed_id"
    ).fetchall()
    labels = conn.execute(
        "SELECT item_id, label FROM classifications WHERE model_version = %s", (version,)
    ).fetchall()
    pairs = conn.execute(
        "SELECT rumour_id, clarification_id, score FROM pairs WHERE status <> 'rejected'"
    ).fetchall()
    used = {
        "classifications_by": "SELECT DISTINCT model_version FROM classifications",
        "pairs_scored_by": "SELECT DISTINCT scorer_version FROM pairs",
    }
    return Stored(
        items={row[0]: (row[1], row[2]) for row in items},
        labels=dict(labels),
        pairs=[(r, c, float(s)) for r, c, s in pairs],
        models={
            "item": version,
            "pair": models.active_version(conn, "pair"),
            **{k: sorted(row[0] for row in conn.execute(q)) for k, q in used.items()},
        },
    )


def sides(replay: Replay, served: Served, found: Stored) -> dict[str, Any]:
    """Served and stored counts and the labels of each side."""
    gold = {d for docs in replay.gold.values() for d in docs}
    report = {}
    for side, kind, entries in (
        ("claims", "social", served.claims),
        ("factchecks", "factcheck", served.factchecks),
    ):
        ids = [i for i, (k, _key) in found.items.items() if k == kind]
        report[side] = {
            "served": len(entries),
            "stored": len(ids),
            "labels": dict(Counter(found.labels.get(i, "unclassified") for i in ids)),
            "real_dates": sum(e.real_date for e in entries),
        }
    checks = [(i, key) for i, (k, key) in found.items.items() if k == "factcheck"]
    report["factchecks"]["gold_served"] = len(gold)
    report["factchecks"]["distractors_served"] = replay.distractors
    report["factchecks"]["gold_missing_from_collection"] = replay.gold_missing
    report["factchecks"]["labels_of_gold"] = dict(
        Counter(found.labels.get(i, "unclassified") for i, key in checks if key in gold)
    )
    return report


def quality(replay: Replay, found: Stored) -> dict[str, Any]:
    """How the pairs compare with the qrels (see DEFINITIONS)."""
    # Per query: (-score, other item's id, its GUID when it is a fact-check, else "").
    of_query: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    claim_rumour = claim_rumour_gold = 0
    for rumour, clarification, score in found.pairs:
        for mine, other in ((rumour, clarification), (clarification, rumour)):
            kind, key = found.items[mine]
            if kind == "social":
                of_query[key].append((-score, other, _factcheck_key(found, other)))
        kind, key = found.items[rumour]
        if kind == "social":
            claim_rumour += 1
            claim_rumour_gold += _factcheck_key(found, clarification) in replay.gold.get(key, ())
    asked = [q for q, docs in replay.gold.items() if docs]
    top = sum(min(of_query[q])[2] in replay.gold[q] for q in asked if of_query[q])
    among = sum(any(p[2] in replay.gold[q] for p in of_query[q]) for q in asked)
    return {
        "queries": len(replay.claims),
        "queries_with_gold": len(asked),
        "queries_with_pairs": sum(1 for q, _tweet in replay.claims if of_query[q]),
        "top_pair_is_gold": _share(top, len(asked)),
        "gold_among_pairs": _share(among, len(asked)),
        "pair_precision": _share(claim_rumour_gold, claim_rumour),
        "pairs_whose_rumour_is_a_claim": claim_rumour,
        "pairs_to_gold": claim_rumour_gold,
        "pairs": len(found.pairs),
        "pairs_by_sides": _pairs_by_sides(found),
    }


def _factcheck_key(found: Stored, item_id: int) -> str:
    kind, key = found.items[item_id]
    return key if kind == "factcheck" else ""


def _pairs_by_sides(found: Stored) -> dict[str, int]:
    names = {"social": "claim", "factcheck": "factcheck"}
    return dict(
        Counter(
            f"{names[found.items[r][0]]} -> {names[found.items[c][0]]}" for r, c, _s in found.pairs
        )
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def task_errors(log: Path) -> dict[str, Any]:
    """Errors the workers and beat logged: failed tasks by name, any other error lines."""
    by_task: Counter[str] = Counter()
    examples: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        event = _error_event(line)
        if event is None:
            continue
        named = TASK_NAME.search(event)
        by_task[named[1] if named else "other"] += 1
        if len(examples) < ERROR_EXAMPLES:
            examples.append(event[:400])
    return {"count": sum(by_task.values()), "by_task": dict(by_task), "examples": examples}


def _error_event(line: str) -> str | None:
    record = _json_record(line)
    if record is None:
        # Not a log record: a process's own output, such as a traceback before logging is set.
        return line if PLAIN_ERROR.search(line) else None
    if record.get("level") not in ("error", "critical"):
        return None
    exception = f" {record['exception']}" if record.get("exception") else ""
    return f"{record.get('event', '')}{exception}"


def _json_record(line: str) -> dict[str, Any] | None:
    # Beat hands what its process prints to Celery's logger: "[time: LEVEL/Process] {...}".
    start = line.find("{")
    if start < 0:
        return None
    try:
        record = json.loads(line[start:])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def bench(
    server_url: str,
    broker_url: str,
    s: Settings,
    replay: Replay,
    dates: str,
    timeout_s: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    # Imported here: scikit-learn takes a second to load.
    from tracker.pipeline.model_registry import ensure_models

    server = FeedServer()
    try:
        with (
            scratch_database(server_url) as db_url,
            tempfile.TemporaryDirectory(prefix="rt-replay-") as tmp,
            psycopg.connect(db_url, autocommit=True) as conn,
        ):
            echo("preparing the models `tracker up` would run ...")
            ensure_models(conn)
            version = models.active_version(conn, "item")
            assert version is not None
            purge_queues(broker_url)
            with pipeline(db_url, broker_url, Path(tmp)) as sup:
                wait_for_workers(broker_url, sup, Path(tmp))
                served = serve_as(replay, dates, datetime.now(UTC))
                server.routes.update({f.path: f.body for f in served.feeds})
                echo(f"serving {len(served.claims)} claims, {len(served.factchecks)} fact-checks")
                started = time.monotonic()
                register(conn, s, server, served.feeds)
                size = (len(served.feeds), len(served.claims) + len(served.factchecks))
                settled = wait_settled(conn, sup, version, size, started, timeout_s, echo)
            echo(_progress_line(settled.seconds, settled.last, *size))
            found = stored(conn, version)
            errors = task_errors(Path(tmp) / LOG)
            tail = None if settled.settled else _tail(Path(tmp) / LOG)
    finally:
        server.close()
    report = {
        "split": replay.split,
        "dates": dates,
        "settled": settled.settled,
        "timed_out": settled.timed_out,
        "not_settled_because": settled.reason,
        "seconds_to_settle": round(settled.seconds, 1) if settled.settled else None,
        **sides(replay, served, found),
        **quality(replay, found),
        "feed_requests": sum(server.requests.values()),
        "task_errors": errors,
        "models": found.models,
        "pairing_settings": _pairing_settings(s),
        "definitions": DEFINITIONS,
    }
    return report if tail is None else {**report, "log_tail": tail}


def _pairing_settings(s: Settings) -> dict[str, Any]:
    return {
        "window_days": s.pair_window_days,
        "suggest_threshold": s.pair_suggest_threshold,
        "autoconfirm_threshold": s.pair_autoconfirm_threshold,
    }


def readable(report: dict[str, Any], indent: str = "") -> list[str]:
    """The report as indented `key: value` lines."""
    lines = []
    for key, value in report.items():
        if isinstance(value, dict) and value:
            lines += [f"{indent}{key}:", *readable(value, indent + "  ")]
        elif isinstance(value, str) and "\n" in value:
            lines += [f"{indent}{key}:", *(f"{indent}  {line}" for line in value.splitlines())]
        else:
            lines.append(f"{indent}{key}: {value}")
    return lines
