"""Issue 21, every form of the web UI in a real browser: a refused submission shows why and
keeps what was typed (never a password), and every action that succeeds says so."""

import re
from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.test_review_browser import app_url, browser, page  # noqa: F401
from tests.factories import (
    PASSWORD,
    T0,
    add_feed,
    add_item,
    add_queue_pair,
    add_story,
    add_user,
    log_in_page,
)
from tracker.storage import models

pytestmark = pytest.mark.integration

ADMIN = "boss@newsroom.example"
ANALYST = "ana@newsroom.example"
GOOD_OPML = b"""<?xml version="1.0"?><opml version="2.0"><head><title>t</title></head><body>
<outline text="Gazette" type="rss" xmlUrl="https://gazette.example/rss"/></body></opml>"""
BROKEN_OPML = b'<opml><body><outline xmlUrl="https://a.example/f">'


@pytest.fixture
def as_admin(page: Page, db_url: str) -> None:  # noqa: F811
    """`page`, logged in as an admin."""
    add_user(db_url, ADMIN, "admin")
    log_in_page(page, ADMIN)


@pytest.fixture
def as_analyst(page: Page, db_url: str) -> None:  # noqa: F811
    """`page`, logged in as an analyst."""
    add_user(db_url, ANALYST, "analyst")
    log_in_page(page, ANALYST)


def error(on: Page) -> Locator:
    return on.locator("p.error[role=alert]")


def notice(on: Page) -> Locator:
    return on.locator("p.notice[role=status]")


def refused_by_the_browser(field: Locator) -> None:
    """The browser would not send the form: the field is invalid and says why."""
    assert field.evaluate("input => input.validity.valid") is False
    assert field.evaluate("input => input.validationMessage") != ""


def test_login_keeps_the_email_never_the_password_and_logging_out_says_so(
    page: Page,  # noqa: F811
    db_url: str,
) -> None:
    add_user(db_url, ANALYST, "analyst")
    page.goto("/login")
    page.fill("input[name=email]", ANALYST)
    page.fill("input[name=password]", "not the password")
    page.click("form[action='/login'] button[type=submit]")
    expect(error(page)).to_have_text("Wrong email or password.")
    expect(page.locator("input[name=email]")).to_have_value(ANALYST)
    expect(page.locator("input[name=password]")).to_have_value("")
    assert "not the password" not in page.content()
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    page.click("form[action='/logout'] button")
    page.wait_for_url("**/login")
    expect(notice(page)).to_have_text("You are logged out.")
    page.reload()  # said once
    expect(notice(page)).to_have_count(0)


def test_adding_a_feed_keeps_the_form_when_refused_and_names_the_feed_added(
    page: Page,  # noqa: F811
    as_admin: None,
) -> None:
    page.goto("/feeds")
    form = page.locator("form.feed-add")
    form.locator("input[name=url]").fill("https://new-outlet.example/rss")
    form.locator("select[name=kind]").select_option("official")
    form.locator("input[name=title]").fill("New Outlet")
    form.locator("input[name=language]").fill("english!")
    form.locator("input[name=tags]").fill("defence, ro")
    form.locator("button[type=submit]").click()
    expect(error(page)).to_contain_text("is not a language code")
    expect(form.locator("input[name=url]")).to_have_value("https://new-outlet.example/rss")
    expect(form.locator("select[name=kind]")).to_have_value("official")
    expect(form.locator("input[name=title]")).to_have_value("New Outlet")
    expect(form.locator("input[name=language]")).to_have_value("english!")
    expect(form.locator("input[name=tags]")).to_have_value("defence, ro")
    form.locator("input[name=language]").fill("ro")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/feeds")
    expect(notice(page)).to_contain_text("added: https://new-outlet.example/rss")
    expect(page.locator("table.feeds")).to_contain_text("New Outlet")


def test_editing_a_feed_keeps_the_form_when_refused_and_says_it_is_saved(
    page: Page,  # noqa: F811
    as_admin: None,
    db_url: str,
) -> None:
    feed = add_feed(db_url, "Courier")
    page.goto(f"/feeds/{feed}/edit")
    page.fill("form.feed-edit input[name=title]", "Daily Courier")
    page.fill("form.feed-edit input[name=language]", "xx-not-a-code!")
    page.click("form.feed-edit button[type=submit]")
    expect(error(page)).to_contain_text("is not a language code")
    expect(page.locator("form.feed-edit input[name=title]")).to_have_value("Daily Courier")
    expect(page.locator("form.feed-edit input[name=language]")).to_have_value("xx-not-a-code!")
    page.fill("form.feed-edit input[name=language]", "en")
    page.click("form.feed-edit button[type=submit]")
    page.wait_for_url("**/feeds")
    expect(notice(page)).to_have_text(f"Feed {feed} saved.")


