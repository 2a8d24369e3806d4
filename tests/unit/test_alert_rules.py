from datetime import UTC, datetime, time
from email import message_from_bytes, policy

from itsdangerous import URLSafeSerializer

from tracker.pipeline.alert_fanout import keyword_match, matches
from tracker.pipeline.alert_mail import (
    UNSUBSCRIBE_SALT,
    MailContext,
    build,
    subscription_from_token,
    unsubscribe_token,
)
from tracker.pipeline.alerts import digest_slot
from tracker.storage.outbox import OutboxRow
from tracker.storage.subscriptions import AlertItem, Subscription

SECRET = "k" * 40
NOW = datetime(2026, 3, 29, 6, 30, tzinfo=UTC)


def sub(**changes: object) -> Subscription:
    fields: dict[str, object] = {
        "id": 7,
        "user_id": None,
        "email": "desk@example.org",
        "kind": "rumours",
        "keywords": [],
        "tags": [],
        "feed_kinds": [],
        "languages": [],
        "min_probability": 0.5,
        "delivery": "immediate",
        "digest_at": None,
        "time_zone": "UTC",
        "story_id": None,
        "item_id": None,
        "last_digest_at": NOW,
        "unsubscribed_at": None,
        "created_at": NOW,
    }
    fields.update(changes)
    return Subscription(**fields)  # type: ignore[arg-type]


def item(**changes: object) -> AlertItem:
    fields: dict[str, object] = {
        "id": 1,
        "title": "Știri: avioanele F-16 zboară peste Ucraina",
        "summary": "Piloți români văzuți la Valea Verde.",
        "url": "https://stiri.example/1",
        "language": "ro",
        "feed_kind": "media",
        "feed_title": "Știri Rapide",
        "feed_tags": ["romania", "defence"],
        "story_id": None,
        "seen_at": NOW,
    }
    fields.update(changes)
    return AlertItem(**fields)  # type: ignore[arg-type]


def test_keywords_match_from_a_word_start_ignoring_case_and_accents() -> None:
    text = "Știri: avioanele F-16s zboară peste Ucraina, award"
    assert keyword_match(["stiri"], text)
    assert keyword_match(["Avioanele f-16"], text)
    assert keyword_match(["УКРАИНА", "zboara"], text)
    assert keyword_match(["ucrain"], text)
    assert not keyword_match(["avion"], text)
    assert not keyword_match(["war"], text)
    assert not keyword_match(["f-16 peste"], text)


def test_every_filter_that_is_set_must_match() -> None:
    assert matches(sub(), item())
    assert matches(sub(keywords=["valea verde"], tags=["defence"], languages=["ro"]), item())
    assert not matches(sub(tags=["health"]), item())
    assert not matches(sub(feed_kinds=["official"]), item())
    assert not matches(sub(languages=["en"]), item())
    assert matches(sub(languages=["en"]), item(language="en-GB"))


def test_an_hourly_digest_is_due_at_the_top_of_each_hour() -> None:
    assert digest_slot(sub(delivery="hourly"), NOW) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)


def test_a_daily_digest_follows_the_local_time_across_daylight_saving() -> None:
    bucharest = sub(delivery="daily", digest_at=time(8, 0), time_zone="Europe/Bucharest")
    # 29 March 2026: Romania moved to summer time (UTC+3) at 04:00 local, so 08:00 local was
    # 06:00 UTC the day before and 05:00 UTC that day.
    before_eight = datetime(2026, 3, 29, 4, 30, tzinfo=UTC)
    assert digest_slot(bucharest, before_eight) == datetime(2026, 3, 28, 6, 0, tzinfo=UTC)
    assert digest_slot(bucharest, NOW) == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)


def test_an_unsubscribe_token_names_its_subscription_and_cannot_be_forged() -> None:
    token = unsubscribe_token(SECRET, 42, 3)
    assert subscription_from_token(SECRET, token) == (42, 3)
    assert subscription_from_token("another key" * 4, token) is None
    assert subscription_from_token(SECRET, token[:-2] + "xx") is None
    assert subscription_from_token(SECRET, "not-a-token") is None
    # A link mailed before generations named the bare id: the first generation.
    legacy = URLSafeSerializer(SECRET, salt=UNSUBSCRIBE_SALT).dumps(42)
    assert subscription_from_token(SECRET, legacy) == (42, 0)
    for malformed in ([42], [42, True], ["42", 1], {"id": 42}):
        signed = URLSafeSerializer(SECRET, salt=UNSUBSCRIBE_SALT).dumps(malformed)
        assert subscription_from_token(SECRET, signed) is None


def rumour_row(title: str, **changes: object) -> OutboxRow:
    fields: dict[str, object] = {
        "id": 3,
        "dedupe_key": "rumour:7:item:1",
        "recipient": "desk@example.org",
        "subject": f"New rumour: {title}",
        "body_text": "",
        "attempts": 1,
        "kind": "rumour",
        "subscription_id": 7,
        "payload": {
            "title": title,
            "summary": "<script>alert(1)</script> seen near the border",
            "url": "javascript:alert(1)",
            "source": "Daily Courier",
            "source_kind": "media",
            "probability": 0.91,
            "seen_at": NOW.isoformat(),
        },
    }
    fields.update(changes)
    return OutboxRow(**fields)  # type: ignore[arg-type]


def test_an_alert_has_text_and_escaped_html_bodies_and_one_click_unsubscribe_headers() -> None:
    ctx = MailContext("t@example.org", "https://tracker.example", SECRET)
    message = build(rumour_row("F-16s <b>over</b> Ukraine"), ctx)
    parsed = message_from_bytes(bytes(message), policy=policy.default)
    token = unsubscribe_token(SECRET, 7, 0)
    assert parsed["Subject"] == "New rumour: F-16s <b>over</b> Ukraine"
    assert parsed["List-Unsubscribe"].strip() == f"<https://tracker.example/unsubscribe/{token}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "F-16s <b>over</b> Ukraine" in text and "Score: 0.91" in text
    assert "Daily Courier" in text and "https://tracker.example/" in text
    assert "&lt;b&gt;over&lt;/b&gt;" in html and "<script>" not in html
    assert "javascript:" not in html and "javascript:" not in text


def test_the_same_row_always_gets_the_same_message_id() -> None:
    ctx = MailContext("t@example.org", None, None)
    first = build(rumour_row("x"), ctx)["Message-ID"]
    assert first == build(rumour_row("x", id=99, attempts=5), ctx)["Message-ID"]
    assert first != build(rumour_row("x", dedupe_key="other"), ctx)["Message-ID"]


def test_item_text_cannot_add_headers_to_an_alert() -> None:
    row = rumour_row("Breaking\r\nBcc: victim@example.com\nX-Evil: 1")
    message = build(row, MailContext("t@example.org", None, None))
    assert message["Bcc"] is None and message["X-Evil"] is None
    raw = bytes(message).decode()
    assert "\nBcc:" not in raw and "\nX-Evil" not in raw
    assert "List-Unsubscribe" not in raw  # no public URL configured: no link to give
