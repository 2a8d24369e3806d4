"""The review queue in a real browser: Debian's Chromium driven by Playwright, against the app
served by uvicorn on loopback with the test database."""

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pydantic import SecretStr

from tests.conftest import free_port
from tests.factories import PASSWORD, add_queue_pair, add_user, log_in_page
from tracker.config import Settings
from tracker.web.app import create_app

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The README's screenshots: taken here, so they show the pages as they are.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
XSS_TITLE = "<script>window.__pwned = 1; alert('title')</script> troops"
XSS_CONTENT = "<img src=x onerror=\"window.__pwned = 2; alert('content')\"> border"


class Served:
    """The app on a free loopback port, in a thread, for as long as the test runs."""

    def __init__(self, db_url: str) -> None:
        settings = Settings(database_url=SecretStr(db_url), secret_key=SecretStr("x" * 40))
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Served":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing: apt-get install -y chromium"
        # CI installs it (.ci/run), so there a missing browser is a failure, not a skip.
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def app_url(db_url: str) -> Iterator[str]:
    with Served(db_url) as served:
        yield served.url


@pytest.fixture
def page(browser: Browser, app_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=app_url)
    # Nothing leaves loopback: any other address is refused before it is requested.
    context.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(app_url) else route.abort(),
    )
    opened = context.new_page()
    yield opened
    context.close()


def status(db_url: str, pair_id: int) -> tuple[Any, ...]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT p.status, r.reason FROM pairs p LEFT JOIN reviews r ON r.pair_id = p.id "
            "AND r.undone_at IS NULL WHERE p.id = %s",
            (pair_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def claimed(db_url: str) -> set[int]:
    with psycopg.connect(db_url) as conn:
        found = conn.execute("SELECT id FROM pairs WHERE claimed_by IS NOT NULL").fetchall()
    return {int(row[0]) for row in found}


def test_an_analyst_works_the_queue_by_keyboard(page: Page, db_url: str) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    first = add_queue_pair(db_url, 0.9)
    second = add_queue_pair(db_url, 0.8)
    third = add_queue_pair(db_url, 0.7)
    log_in_page(page, "ana@newsroom.example")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "queue.png"))

    expect(page.locator("article.pair.current")).to_have_id(f"pair-{first}")
    page.keyboard.press("j")
    expect(page.locator("article.pair.current")).to_have_id(f"pair-{second}")
    expect(page.locator(f"#pair-{second}")).to_have_class(re.compile(r"\bclaimed\b"))
    assert claimed(db_url) == {second}, "moving to a pair claims it (and frees the last one)"
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(page.locator("article.pair.current")).to_have_id(f"pair-{second}")

    page.keyboard.press("a")  # confirm, in place
    expect(page.locator(f"#pair-{second}")).to_have_count(0)
    expect(page.locator("#queue-status")).to_contain_text("confirm")
    assert status(db_url, second) == ("confirmed", None)
    expect(page.locator("article.pair.current")).to_have_id(f"pair-{third}")

    page.keyboard.press("r")  # reject: the reason field takes the typing
    expect(page.locator(f"#pair-{third} input[name=reason]")).to_be_focused()
    page.keyboard.type("a different event")
    page.keyboard.press("Enter")
    expect(page.locator(f"#pair-{third}")).to_have_count(0)
    assert status(db_url, third) == ("rejected", "a different event")

    page.reload()  # the decided pairs have left the queue for good
    expect(page.locator("article.pair")).to_have_count(1)
    page.keyboard.press("u")  # undo the rejection: the pair comes back
    expect(page.locator(f"#pair-{third}")).to_have_count(1)
    assert status(db_url, third) == ("suggested", None)

    # Undo reloads the page: keys reach the script only once it has loaded again.
    page.wait_for_load_state("load")
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()