def test_a_refused_opml_import_keeps_the_kind_chosen_and_an_import_is_counted(
    page: Page,  # noqa: F811
    as_admin: None,
) -> None:
    page.goto("/feeds")
    form = page.locator("form.feed-import")
    form.locator("input[name=file]").set_input_files(
        {"name": "list.opml", "mimeType": "text/x-opml", "buffer": BROKEN_OPML}
    )
    form.locator("select[name=kind]").select_option("official")
    form.locator("button[type=submit]").click()
    expect(error(page)).to_contain_text("Nothing imported:")
    expect(error(page)).to_contain_text("Choose the file again.")
    # A browser never fills a file field in again; the rest of the form is as it was.
    expect(form.locator("select[name=kind]")).to_have_value("official")
    form.locator("input[name=file]").set_input_files(
        {"name": "list.opml", "mimeType": "text/x-opml", "buffer": GOOD_OPML}
    )
    form.locator("button[type=submit]").click()
    expect(notice(page)).to_contain_text("OPML imported: 1 added")
    expect(page.locator("table.feeds")).to_contain_text("Gazette")


def test_a_refused_subscription_keeps_every_field_and_a_saved_one_is_announced(
    page: Page,  # noqa: F811
    as_analyst: None,
    db_url: str,
) -> None:
    page.goto("/alerts")
    form = page.locator("form.subscribe-form")
    form.locator("textarea[name=keywords]").fill("F-16, Zaporizhzhia")
    form.locator("input[name=tags]").fill("defence")
    form.locator("input[name=feed_kind][value=official]").check()
    form.locator("input[name=languages]").fill("ro, uk")
    form.locator("input[name=min_score]").fill("0.7")
    form.locator("input[name=delivery][value=daily]").check()
    form.locator("input[name=at]").fill("07:30")
    form.locator("input[name=tz]").fill("Mars/Olympus_Mons")
    form.locator("button[type=submit]").click()
    expect(error(page)).to_contain_text("Mars/Olympus_Mons")
    expect(form.locator("textarea[name=keywords]")).to_have_value("F-16, Zaporizhzhia")
    expect(form.locator("input[name=tags]")).to_have_value("defence")
    expect(form.locator("input[name=feed_kind][value=official]")).to_be_checked()
    expect(form.locator("input[name=languages]")).to_have_value("ro, uk")
    expect(form.locator("input[name=min_score]")).to_have_value("0.7")
    expect(form.locator("input[name=delivery][value=daily]")).to_be_checked()
    expect(form.locator("input[name=at]")).to_have_value("07:30")
    expect(form.locator("input[name=tz]")).to_have_value("Mars/Olympus_Mons")
    form.locator("input[name=tz]").fill("Europe/Bucharest")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/alerts")
    expect(notice(page)).to_have_text(re.compile(r"^Subscription \d+ saved\.$"))
    page.click("table.subscriptions button.reject")
    expect(notice(page)).to_contain_text("removed; nothing more will be sent for it")


@pytest.fixture
def two_stories(db_url: str) -> Iterator[tuple[int, int, list[int]]]:
    courier, herald = add_feed(db_url, "Courier"), add_feed(db_url, "Herald")
    a = add_story(db_url, "F-16s fly secret missions", T0)
    b = add_story(db_url, "F-16 missions, again", T0)
    a_items = [
        add_item(db_url, feed, title, "", "en", T0, story_id=a)
        for feed, title in ((courier, "F-16s fly secret missions"), (herald, "Secret missions"))
    ]
    add_item(db_url, herald, "F-16 missions, again", "", "en", T0, story_id=b)
    add_user(db_url, ANALYST, "analyst")
    yield a, b, a_items


def test_a_refused_merge_keeps_the_number_typed_and_a_merge_is_announced(
    page: Page,  # noqa: F811
    two_stories: tuple[int, int, list[int]],
) -> None:
    a, b, _ = two_stories
    log_in_page(page, ANALYST)
    page.goto(f"/stories/{a}")
    source = page.locator("form.merge input[name=source]")
    for typed, why in (
        (a, "A story cannot be merged into itself."),
        (999, "There is no story 999."),
    ):
        source.fill(str(typed))
        page.click("form.merge button[type=submit]")
        expect(error(page)).to_have_text(why)
        expect(source).to_have_value(str(typed))
    source.fill(str(b))
    page.click("form.merge button[type=submit]")
    page.wait_for_url(f"**/stories/{a}")
    expect(notice(page)).to_have_text(f"Story {b} merged into story {a}.")
    expect(page.locator("table.story-items")).to_contain_text("F-16 missions, again")


