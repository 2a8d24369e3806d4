"""`tracker alerts subscribe | list | remove | outbox` against the test database."""

import json

import psycopg
import pytest

from tests.conftest import run_tracker
from tests.factories import add_story, add_user
from tracker.storage import outbox

pytestmark = pytest.mark.integration


def test_subscriptions_are_added_listed_and_removed_from_the_command_line(
    conn: psycopg.Connection, cli_env: dict[str, str]
) -> None:
    story = add_story(conn, "F-16s")
    add_user(conn, "ops@x.org", "admin")
    added = [
        run_tracker(
            "alerts", "subscribe", "Desk@Example.org", "--keyword", "F-16", "--keyword",
            "avioane militare", "--tag", "defence", "--feed-kind", "media", "--language", "RO-ro",
            "--min-score", "0.7", "--digest", "daily", "--at", "07:30", "--tz", "Europe/Bucharest",
            env=cli_env,
        ),
        run_tracker("alerts", "subscribe", "desk@example.org", "--follow-story", str(story),
                    env=cli_env),
        run_tracker("alerts", "subscribe", "ops@x.org", "--ops", "--digest", "hourly", env=cli_env),
    ]  # fmt: skip
    assert [r.returncode for r in added] == [0, 0, 0], [r.stderr for r in added]
    assert "daily at 07:30 Europe/Bucharest" in added[0].stdout
    listed = run_tracker("alerts", "list", "--json", env=cli_env)
    subs = json.loads(listed.stdout)
    assert [(s["email"], s["kind"]) for s in subs] == [
        ("desk@example.org", "rumours"),
        ("desk@example.org", "story"),
        ("ops@x.org", "ops"),
    ]
    first = subs[0]
    assert first["keywords"] == ["F-16", "avioane militare"] and first["languages"] == ["ro"]
    assert (first["delivery"], first["digest_at"], first["min_probability"]) == (
        "daily",
        "07:30",
        pytest.approx(0.7),
    )
    removed = run_tracker("alerts", "remove", str(first["id"]), env=cli_env)
    assert removed.returncode == 0
    assert run_tracker("alerts", "remove", str(first["id"]), env=cli_env).returncode == 1
    remaining = json.loads(run_tracker("alerts", "list", "--json", env=cli_env).stdout)
    assert [s["kind"] for s in remaining] == ["story", "ops"]
    text = run_tracker("alerts", "list", "--all", env=cli_env).stdout
    assert "(removed)" in text


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--tz", "Mars/Olympus"], "unknown time zone"),
        (["--digest", "daily", "--at", "25:00"], "--at wants HH:MM"),
        (["--language", "english!"], "is not a language code"),
        (["--ops"], "ops alerts are for admins"),
        (["--follow-story", "999"], "no such story"),
    ],
)
def test_a_bad_subscription_is_refused_with_a_clear_message(
    cli_env: dict[str, str], args: list[str], problem: str
) -> None:
    result = run_tracker("alerts", "subscribe", "desk@example.org", *args, env=cli_env)
    assert result.returncode == 1 and problem in result.stderr


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--digest", "weekly"], "'weekly' is not one of immediate,"),
        (["--feed-kind", "media", "--feed-kind", "blog"], "'blog' is not one of official,"),
    ],
)
def test_a_bad_choice_is_a_usage_error_naming_the_choices(
    cli_env: dict[str, str], args: list[str], problem: str
) -> None:
    result = run_tracker("alerts", "subscribe", "desk@example.org", *args, env=cli_env)
    assert result.returncode == 2 and problem in result.stderr


def test_failed_alerts_are_visible_in_the_outbox_listing(
    conn: psycopg.Connection, cli_env: dict[str, str]
) -> None:
    outbox.enqueue(conn, "ok", "a@example.org", "Sent one", "body")
    outbox.enqueue(conn, "bad", "b@example.org", "Failing one", "body")
    conn.execute("UPDATE alert_outbox SET status = 'sent' WHERE dedupe_key = 'ok'")
    conn.execute(
        "UPDATE alert_outbox SET attempts = 3, last_error = 'SMTPConnectError: refused' "
        "WHERE dedupe_key = 'bad'"
    )
    everything = json.loads(run_tracker("alerts", "outbox", "--json", env=cli_env).stdout)
    assert [e["subject"] for e in everything] == ["Failing one", "Sent one"]
    failed = json.loads(run_tracker("alerts", "outbox", "--failed", "--json", env=cli_env).stdout)
    assert [(e["subject"], e["attempts"], e["last_error"]) for e in failed] == [
        ("Failing one", 3, "SMTPConnectError: refused")
    ]
    text = run_tracker("alerts", "outbox", "--failed", env=cli_env).stdout
    assert "3 tries: SMTPConnectError: refused" in text
