"""`tracker bench vectors`: the nearest-vector search pairing runs (storage/vectors.nearest) on
both storage paths of migration 0018, on one machine in one run: pgvector with its HNSW indexes
(an embedded pgserver, unless the given server has pgvector) and real[] searched exactly (the
given server). N synthetic vectors shaped like the embedder's are loaded with binary COPY; each
path reports load and index build time, size, query latency and recall@k against exact search
in numpy over the same rows. Then the embedder's own speed on real-ish texts."""

import contextlib
import importlib.util
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from classifiers import embedder
from tracker.bench.corpus import scratch_database
from tracker.bench.pairing import percentiles
from tracker.bench.vector_shapes import (
    CENTROID_WEIGHT,
    CHUNK,
    COPY_SIGNATURE,
    COPY_TRAILER,
    DIM,
    HNSW_MEMORY,
    ITEM_NOISE,
    embedding_fields,
    fill_embeddings,
    unit,
)
from tracker.config import Settings
from tracker.domain import TextForModel
from tracker.ingest.parse import parse
from tracker.pipeline import pairing
from tracker.runtime import embedded
from tracker.storage import vectors

Progress = Callable[[str], None]
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
MODEL_VERSION = "item-bench-vectors"
LABELS = ("rumour", "clarification")
# Rumours come from media feeds; clarifications from all three kinds, two of them archived.
KINDS = ("media", "factcheck", "official")
YEAR = timedelta(days=365)
# Synthetic vectors like the encoder's (tracker/bench/vector_shapes.py).
EVENT_SIZE = 50
QUERY_NOISE = 0.2
EVENT_LAG_DAYS = 2.0  # mean days from an event to an item about it
# Exact scores equal to this count as ties with the k-th: summing floats in another order
# (PostgreSQL's sum over real against BLAS) must not read as a miss.
TIE = 1e-5
WARMUP_QUERIES = 10
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01, PostgreSQL's binary timestamp origin
MIGRATION = Path(__file__).parent.parent / "storage/migrations/versions/0018_candidate_vectors.py"


@dataclass(frozen=True)
class Rows:
    ids: np.ndarray  # int64, 1..n
    labels: np.ndarray  # index in LABELS
    kinds: np.ndarray  # index in KINDS
    seen_us: np.ndarray  # int64, microseconds since the Unix epoch
    vectors: np.ndarray  # float32 (n, DIM), unit length


def synthetic(n: int, now: datetime, seed: int = 0) -> Rows:
    """Events at random times of the year up to `now`, each with a random centroid; items of
    an event seen in the days after it; alternately rumours and clarifications."""
    rng = np.random.default_rng(seed)
    year_us, now_us = int(YEAR.total_seconds() * 1e6), int(now.timestamp() * 1e6)
    events = max(n // EVENT_SIZE, 10)
    common = unit(rng.standard_normal(DIM))
    centroids = unit(rng.standard_normal((events, DIM))) * CENTROID_WEIGHT
    event = rng.integers(0, events, n)
    lag = rng.exponential(EVENT_LAG_DAYS * 86_400e6, n)
    at = np.minimum(rng.uniform(0, year_us, events)[event] + lag, year_us)
    labels = (np.arange(n) % 2).astype(np.int8)
    kinds = np.where(labels == 0, 0, rng.integers(0, len(KINDS), n)).astype(np.int8)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, CHUNK):
        part = event[start : start + CHUNK]
        noise = rng.standard_normal((len(part), DIM)) * (ITEM_NOISE / np.sqrt(DIM))
        out[start : start + len(part)] = unit(common + centroids[part] + noise)
    ids = np.arange(1, n + 1, dtype=np.int64)
    return Rows(ids, labels, kinds, (now_us - year_us + at).astype(np.int64), out)


def _block(dtype: list[tuple[Any, ...]], n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.dtype(dtype))