def test_a_refused_split_keeps_the_ticks_and_a_split_is_announced(
    page: Page,  # noqa: F811
    two_stories: tuple[int, int, list[int]],
) -> None:
    a, _, items = two_stories
    log_in_page(page, ANALYST)
    page.goto(f"/stories/{a}")
    boxes = [page.locator(f"#split-form input[value='{i}']") for i in items]
    for box in boxes:
        box.check()
    page.click("#split-form button[type=submit]")
    expect(error(page)).to_have_text("A split must leave at least one item in this story.")
    for box in boxes:
        expect(box).to_be_checked()
    boxes[0].uncheck()
    page.click("#split-form button[type=submit]")
    page.wait_for_url(re.compile(r"/stories/\d+$"))
    new = int(page.url.rsplit("/", 1)[1])
    assert new != a
    expect(notice(page)).to_have_text(f"1 item moved out of story {a} into this new story {new}.")


def test_relabelling_an_item_says_so(
    page: Page,  # noqa: F811
    as_analyst: None,
    db_url: str,
) -> None:
    item = add_item(db_url, add_feed(db_url, "Courier"), "Troops at the border")
    page.goto(f"/items/{item}")
    page.select_option("form.relabel select[name=label]", "clarification")
    page.click("form.relabel button[type=submit]")
    page.wait_for_url(f"**/items/{item}")
    expect(notice(page)).to_have_text(f"Item {item} labelled clarification.")


def test_a_rejection_without_a_reason_is_refused_in_place(
    page: Page,  # noqa: F811
    as_analyst: None,
    db_url: str,
) -> None:
    pair = add_queue_pair(db_url, 0.9)
    page.goto(f"/pairs/{pair}")
    reason = page.locator("#reject-form input[name=reason]")
    reason.fill("   ")
    page.click("#reject-form button[type=submit]")
    refused_by_the_browser(reason)
    assert reason.get_attribute("title") == "A rejection needs a reason."
    expect(page).to_have_url(re.compile(rf"/pairs/{pair}$"))
    expect(reason).to_have_value("   ")
    reason.fill("a different event")
    page.click("#reject-form button[type=submit]")
    expect(notice(page)).to_have_text(f"Pair {pair} rejected.")


def test_saving_a_view_is_refused_with_the_name_kept_and_saving_and_deleting_say_so(
    page: Page,  # noqa: F811
    as_analyst: None,
) -> None:
    page.goto("/?language=ro")
    name = page.locator("form.save-view input[name=name]")
    name.fill("   ")
    page.click("form.save-view button[type=submit]")
    refused_by_the_browser(name)
    # A filter the server does not take (a page made before, a hand-edited field): refused
    # there, with the queue, the reason and the name as typed.
    page.locator("form.save-view input[name=query]").evaluate(
        "input => { input.value = 'language=ro&score_min=7'; }"
    )
    name.fill("Romanian")
    page.click("form.save-view button[type=submit]")
    expect(page.locator("form.save-view + p.error")).to_have_text(
        "The view was not saved: the filters above are not understood."
    )
    # The filter's problem is named once, above.
    expect(page.get_by_text("score_min must be a number from 0 to 1.")).to_have_count(1)
    expect(name).to_have_value("Romanian")
    page.goto("/?language=ro")
    name.fill("Romanian")
    page.click("form.save-view button[type=submit]")
    page.wait_for_url("**/?language=ro")
    expect(notice(page)).to_have_text('View "Romanian" saved: it is listed above the queue.')
    expect(page.locator(".saved-view a")).to_have_text("Romanian")
    page.click(".saved-view button")
    expect(notice(page)).to_have_text("The saved view is deleted.")
    expect(page.locator(".saved-view")).to_have_count(0)


def test_filters_not_understood_are_named_and_stay_as_typed(
    page: Page,  # noqa: F811
    as_analyst: None,
) -> None:
    page.fill("form.queue-filters input[name=language]", "english!")
    page.fill("form.queue-filters input[name=tag]", "defence")
    page.click("form.queue-filters button[type=submit]")
    expect(error(page)).to_have_text("'english!' is not a language code such as en or ro.")
    expect(page.locator("form.queue-filters input[name=language]")).to_have_value("english!")
    expect(page.locator("form.queue-filters input[name=tag]")).to_have_value("defence")

    page.goto("/items")
    page.fill("form.queue-filters input[name=q]", "F-16")
    page.fill("form.queue-filters input[name=language]", "english!")
    page.click("form.queue-filters button[type=submit]")
    expect(error(page)).to_have_text("'english!' is not a language code such as en or ro.")
    expect(page.locator("form.queue-filters input[name=language]")).to_have_value("english!")
    expect(page.locator("form.queue-filters input[name=q]")).to_have_value("F-16")


