"""Log lines: JSON or key=value by setting, and no secret in either."""

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from tracker import logs

DB_URL = "postgresql://tracker:s3cret-Pa55word@db.internal:5432/tracker"
BROKER_URL = "redis://:other-s3cret@redis.internal:6379/0"
SECRETS = ("s3cret-Pa55word", "other-s3cret", "tok-123456")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_json_lines_from_structlog_and_stdlib_carry_no_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")
    structlog.get_logger("tracker.test").info("connecting", url=DB_URL, token="tok-123456")
    logging.getLogger("celery.worker").warning("Connected to %s", BROKER_URL)
    try:
        raise ConnectionError(f"cannot reach {DB_URL}")
    except ConnectionError:
        structlog.get_logger("tracker.test").exception("failed")
    err = capsys.readouterr().err
    for secret in SECRETS:
        assert secret not in err
    first, second, third = lines(err)
    assert first["event"] == "connecting"
    assert first["url"] == "postgresql://tracker:***@db.internal:5432/tracker"
    assert first["token"] == "***"
    assert first["level"] == "info" and "timestamp" in first
    assert second["event"] == "Connected to redis://:***@redis.internal:6379/0"
    assert second["logger"] == "celery.worker"
    assert "ConnectionError: cannot reach postgresql://tracker:***@db.internal" in str(
        third["exception"]
    )


def test_console_lines_are_key_value_and_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("console")
    structlog.get_logger("tracker.test").info("connecting", url=DB_URL)
    err = capsys.readouterr().err
    assert "event='connecting'" in err
    assert "s3cret-Pa55word" not in err
    assert "tracker:***@db.internal" in err


def test_configuring_twice_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("console")
    logs.configure("json")
    logging.getLogger("x").warning("once")
    assert len(lines(capsys.readouterr().err)) == 1


def test_celerys_routine_lines_show_only_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    routine = logging.getLogger("celery.app.trace")
    logs.configure("json")
    routine.info("Task rt.fetch_feed[1] succeeded in 0.1s: 5")
    routine.error("Task rt.fetch_feed[2] raised unexpected: boom")
    logging.getLogger("tracker.pipeline.refresh").info("feed refreshed")
    shown = [line["event"] for line in lines(capsys.readouterr().err)]
    assert shown == ["Task rt.fetch_feed[2] raised unexpected: boom", "feed refreshed"]
    logs.configure("json", "debug")
    routine.info("Task rt.fetch_feed[3] succeeded in 0.1s: 5")
    assert len(lines(capsys.readouterr().err)) == 1
    logs.configure("json")
