"""Every page at a phone's width (390x844 in Debian's Chromium): the document must not be wider
than the viewport, so nothing needs horizontal scrolling. Tables that cannot fit scroll inside
themselves."""

from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Browser, Page

from tests.browser.test_review_browser import ARTIFACTS, app_url, browser  # noqa: F401
from tests.factories import add_queue_pair, add_user, log_in_page
from tracker.pipeline.alert_mail import unsubscribe_token
from tracker.storage import outbox, subscriptions
from tracker.storage.subscriptions import Rule

pytestmark = pytest.mark.integration

PHONE = {"width": 390, "height": 844}
ADMIN = "admin-with-a-rather-long-address@newsroom.example"
# Long words are what push a narrow page wide: terms, tags, URLs, outlet names.
LONG_TERMS = ("disinformation-campaign", "counter-offensive", "Zaporizhzhia", "F-16s")


@pytest.fixture
def phone(browser: Browser, app_url: str) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(base_url=app_url, viewport=PHONE)
    yield context.new_page()
    context.close()


def seeded(db_url: str) -> dict[str, int]:
    add_user(db_url, ADMIN, "admin")
    pair = add_queue_pair(
        db_url,
        0.91,
        rumour="Romanian F-16s are secretly flying missions over Ukraine, says a channel",
        clarification="Ministry of National Defence: the report about F-16 missions is false",
        terms=LONG_TERMS,
        tags=("defence", "romania", "ukraine"),
    )
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """SELECT p.rumour_id, r.story_id, r.feed_id FROM pairs p
               JOIN items r ON r.id = p.rumour_id WHERE p.id = %s""",
            (pair,),
        ).fetchone()
        assert row is not None
        conn.execute(
            "UPDATE feeds SET url = url || '?page=1&format=rss2&category=defence-and-security'"
        )
        subscription = subscriptions.subscribe(
            conn, Rule(email=ADMIN, keywords=["F-16", "Zaporizhzhia"], tags=["defence"])
        )
        outbox.enqueue(conn, "k1", ADMIN, "New rumour: Romanian F-16s over Ukraine", "body")
    return {
        "pair": pair,
        "item": row[0],
        "story": row[1],
        "feed": row[2],
        "subscription": subscription,
    }


def test_no_page_is_wider_than_a_phone(phone: Page, db_url: str) -> None:
    ids = seeded(db_url)
    log_in_page(phone, ADMIN)
    pages = [
        "/",
        "/?status=all",
        "/pairs",
        f"/pairs/{ids['pair']}",
        "/items",
        "/items?q=F-16",
        f"/items/{ids['item']}",
        f"/stories/{ids['story']}",
        "/feeds",
        f"/feeds/{ids['feed']}/edit",
        "/models",
        "/alerts",
        "/alerts/outbox",
        "/account/password",
        "/api/docs",
        "/pairs?status=auto",
        "/pairs?status=spot-check",
        # The page a reader reaches from an alert email.
        "/unsubscribe/" + unsubscribe_token("x" * 40, ids["subscription"], 0),
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    wide = {}
    for path in pages:
        response = phone.goto(path)
        assert response is not None and response.status == 200, path
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            wide[path] = width
            name = path.strip("/").replace("/", "-").replace("?", "-") or "queue"
            phone.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)
    # The error page, and the login page once logged out.
    missing = phone.goto("/items/999999999")
    assert missing is not None and missing.status == 404
    wide_after = {"404": phone.evaluate("document.documentElement.scrollWidth")}
    phone.context.clear_cookies()
    login = phone.goto("/login")
    assert login is not None and login.status == 200
    wide_after["/login"] = phone.evaluate("document.documentElement.scrollWidth")
    wide |= {page: width for page, width in wide_after.items() if width > PHONE["width"]}
    assert wide == {}, f"wider than {PHONE['width']} px: {wide}"