def _candidate_rows(rows: Rows, pick: np.ndarray, label: str, kind: str, pgvector: bool) -> bytes:
    """Binary COPY tuples of pairing_candidates for rows of one label and kind, built whole in
    numpy: fixed-width fields per group need no loop per row."""
    ver, lab, knd = MODEL_VERSION.encode(), label.encode(), kind.encode()
    emb, emb_len = embedding_fields(pgvector)
    fields = [("n", ">i2"), ("l0", ">i4"), ("id", ">i8"), ("l1", ">i4"), ("ver", f"S{len(ver)}")]
    fields += [("l2", ">i4"), ("label", f"S{len(lab)}"), ("l3", ">i4"), ("seen", ">i8")]
    fields += [("l4", ">i4"), ("tsv", ">i4"), ("l5", ">i4"), ("kind", f"S{len(knd)}")]
    out = _block([*fields, ("l6", ">i4"), *emb], len(pick))
    lengths = (8, len(ver), len(lab), 8, 4, len(knd), emb_len)
    out["n"] = 7
    for i, length in enumerate(lengths):
        out[f"l{i}"] = length
    out["id"], out["ver"], out["label"], out["kind"] = rows.ids[pick], ver, lab, knd
    out["seen"] = rows.seen_us[pick] - PG_EPOCH_US
    fill_embeddings(out, rows.vectors[pick], pgvector)
    return out.tobytes()


def _staging_rows(rows: Rows) -> bytes:
    fields = [("n", ">i2"), ("l0", ">i4"), ("id", ">i8"), ("l1", ">i4"), ("label", ">i2")]
    fields += [("l2", ">i4"), ("kind", ">i2"), ("l3", ">i4"), ("seen", ">i8")]
    out = _block(fields, len(rows.ids))
    out["n"], out["l0"], out["l1"], out["l2"], out["l3"] = 4, 8, 2, 2, 8
    out["id"], out["label"], out["kind"] = rows.ids, rows.labels, rows.kinds
    out["seen"] = rows.seen_us - PG_EPOCH_US
    return COPY_SIGNATURE + out.tobytes() + COPY_TRAILER