def test_confirming_with_the_plain_form_works_without_javascript(
    browser: Browser, app_url: str, db_url: str
) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(db_url, 0.9)
    context = browser.new_context(base_url=app_url, java_script_enabled=False)
    try:
        page = context.new_page()
        log_in_page(page, "ana@newsroom.example")
        page.click(f"#pair-{pair} button.confirm")
        page.wait_for_url("**/?*")
        expect(page.locator(f"#pair-{pair}")).to_have_count(0)
        assert status(db_url, pair) == ("confirmed", None)
    finally:
        context.close()


def test_markup_in_a_feed_items_title_and_content_renders_inert(page: Page, db_url: str) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(db_url, 0.9, rumour=XSS_TITLE, clarification=XSS_CONTENT)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in_page(page, "ana@newsroom.example")
    rumour = page.locator(f"#pair-{pair} .side-rumour .item-title")
    expect(rumour).to_contain_text("<script>window.__pwned = 1;")
    clarification = page.locator(f"#pair-{pair} .side-clarification .item-title")
    expect(clarification).to_contain_text("<img src=x onerror=")
    page.wait_for_timeout(300)  # give an onerror handler the time it would need to fire
    assert dialogs == []
    assert page.evaluate("typeof window.__pwned") == "undefined"
    scripts = page.eval_on_selector_all("script", "els => els.map(e => e.getAttribute('src'))")
    assert scripts == ["/static/review.js"]
    assert page.locator("img").count() == 0


def test_a_post_without_the_csrf_token_is_refused(page: Page, db_url: str) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(db_url, 0.9)
    log_in_page(page, "ana@newsroom.example")
    # The session cookie goes along (same browser context); only the token is missing.
    response = page.request.post(f"/pairs/{pair}/decision", form={"decision": "confirm"})
    assert response.status == 403
    from_page = page.evaluate(
        """id => fetch('/pairs/' + id + '/decision', {method: 'POST',
               headers: {'Content-Type': 'application/x-www-form-urlencoded'},
               body: 'decision=confirm'}).then(r => r.status)""",
        pair,
    )
    assert from_page == 403
    assert status(db_url, pair) == ("suggested", None)


def test_the_pair_page_takes_the_queues_keys_and_keeps_its_history(page: Page, db_url: str) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(db_url, 0.9)
    second = add_queue_pair(db_url, 0.8)
    log_in_page(page, "ana@newsroom.example")
    page.click(f"#pair-{pair} a.pair-link")
    page.wait_for_url(f"**/pairs/{pair}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pair.png"), full_page=True)
    page.click("a.story-link")
    page.wait_for_url("**/stories/*")
    page.screenshot(path=str(SCREENSHOTS / "story.png"), full_page=True)
    page.go_back()
    page.keyboard.press("a")
    expect(page.locator("p.notice")).to_have_text(f"Pair {pair} confirmed.")
    expect(page.locator(".history tbody tr")).to_have_count(1)
    assert status(db_url, pair) == ("confirmed", None)
    page.keyboard.press("u")
    expect(page.locator("p.notice")).to_contain_text(f"Undone: pair {pair} confirmed.")
    assert status(db_url, pair) == ("suggested", None)

    page.goto(f"/pairs/{second}")
    page.keyboard.press("r")
    expect(page.locator("#reject-form input[name=reason]")).to_be_focused()
    page.keyboard.type("different events")
    page.keyboard.press("Enter")
    expect(page.locator("p.notice")).to_have_text(f"Pair {second} rejected.")
    assert status(db_url, second) == ("rejected", "different events")


