"""`tracker bench ops`: backup and restore at N items, then a retention pass with half of them
expired while the review queue is measured, against the queue measured idle.

The data is `tracker bench review`'s (1,000,000 items, 100,000 pairs, half the items in
stories; `--reuse` keeps it between runs). The backup is taken from it with the code of
`tracker backup`, restored by `tracker restore`'s code into a scratch database, and the pass
runs on that copy as `tracker prune` (a child process with TRACKER_RETAIN_ITEMS_DAYS set so
that half the items are older), so the loaded data is never changed.
"""

import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tracker.bench import review
from tracker.bench.corpus import bench_database, scratch_database, target
from tracker.bench.pairing import percentiles
from tracker.usecases import backup

TARGET_RATIO = 1.5
# Requests per endpoint in each round measured while the pass runs.
ROUND = 50


def bench(
    server_url: str,
    n_items: int = 1_000_000,
    n_pairs: int = 100_000,
    requests: int = 300,
    progress: Callable[[str], None] = lambda _: None,
    reuse: str | None = None,
) -> dict[str, Any]:
    rng = random.Random(n_items)  # noqa: S311 - varied requests, not secrets
    with bench_database(server_url, reuse) as source_url, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(source_url, autocommit=True) as conn:
            if not (reuse and review.loaded(conn, n_items, n_pairs)):
                review.load(conn, n_items, n_pairs, progress)
        saved = Path(tmp) / "backup"
        started = time.perf_counter()
        backup.backup(source_url, saved, None, progress)
        backup_s = time.perf_counter() - started
        dump_mb = (saved / backup.DUMP).stat().st_size / 1e6
        with scratch_database(server_url) as copy_url:
            started = time.perf_counter()
            backup.restore(copy_url, saved, None, True, progress)
            restore_s = time.perf_counter() - started
            retention = _retention(copy_url, requests, rng, progress)
    return {
        "items": n_items,
        "pairs": n_pairs,
        "backup_seconds": round(backup_s, 1),
        "dump_mb": round(dump_mb, 1),
        "restore_seconds": round(restore_s, 1),
        **retention,
    }


def _retention(
    db_url: str, requests: int, rng: random.Random, progress: Callable[[str], None]
) -> dict[str, Any]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        token = review.bench_accounts(conn)
        row = conn.execute(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY fetched_at) FROM items"
        ).fetchone()
        assert row is not None and row[0] is not None
        days = math.ceil((datetime.now(UTC) - row[0]).total_seconds() / 86400)
    progress(f"measuring the review queue idle ({requests} requests per endpoint) ...")
    idle = review.sample(db_url, token, requests, rng)
    progress(f"tracker prune with TRACKER_RETAIN_ITEMS_DAYS={days}, measuring meanwhile ...")
    busy: dict[str, review.Timed] = {name: [] for name in idle}
    started = time.perf_counter()
    pruning = subprocess.Popen(
        [sys.executable, "-m", "tracker", "prune"],
        env=_env(db_url, days),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while pruning.poll() is None:
        for name, times in review.sample(db_url, token, ROUND, rng).items():
            busy[name].extend(times)
    out, err = pruning.communicate()
    if pruning.returncode != 0:
        raise RuntimeError(f"tracker prune failed: {err.strip()}")
    done = re.search(r"deleted ([\d,]+) items \(of ([\d,]+) expired\).* in ([\d.]+) s", out)
    if done is None:
        raise RuntimeError(f"tracker prune said: {out.strip()}")
    deleted, expired = (int(done.group(i).replace(",", "")) for i in (1, 2))
    seconds = float(done.group(3))
    figures: dict[str, Any] = {
        "retain_items_days": days,
        "expired_items": expired,
        "deleted_items": deleted,
        "prune_seconds": seconds,
        "prune_wall_seconds": round(time.perf_counter() - started, 1),
        "deleted_per_s": round(deleted / seconds) if seconds else None,
    }
    targets = {}
    for name in idle:
        quiet = percentiles([t.ms for t, _ in idle[name]])
        during = percentiles([t.ms for t, _ in busy[name]])
        ratio = round(during["p95"] / quiet["p95"], 2)
        figures[name] = {
            "idle_ms": quiet,
            "during_prune_ms": during,
            "requests_during_prune": len(busy[name]),
        }
        targets[f"{name}_p95_during_prune_over_idle"] = target(ratio, TARGET_RATIO)
    return {**figures, "targets": targets}


def _env(db_url: str, days: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")},
        "TRACKER_DATABASE_URL": db_url,
        "TRACKER_RETAIN_ITEMS_DAYS": str(days),
    }