def _secondary_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Indexes of the loaded tables that back no constraint: dropped for the load, built
    again after it, as a bulk load is done (and as a restore builds them)."""
    found = conn.execute(
        """SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
           WHERE t.relname IN ('items', 'classifications', 'pairing_candidates')
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"""
    ).fetchall()
    return [(str(name), str(definition)) for name, definition in found]


def load(conn: psycopg.Connection, rows: Rows, progress: Progress) -> dict[str, Any]:
    """Feeds, items and classifications made server-side from a staging table of the rows'
    ids, labels, kinds and times; the candidates with their vectors by binary COPY."""
    pgvector = vectors.column_type(conn) == "vector"
    indexes = _secondary_indexes(conn)
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("""CREATE UNLOGGED TABLE vector_bench_rows
                       (id bigint, label smallint, kind smallint, seen_at timestamptz)""")
        with cur.copy("COPY vector_bench_rows FROM STDIN (FORMAT binary)") as copy:
            copy.write(_staging_rows(rows))
        cur.execute(
            """INSERT INTO feeds (url, kind) SELECT 'https://' || k || '.example/feed', k
               FROM unnest(%s::text[]) AS k""",
            (list(KINDS),),
        )
        cur.execute(
            """INSERT INTO items (id, feed_id, dedupe_key, title, content_hash, published_at,
                                  fetched_at)
               SELECT r.id, f.id, 'vb-' || r.id, 'item ' || r.id, 'vb-' || r.id, r.seen_at,
                      r.seen_at
               FROM vector_bench_rows r JOIN feeds f ON f.kind = (%s::text[])[r.kind + 1]""",
            (list(KINDS),),
        )
        cur.execute(
            """INSERT INTO classifications (item_id, model_version, label, probability)
               SELECT id, %s, (%s::text[])[label + 1], 0.9 FROM vector_bench_rows""",
            (MODEL_VERSION, list(LABELS)),
        )
        cur.execute("DROP TABLE vector_bench_rows")
        _copy_candidates(cur, rows, pgvector, progress)
        cur.execute("SELECT setval(pg_get_serial_sequence('items', 'id'), max(id)) FROM items")
    loaded = time.perf_counter() - started
    built = _build_indexes(conn, indexes, progress)
    conn.execute("VACUUM ANALYZE feeds, items, classifications, pairing_candidates")
    return {"load_seconds": round(loaded, 1), **built}


def _copy_candidates(cur: psycopg.Cursor, rows: Rows, pgvector: bool, progress: Progress) -> None:
    n, done = len(rows.ids), 0
    columns = "item_id, model_version, label, seen_at, tsv, kind, embedding"
    with cur.copy(f"COPY pairing_candidates ({columns}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(COPY_SIGNATURE)
        for start in range(0, n, CHUNK * 5):
            part = np.arange(start, min(start + CHUNK * 5, n))
            for li, label in enumerate(LABELS):
                for ki, kind in enumerate(KINDS):
                    pick = part[(rows.labels[part] == li) & (rows.kinds[part] == ki)]
                    if len(pick):
                        copy.write(_candidate_rows(rows, pick, label, kind, pgvector))
            done += len(part)
            progress(f"  copied {done}/{n} vectors")
        copy.write(COPY_TRAILER)


def _build_indexes(
    conn: psycopg.Connection, indexes: Sequence[tuple[str, str]], progress: Progress
) -> dict[str, Any]:
    """The dropped indexes again: the HNSW ones timed apart, with the memory they need."""
    hnsw = [(n, d) for n, d in indexes if "USING hnsw" in d]
    others = [(n, d) for n, d in indexes if "USING hnsw" not in d]
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for _, definition in others:
            conn.execute(definition)
    other_s = time.perf_counter() - started
    hnsw_s: dict[str, float] = {}
    for name, definition in hnsw:
        progress(f"  building {name} ...")
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(f"SET LOCAL maintenance_work_mem = '{HNSW_MEMORY}'")
            conn.execute(definition)
        hnsw_s[name] = round(time.perf_counter() - started, 1)
        progress(f"  built {name} in {hnsw_s[name]} s")
    figures: dict[str, Any] = {"other_index_build_seconds": round(other_s, 1)}
    if hnsw:
        workers = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()
        figures["hnsw_build_seconds"] = {**hnsw_s, "total": round(sum(hnsw_s.values()), 1)}
        figures["hnsw_build_settings"] = {
            "maintenance_work_mem": HNSW_MEMORY,
            "max_parallel_maintenance_workers": workers[0] if workers else None,
        }
    return figures


def sizes(conn: psycopg.Connection) -> dict[str, float]:
    row = conn.execute(
        """SELECT pg_table_size('pairing_candidates'), pg_indexes_size('pairing_candidates'),
                  coalesce(sum(pg_relation_size(indexrelid))
                           FILTER (WHERE pg_get_indexdef(indexrelid) LIKE '%%USING hnsw%%'), 0)
           FROM pg_index WHERE indrelid = 'pairing_candidates'::regclass"""
    ).fetchone()
    table, indexes, hnsw = (int(v) for v in row) if row else (0, 0, 0)
    mb = 1024 * 1024
    return {
        "table_mb": round(table / mb, 1),
        "indexes_mb": round(indexes / mb, 1),
        "hnsw_indexes_mb": round(hnsw / mb, 1),
        "total_mb": round((table + indexes) / mb, 1),
    }


@dataclass(frozen=True)
class Query:
    source: int  # row index of the stored item it is a noisy copy of (excluded, as itself)
    vector: np.ndarray
    arounds: list[datetime]


def make_queries(rows: Rows, count: int, now: datetime, window_days: int) -> list[Query]:
    """Noisy copies of stored items, searched around the item's time and, for an item older
    than the window, around now too: what pairing.retrieve passes."""
    rng = np.random.default_rng(1)
    picked = rng.choice(len(rows.ids), size=min(count, len(rows.ids)), replace=False)
    noise = rng.standard_normal((len(picked), DIM)) * (QUERY_NOISE / np.sqrt(DIM))
    found = unit(rows.vectors[picked] + noise)
    out = []
    for i, vector in zip(picked, found, strict=True):
        seen = datetime.fromtimestamp(int(rows.seen_us[i]) / 1e6, UTC)
        old = now - seen > timedelta(days=window_days)
        out.append(Query(int(i), vector, [seen, now] if old else [seen]))
    return out


def exact(
    rows: Rows,
    query: Query,
    label: str,
    config: pairing.PairingConfig,
    archive: Sequence[tuple[str, int]],
    limit: int,
) -> tuple[set[int], int]:
    """The ids of the `limit` nearest items that pass nearest's filters, with any tied with
    the last of them; and how many are expected (fewer when fewer pass)."""
    window = config.window_days * 86_400_000_000
    arounds = [int(a.timestamp() * 1e6) for a in query.arounds]
    ok = np.zeros(len(rows.ids), dtype=bool)
    for around in arounds:
        ok |= np.abs(rows.seen_us - around) <= window
    for kind, days in archive:  # only clarifications are searched with the archive
        ok |= (rows.kinds == KINDS.index(kind)) & (rows.seen_us >= min(arounds) - days * 86_400e6)
    ok &= rows.labels == LABELS.index(label)
    ok[query.source] = False
    passing = np.flatnonzero(ok)
    want = min(limit, len(passing))
    if want == 0:
        return set(), 0
    scores = (rows.vectors @ query.vector)[passing]  # no copy of the passing rows' vectors
    kth = np.partition(scores, -want)[-want]
    return {int(i) for i in rows.ids[passing[scores >= kth - TIE]]}, want


def search(
    conn: psycopg.Connection,
    rows: Rows,
    queries: Sequence[Query],
    config: pairing.PairingConfig,
    progress: Progress,
) -> dict[str, Any]:
    """vectors.nearest for each query and pairing role searched, as pairing.retrieve calls it
    (clarifications with the archive, rumours within the window only), after a warm-up."""
    for query in queries[:WARMUP_QUERIES]:
        _nearest(conn, rows, query, "clarification", config)
    figures = {}
    for label in ("clarification", "rumour"):
        archive = config.archive_days if label == "clarification" else ()
        timed, recalls, returned = [], [], []
        for n, query in enumerate(queries, 1):
            started = time.perf_counter()
            found = _nearest(conn, rows, query, label, config)
            timed.append((time.perf_counter() - started) * 1000)
            truth, want = exact(rows, query, label, config, archive, pairing.MEANING_CANDIDATES)
            returned.append(len(found))
            if want:
                recalls.append(min(len(truth & {f.id for f in found}), want) / want)
            if n % 25 == 0 or n == len(queries):
                progress(f"  {label}: {n}/{len(queries)} queries, last {timed[-1]:.1f} ms")
        figures[f"{label}_search"] = {
            "archive": [list(a) for a in archive],
            "latency_ms": percentiles(timed),
            f"recall_at_{pairing.MEANING_CANDIDATES}": round(float(np.mean(recalls)), 4)
            if recalls
            else None,
            "min_recall": round(min(recalls), 4) if recalls else None,
            # Queries that lost most of their nearest items: a mean recall hides them.
            "queries_under_half_recall": sum(r < 0.5 for r in recalls),
            "mean_returned": round(float(np.mean(returned)), 2),
        }
    return figures


def _nearest(
    conn: psycopg.Connection, rows: Rows, query: Query, label: str, config: pairing.PairingConfig
) -> list[Any]:
    return vectors.nearest(
        conn,
        vector=query.vector,
        label=label,
        limit=pairing.MEANING_CANDIDATES,
        model_version=MODEL_VERSION,
        arounds=query.arounds,
        window_days=config.window_days,
        archive_days=config.archive_days if label == "clarification" else (),
        exclude_id=int(rows.ids[query.source]),
    )


def _has_pgvector(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        return row.fetchone() is not None


@contextlib.contextmanager
def pgvector_server(server_url: str, progress: Progress) -> Iterator[tuple[str, str]]:
    """The given server when it has pgvector, else an embedded pgserver of our own."""
    if _has_pgvector(server_url):
        yield server_url, "the given server"
        return
    # Short: unix socket paths are limited to about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="rt-vb-", dir="/tmp"))
    progress(f"starting an embedded pgserver in {directory} for the pgvector path ...")
    try:
        with embedded.postgres_server(directory) as url:
            yield url, "an embedded pgserver"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def as_plain(conn: psycopg.Connection) -> None:
    """Migration 0018's schema for a server without pgvector, on one that has it: the real[]
    column and its dot-product function, no HNSW index."""
    spec = importlib.util.spec_from_file_location("migration_0018", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with conn.transaction():
        conn.execute("DROP INDEX pairing_candidates_clarification_vectors")
        conn.execute("DROP INDEX pairing_candidates_rumour_vectors")
        conn.execute("ALTER TABLE pairing_candidates DROP COLUMN embedding")
        conn.execute(migration.PLAIN)


def run_path(
    server_url: str,
    rows: Rows,
    queries: Sequence[Query],
    config: pairing.PairingConfig,
    progress: Progress,
    plain: bool,
) -> dict[str, Any]:
    """One storage path in a scratch database on `server_url`, migrated as the code does."""
    with scratch_database(server_url) as url, psycopg.connect(url, autocommit=True) as conn:
        emulated = plain and vectors.column_type(conn) == "vector"
        if emulated:
            as_plain(conn)
        version = conn.execute("SHOW server_version").fetchone()
        progress(f"loading {len(rows.ids)} rows ({vectors.column_type(conn)}) ...")
        figures: dict[str, Any] = {
            "column_type": vectors.column_type(conn),
            "server_version": version[0] if version else None,
            "real_array_on_a_pgvector_server": emulated,
            "items": len(rows.ids),
        }
        figures.update(load(conn, rows, progress))
        figures.update(sizes(conn))
        progress(f"searching {len(queries)} queries x 2 roles ...")
        figures.update(search(conn, rows, queries, config, progress))
    return figures


def real_texts(count: int) -> list[str]:
    """Titles and summaries of the demo feeds, then of the seed corpus (English and Romanian
    alternately), cut as the embedder cuts them."""
    root = Path(__file__).parent.parent.parent
    texts = [
        embedder.embedding_text(TextForModel(e.title, e.summary))
        for path in sorted((root / "tracker/demo/feeds").glob("*.xml"))
        for e in parse(path.read_bytes()).entries
    ]
    seed = [json.loads(line) for line in (root / "classifiers/seed/seed.jsonl").open()]
    by_lang: dict[str, list[dict[str, str]]] = {}
    for record in seed:
        by_lang.setdefault(record.get("lang", ""), []).append(record)
    for group in zip(*by_lang.values(), strict=False):
        texts += [embedder.embedding_text(TextForModel(r["title"], r["summary"])) for r in group]
    return texts[:count]


def embedding_speed(count: int = 200) -> dict[str, Any]:
    """Per item in calls of one and in batches, with the engine's threads as shipped."""
    texts = real_texts(count)
    started = time.perf_counter()
    model = embedder.default()
    model.embed(texts[:2])  # first call: the shared library and the weights
    return {
        "model": embedder.NAME,
        "openmp_threads": embedder.THREADS,
        "texts": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts)),
        "load_seconds": round(time.perf_counter() - started, 2),
        **_embedding_runs(model, texts),
    }


