"""A worker process for tests/integration/test_ops_endpoints.py: runs the real task bodies
(`python -m tests.ops_worker fetch N` or `... classify`) with the environment the test gives
it, PROMETHEUS_MULTIPROC_DIR included, and exits."""

import sys

import psycopg

from tracker.config import get_settings
from tracker.storage import feeds
from workers import tasks


def _url() -> str:
    url = get_settings().database_url
    assert url is not None
    return url.get_secret_value()


def fetch(limit: int) -> None:
    """Lease up to `limit` due feeds and refresh each, as dispatch and fetch_feed do."""
    with psycopg.connect(_url(), autocommit=True) as conn, conn.transaction():
        leases = feeds.claim_due(conn, limit, get_settings().fetch_lease_s, per_host=limit)
    for lease in leases:
        tasks.fetch_feed(lease.feed_id, str(lease.token))


def classify() -> None:
    """Classify and pair every stored item, then relay the alerts that queued."""
    with psycopg.connect(_url(), autocommit=True) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM items ORDER BY id")]
    tasks.classify_items(ids)
    tasks.pair_items(ids)
    tasks.relay_outbox()


if __name__ == "__main__":
    if sys.argv[1] == "fetch":
        fetch(int(sys.argv[2]))
    else:
        classify()