def test_the_api_page_renders_every_route_under_our_csp(page: Page, db_url: str) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security" in m.text else None)
    log_in_page(page, "ana@newsroom.example")
    page.goto("/api/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 12
    expect(page.locator("#swagger-ui")).to_contain_text("/api/v1/pairs/{pair_id}/decision")
    assert problems == []


def test_follow_subscribe_and_edit_a_feed_in_the_browser(page: Page, db_url: str) -> None:
    add_user(db_url, "boss@newsroom.example", "admin")
    pair = add_queue_pair(db_url, 0.9)
    log_in_page(page, "boss@newsroom.example")
    # Following stays on the queue and says what the follower will get.
    page.click(f"#pair-{pair} form.follow button")
    page.wait_for_url("**/?*")
    expect(page.locator("p.notice")).to_contain_text("you will get an email when a clarification")
    # A subscription from the Alerts form is listed with its rule.
    page.goto("/alerts")
    page.fill("textarea[name=keywords]", "F-16, Zaporizhzhia")
    page.click("form.subscribe-form button[type=submit]")
    expect(page.locator("p.notice")).to_be_visible()
    expect(page.locator("table")).to_contain_text("Zaporizhzhia")
    # The feed edit form holds the whole URL; the list shows its key masked.
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE feeds SET url = url || '?api_key=S3cret-K3y' WHERE title = 'Courier'")
        row = conn.execute("SELECT id FROM feeds WHERE title = 'Courier'").fetchone()
    assert row is not None
    page.goto("/feeds")
    expect(page.locator("table.feeds")).to_contain_text("api_key=***")
    expect(page.locator("table.feeds")).not_to_contain_text("S3cret-K3y")
    page.click(f'a[href="/feeds/{row[0]}/edit"]')
    url = page.locator("input[name=url]")
    expect(url).to_have_value(re.compile(r"api_key=S3cret-K3y$"))
    url.fill(url.input_value().replace("S3cret-K3y", "N3w-K3y"))
    page.fill("input[name=title]", "Daily Courier")
    page.click("form.feed-edit button[type=submit]")
    page.wait_for_url("**/feeds")
    expect(page.locator("p.notice")).to_have_text(f"Feed {row[0]} saved.")
    expect(page.locator("table.feeds")).to_contain_text("Daily Courier")
    with psycopg.connect(db_url) as conn:
        saved = conn.execute("SELECT url FROM feeds WHERE id = %s", row).fetchone()
    assert saved is not None and saved[0].endswith("api_key=N3w-K3y")


def test_a_mismatched_new_password_is_refused_in_place_and_a_change_is_announced(
    page: Page, db_url: str
) -> None:
    add_user(db_url, "pat@newsroom.example", "analyst")
    log_in_page(page, "pat@newsroom.example")
    page.goto("/account/password")
    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", "a-long-new-secret-1")
    page.fill("input[name=new_password_again]", "a-long-new-secret-2")
    page.click("form[action='/account/password'] button[type=submit]")
    # The browser refused to send it: still here, with everything typed kept.
    again = page.locator("input[name=new_password_again]")
    assert again.evaluate("input => input.validationMessage") == "The two new passwords differ."
    expect(page.locator("input[name=current_password]")).to_have_value(PASSWORD)
    expect(page.locator("input[name=new_password]")).to_have_value("a-long-new-secret-1")
    again.fill("a-long-new-secret-1")
    page.click("form[action='/account/password'] button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("p.notice")).to_contain_text("Your password is changed")


def test_an_analyst_spot_checks_automatic_confirmations(page: Page, db_url: str) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    wrong, right = add_queue_pair(db_url, 0.99), add_queue_pair(db_url, 0.99)
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE pairs SET status = 'confirmed'")  # by their score, as the worker does
    log_in_page(page, "ana@newsroom.example")
    page.goto("/pairs")
    page.click("text=today's spot-check")
    page.wait_for_url("**/pairs?status=spot-check")
    expect(page.locator("h1")).to_have_text("Today's spot-check")
    expect(page.locator("article.pair")).to_have_count(2)
    page.click(f"#pair-{wrong} a.pair-link")
    page.wait_for_url(f"**/pairs/{wrong}")
    page.keyboard.press("r")
    page.keyboard.type("a different event")
    page.keyboard.press("Enter")
    expect(page.locator("p.notice")).to_have_text(f"Pair {wrong} rejected.")
    assert status(db_url, wrong) == ("rejected", "a different event")
    page.goto(f"/pairs/{right}")
    page.click("#confirm-form button[type=submit]")
    expect(page.locator("p.notice")).to_have_text(f"Pair {right} confirmed.")
    page.goto("/pairs?status=auto")
    expect(page.locator("p.empty")).to_have_text("No pairs here.")