def _embedding_runs(model: embedder.Embedder, texts: Sequence[str]) -> dict[str, Any]:
    single = []
    for text in texts:
        started = time.perf_counter()
        model.embed([text])
        single.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    model.embed(texts)  # in batches of embedder.BATCH
    batched = time.perf_counter() - started
    return {
        "single_item_ms": percentiles(single),
        f"items_per_s_batches_of_{embedder.BATCH}": round(len(texts) / batched, 1),
        f"ms_per_item_batches_of_{embedder.BATCH}": round(batched * 1000 / len(texts), 2),
    }


def bench(
    server_url: str,
    n_items: int,
    n_queries: int = 200,
    exact_items: int | None = None,
    progress: Progress = lambda _: None,
    embed_texts: int = 200,
) -> dict[str, Any]:
    """Both storage paths on the same synthetic rows (the real[] path on its first
    `exact_items`, when capped), then the embedder. Each path's figures are also given to
    `progress` as one JSON line when it ends, so a long run that is stopped keeps them."""
    config = pairing.config_for(Settings.model_construct(), MODEL_VERSION)
    now = datetime.now(UTC)
    capped = min(exact_items or n_items, n_items)
    progress(f"generating {n_items} vectors ...")
    rows = synthetic(n_items, now)
    figures: dict[str, Any] = {
        "items": n_items,
        "queries": n_queries,
        "limit": pairing.MEANING_CANDIDATES,
        "window_days": config.window_days,
        "vectors": {"dimensions": DIM, "events": max(n_items // EVENT_SIZE, 10)},
    }
    try:
        with pgvector_server(server_url, progress) as (url, where):
            progress(f"pgvector path on {where} ...")
            run = run_path(url, rows, make_queries(rows, n_queries, now, config.window_days),
                           config, progress, plain=False)  # fmt: skip
            figures["pgvector"] = {"server": where, **run}
    except embedded.EmbeddedUnavailableError as exc:  # no pgserver wheel here: say so, go on
        figures["pgvector"] = {"skipped": str(exc)}
    progress("pgvector: " + json.dumps(figures["pgvector"]))
    if capped < n_items:
        progress(f"the real[] path is capped at {capped} items (--exact-items)")
        rows = synthetic(capped, now)
    run = run_path(server_url, rows, make_queries(rows, n_queries, now, config.window_days),
                   config, progress, plain=True)  # fmt: skip
    figures["real_array"] = {"server": "the given server", "capped": capped < n_items, **run}
    progress("real[]: " + json.dumps(figures["real_array"]))
    progress(f"embedding {embed_texts} texts one at a time and in batches ...")
    figures["embedder"] = embedding_speed(embed_texts)
    return figures