def test_a_wrong_current_password_is_refused_without_echoing_any_password(
    page: Page,  # noqa: F811
    db_url: str,
) -> None:
    add_user(db_url, "pat@newsroom.example", "analyst")
    log_in_page(page, "pat@newsroom.example")
    page.goto("/account/password")
    page.fill("input[name=current_password]", "a wrong current one")
    page.fill("input[name=new_password]", "a-long-new-secret-1")
    page.fill("input[name=new_password_again]", "a-long-new-secret-1")
    page.click("form[action='/account/password'] button[type=submit]")
    expect(error(page)).to_be_visible()
    html = page.content()
    assert "a wrong current one" not in html and "a-long-new-secret-1" not in html
    for field in ("current_password", "new_password", "new_password_again"):
        expect(page.locator(f"input[name={field}]")).to_have_value("")
    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", "a-long-new-secret-1")
    page.fill("input[name=new_password_again]", "a-long-new-secret-1")
    page.click("form[action='/account/password'] button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    expect(notice(page)).to_contain_text("Your password is changed")
    page.goto("/account/password")
    page.click("form[action='/account/logout-everywhere'] button")
    page.wait_for_url("**/login")
    expect(notice(page)).to_have_text("Every session of this account has ended, this one too.")


def test_ending_a_session_says_so(page: Page, db_url: str) -> None:  # noqa: F811
    add_user(db_url, "pat@newsroom.example", "analyst")
    log_in_page(page, "pat@newsroom.example")
    page.goto("/account/password")
    page.click("table.sessions button")  # the only session: this one
    page.wait_for_url("**/login")
    expect(notice(page)).to_have_text("This session has ended: you are logged out.")


TEST_VERSIONS = ("form-feedback-junk", "form-feedback-copy")


@pytest.fixture
def spare_models(session_db_url: str, shipped_models: None) -> Iterator[dict[str, int]]:
    """A pair model that cannot be loaded and a copy of the shipped one, both inactive; gone
    afterwards, with the shipped models active again (the model store outlives each test)."""
    with psycopg.connect(session_db_url, autocommit=True) as conn:
        shipped = conn.execute(
            "SELECT artifact, metadata, version FROM models WHERE kind = 'pair' AND active"
        ).fetchone()
        assert shipped is not None
        models.store(conn, "pair", TEST_VERSIONS[0], b"not a model", shipped[1])
        models.store(conn, "pair", TEST_VERSIONS[1], shipped[0], shipped[1])
        ids = dict(
            conn.execute(
                "SELECT version, id FROM models WHERE version = ANY(%s)", (list(TEST_VERSIONS),)
            ).fetchall()
        )
    yield ids
    with psycopg.connect(session_db_url, autocommit=True) as conn:
        models.activate(conn, shipped[2])
        conn.execute("DELETE FROM models WHERE version = ANY(%s)", (list(TEST_VERSIONS),))


def test_a_refused_activation_says_why_and_an_activation_is_announced(
    page: Page,  # noqa: F811
    as_admin: None,
    spare_models: dict[str, int],
) -> None:
    page.goto("/models")
    page.click(f"#model-{spare_models[TEST_VERSIONS[0]]} form button")
    expect(error(page)).to_contain_text("Not activated:")
    page.click(f"#model-{spare_models[TEST_VERSIONS[1]]} form button")
    page.wait_for_url("**/models")
    expect(notice(page)).to_have_text(f"{TEST_VERSIONS[1]} is now the active pair model.")


def test_the_feed_and_ops_alert_buttons_say_what_they_did(
    page: Page,  # noqa: F811
    as_admin: None,
    db_url: str,
) -> None:
    feed = add_feed(db_url, "Courier")
    page.goto("/feeds")
    for action, said in (
        ("poll", f"Feed {feed} is due now: the next dispatch polls it."),
        ("disable", f"Feed {feed} disabled."),
        ("enable", f"Feed {feed} enabled: it is polled now."),
    ):
        page.click(f"form[action='/feeds/{feed}/{action}'] button")
        expect(notice(page)).to_have_text(said)
    page.goto("/alerts")
    page.click("form[action='/alerts/ops'] button")
    expect(notice(page)).to_have_text("Ops alerts on.")
    page.click("form[action='/alerts/ops'] button")
    expect(notice(page)).to_have_text("Ops alerts off.")
