"""A decision on a pair as the pages and the API take it (tracker.usecases.reviews), on a real
PostgreSQL: the rules, the review with its audit row in one transaction, and the metric."""

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from tests.factories import add_queue_pair, analyst
from tracker import metrics
from tracker.storage import audit, reviews
from tracker.usecases import reviews as review_usecases
from tracker.usecases.reviews import DecisionRefused

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def decided(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The decisions counted by the metric."""
    counted: list[str] = []
    monkeypatch.setattr(metrics, "pair_decided", counted.append)
    return counted


def status(conn: psycopg.Connection, pair_id: int) -> str:
    row = conn.execute("SELECT status FROM pairs WHERE id = %s", (pair_id,)).fetchone()
    assert row is not None
    return str(row[0])


def audit_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, action, target, details FROM audit_log ORDER BY id"
    ).fetchall()


def review_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT pair_id, user_id, decision, reason FROM reviews").fetchall()


def test_a_decision_is_stored_with_its_audit_row_and_counted(
    conn: psycopg.Connection, decided: list[str]
) -> None:
    ana = analyst(conn)
    confirmed, rejected = add_queue_pair(conn, 0.9), add_queue_pair(conn, 0.8)
    review_usecases.decide(conn, confirmed, ana, "confirm", "  ", NOW)
    review_usecases.decide(conn, rejected, ana, "reject", "  not the same claim ", NOW, "api")
    assert (status(conn, confirmed), status(conn, rejected)) == ("confirmed", "rejected")
    assert sorted(review_rows(conn)) == [
        (confirmed, ana.id, "confirm", None),
        (rejected, ana.id, "reject", "not the same claim"),
    ]
    assert audit_rows(conn) == [
        (ana.email, "pair.confirm", f"pair:{confirmed}", {"reason": None}),
        (
            ana.email,
            "pair.reject",
            f"pair:{rejected}",
            {"reason": "not the same claim", "via": "api"},
        ),
    ]
    assert decided == ["confirm", "reject"]


def test_a_long_reason_is_cut(conn: psycopg.Connection, decided: list[str]) -> None:
    ana = analyst(conn)
    pair_id = add_queue_pair(conn, 0.9)
    review_usecases.decide(conn, pair_id, ana, "reject", "x" * 5000, NOW)
    [(_, _, _, reason)] = review_rows(conn)
    assert reason == "x" * review_usecases.MAX_REASON_CHARS


@pytest.mark.parametrize(
    ("decision", "reason", "message"),
    [
        ("maybe", "why not", "Choose confirm, reject or skip."),
        ("", None, "Choose confirm, reject or skip."),
        ("reject", None, "A rejection needs a reason."),
        ("reject", " \n ", "A rejection needs a reason."),
    ],
)
def test_a_decision_that_breaks_a_rule_writes_nothing(
    conn: psycopg.Connection, decided: list[str], decision: str, reason: str | None, message: str
) -> None:
    ana = analyst(conn)
    pair_id = add_queue_pair(conn, 0.9)
    with pytest.raises(DecisionRefused, match=message) as refused:
        review_usecases.decide(conn, pair_id, ana, decision, reason, NOW)
    assert refused.value.refusal == "invalid"
    assert status(conn, pair_id) == "suggested"
    assert (review_rows(conn), audit_rows(conn), decided) == ([], [], [])


def test_a_pair_gone_held_or_decided_is_refused(
    conn: psycopg.Connection, decided: list[str]
) -> None:
    ana, bo = analyst(conn), analyst(conn, "bo@example.org")
    held, done = add_queue_pair(conn, 0.9), add_queue_pair(conn, 0.8)
    assert reviews.claim(conn, held, bo.id, NOW)
    review_usecases.decide(conn, done, bo, "skip", None, NOW)
    review_usecases.decide(conn, done, bo, "confirm", None, NOW)
    before = (review_rows(conn), audit_rows(conn))
    for pair_id, refusal in [(held, "claimed"), (done, "decided"), (10**9, "missing")]:
        with pytest.raises(DecisionRefused) as refused:
            review_usecases.decide(conn, pair_id, ana, "confirm", None, NOW)
        assert refused.value.refusal == refusal
        assert str(refused.value) == review_usecases.REFUSALS[refusal]
    assert (review_rows(conn), audit_rows(conn)) == before
    assert status(conn, held) == "suggested"
    assert decided == ["skip", "confirm"]


def test_the_review_and_its_audit_row_commit_together(
    conn: psycopg.Connection, decided: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = analyst(conn)
    pair_id = add_queue_pair(conn, 0.9)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise psycopg.OperationalError("the audit log is unavailable")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(psycopg.OperationalError):
        review_usecases.decide(conn, pair_id, ana, "confirm", None, NOW)
    assert status(conn, pair_id) == "suggested"
    assert (review_rows(conn), decided) == ([], [])
