"""Retention: old items go in batches, and every category an analyst or the fact-check archive
needs survives; `tracker prune --dry-run` counts and deletes nothing; the beat task prunes."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.conftest import Endpoints, run_tracker
from tests.factories import (
    add_feed,
    add_item,
    add_pair,
    add_review,
    add_story,
    add_subscription,
    add_user,
)
from tests.workerenv import worker_tasks
from tracker.pipeline import retention
from tracker.storage import labels

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=400)
POLICY = retention.Policy(items_days=365, decisions_days=0, batch=2, pause_s=0)


def world(conn: psycopg.Connection) -> dict[str, int]:
    """One old item per reason to keep, old items with none, and new items; by name."""
    media, social = add_feed(conn, "courier"), add_feed(conn, "social", "social")
    factcheck, official = add_feed(conn, "checker", "factcheck"), add_feed(conn, "mod", "official")
    made = {name: add_item(conn, media, name, fetched_at=OLD) for name in (
        "suggested", "confirmed", "rejected reviewed", "rejected unreviewed",
        "in story", "labelled", "followed", "plain", "plain 2",
    )}  # fmt: skip
    made["social plain"] = add_item(conn, social, "social plain", fetched_at=OLD)
    made["fact-check"] = add_item(conn, factcheck, "fact-check", fetched_at=OLD)
    made["official"] = add_item(conn, official, "official", fetched_at=OLD)
    made["new"] = add_item(conn, media, "new", fetched_at=NOW - timedelta(days=3))
    made["new clarification"] = add_item(conn, factcheck, "new clarification", fetched_at=NOW)
    user = add_user(conn, "a@x.example", "analyst")
    add_pair(conn, made["suggested"], made["new clarification"], status="suggested")
    add_pair(conn, made["confirmed"], made["fact-check"], status="confirmed")
    reviewed = add_pair(conn, made["rejected reviewed"], made["official"], status="rejected")
    add_review(conn, reviewed, "reject", user_id=user, reason="other event", created_at=OLD)
    add_pair(conn, made["rejected unreviewed"], made["fact-check"], status="rejected")
    story = add_story(conn, "F-16s")
    conn.execute("UPDATE items SET story_id = %s WHERE id = %s", (story, made["in story"]))
    labels.add_item_label(conn, made["labelled"], "rumour", user)
    add_subscription(conn, "d@x.example", "story", item_id=made["followed"])
    conn.execute(
        "INSERT INTO audit_log (actor, action, created_at) "
        "VALUES ('a@x.example', 'pair.reject', %s)",
        (OLD,),
    )
    return made


DELETED = {"rejected unreviewed", "plain", "plain 2", "social plain"}


def remaining(conn: psycopg.Connection, made: dict[str, int]) -> set[str]:
    ids = {int(row[0]) for row in conn.execute("SELECT id FROM items")}
    return {name for name, item in made.items() if item in ids}


def test_a_pass_deletes_only_expired_items_nothing_keeps(conn: psycopg.Connection) -> None:
    made = world(conn)
    done = retention.prune(conn, POLICY, NOW)
    assert remaining(conn, made) == set(made) - DELETED
    assert done.items_deleted == len(DELETED) and done.finished
    # All twelve old items were read once, in batches of two.
    assert done.scanned == 12
    # The unreviewed rejected pair went with its rumour; the reviewed one and its review stay.
    assert [tuple(r) for r in conn.execute("SELECT status FROM pairs ORDER BY id")] == [
        ("suggested",),
        ("confirmed",),
        ("rejected",),
    ]
    assert conn.execute("SELECT count(*) FROM reviews").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)
    # A second pass finds nothing more.
    assert retention.prune(conn, POLICY, NOW).items_deleted == 0


def test_decisions_have_their_own_age_and_free_what_they_kept(conn: psycopg.Connection) -> None:
    made = world(conn)
    policy = retention.Policy(items_days=365, decisions_days=300, batch=100, pause_s=0)
    done = retention.prune(conn, policy, NOW)
    assert (done.reviews_deleted, done.audit_deleted) == (1, 1)
    # Without its review, the old rejected pair no longer keeps its rumour.
    assert remaining(conn, made) == set(made) - DELETED - {"rejected reviewed"}


def test_zero_days_keeps_everything(conn: psycopg.Connection) -> None:
    made = world(conn)
    forever = retention.Policy(items_days=0, decisions_days=0, batch=100, pause_s=0)
    assert retention.prune(conn, forever, NOW).items_deleted == 0
    assert remaining(conn, made) == set(made)


def test_the_dry_run_counts_each_reason_and_deletes_nothing(
    conn: psycopg.Connection, cli_env: dict[str, str]
) -> None:
    made = world(conn)
    shown = run_tracker("prune", "--dry-run", env=cli_env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "(TRACKER_RETAIN_ITEMS_DAYS=365): 12" in lines[0]
    kept = dict(line.rsplit(None, 1) for line in lines[2:7])
    assert {k.strip(): int(v) for k, v in kept.items()} == {
        "fact-check archive": 2,
        "in a story": 1,
        # The fact-check and the official statement are in pairs too.
        "in a pair": 5,
        "labelled": 1,
        "followed": 1,
    }
    assert "would delete 4 items" in shown.stdout
    assert remaining(conn, made) == set(made)
    pruned = run_tracker("prune", env=cli_env)
    assert pruned.returncode == 0, pruned.stderr
    assert "deleted 4 items (of 12 expired), 0 reviews and 0 audit rows" in pruned.stdout
    assert remaining(conn, made) == set(made) - DELETED


def test_the_beat_task_prunes(
    conn: psycopg.Connection, db_url: str, services: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = world(conn)
    with worker_tasks(db_url, services.broker_url, monkeypatch) as tasks:
        assert tasks.prune() == len(DELETED)
    assert remaining(conn, made) == set(made) - DELETED
