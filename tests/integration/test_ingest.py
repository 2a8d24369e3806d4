import ipaddress
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from tests.conftest import free_port
from tests.factories import add_user
from tests.feedserver import FeedServer, Route
from tracker.demo import FEEDS_DIR
from tracker.ingest.fetch import FetchPolicy
from tracker.pipeline.refresh import Outcome, RefreshConfig, refresh_feed
from tracker.storage import feeds
from tracker.storage.feeds import Lease

LOOPBACK = FetchPolicy(
    timeout_s=5,
    max_bytes=1_000_000,
    user_agent="test",
    allow_networks=(ipaddress.ip_network("127.0.0.0/8"),),
)
COURIER = (FEEDS_DIR / "daily-courier.xml").read_bytes()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def refresh(conn: psycopg.Connection, lease: Lease, policy: FetchPolicy = LOOPBACK) -> Outcome:
    return refresh_feed(conn, lease, RefreshConfig(policy, 3600, timedelta(hours=72)))


def lease_all(conn: psycopg.Connection) -> dict[int, Lease]:
    with conn.transaction():
        return {lease.feed_id: lease for lease in feeds.claim_due(conn, 100, 600, per_host=100)}


def add(conn: psycopg.Connection, url: str) -> int:
    return feeds.add(conn, feeds.NewFeed(url, "media"))[0].id


def count_items(conn: psycopg.Connection, feed_id: int) -> int:
    row = conn.execute("SELECT count(*) FROM items WHERE feed_id = %s", (feed_id,)).fetchone()
    assert row is not None
    return int(row[0])


def make_due(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE feeds SET next_poll_at = now() - interval '1 second'")


def test_a_feed_is_fetched_parsed_and_stored_once(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/courier.xml"] = Route(COURIER)
    feed_id = add(conn, server.url("/courier.xml"))
    outcome = refresh(conn, lease_all(conn)[feed_id], LOOPBACK)
    assert outcome.status == "ok" and len(outcome.new_item_ids) == 6
    make_due(conn)
    again = refresh(conn, lease_all(conn)[feed_id], LOOPBACK)
    assert again.new_item_ids == []
    assert count_items(conn, feed_id) == 6
    stored = feeds.get(conn, feed_id)
    assert stored is not None and stored.title == "The Daily Courier" and stored.error_count == 0


def test_a_feed_that_answers_304_is_not_parsed_again(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/c.xml"] = Route(COURIER, etag='"v1"')
    feed_id = add(conn, server.url("/c.xml"))
    refresh(conn, lease_all(conn)[feed_id], LOOPBACK)
    make_due(conn)
    outcome = refresh(conn, lease_all(conn)[feed_id], LOOPBACK)
    assert outcome.status == "not_modified"
    assert server.requests[-1][1].get("If-None-Match") == '"v1"'


def test_a_changed_item_is_updated_not_duplicated(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/c.xml"] = Route(COURIER)
    feed_id = add(conn, server.url("/c.xml"))
    refresh(conn, lease_all(conn)[feed_id], LOOPBACK)
    server.routes["/c.xml"] = Route(COURIER.replace(b"Sources say", b"Insiders claim", 1))
    make_due(conn)
    outcome = refresh(conn, lease_all(conn)[feed_id], LOOPBACK)
    assert len(outcome.new_item_ids) == 1
    assert count_items(conn, feed_id) == 6


def test_bad_feeds_are_recorded_on_the_feed_and_the_others_go_on(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/good.xml"] = Route(COURIER)
    server.routes["/page.html"] = Route(
        b"<!doctype html><html><body>Shop</body></html>", content_type="text/html"
    )
    server.routes["/broken.xml"] = Route(b"\x00\x01 not xml at all <<<")
    server.routes["/gone.xml"] = Route(b"", status=500)
    urls = {
        name: server.url(f"/{name}") for name in ("good.xml", "page.html", "broken.xml", "gone.xml")
    }
    urls["closed"] = f"http://127.0.0.1:{free_port()}/feed.xml"
    ids = {name: add(conn, url) for name, url in urls.items()}
    leases = lease_all(conn)
    outcomes = {name: refresh(conn, leases[i], LOOPBACK) for name, i in ids.items()}
    assert outcomes["good.xml"].status == "ok"
    assert {n: o.status for n, o in outcomes.items() if n != "good.xml"} == {
        "page.html": "not_a_feed",
        "broken.xml": "not_a_feed",
        "gone.xml": "http_error",
        "closed": "unreachable",
    }
    for name in ("page.html", "broken.xml", "gone.xml", "closed"):
        feed = feeds.get(conn, ids[name])
        assert feed is not None
        assert feed.error_count == 1 and feed.last_error, name
        assert feed.status == outcomes[name].status
    assert count_items(conn, ids["good.xml"]) == 6


def test_loopback_addresses_are_refused_unless_allow_listed(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/c.xml"] = Route(COURIER)
    feed_id = add(conn, server.url("/c.xml"))
    strict = FetchPolicy(timeout_s=5, max_bytes=1_000_000, user_agent="test")
    outcome = refresh(conn, lease_all(conn)[feed_id], strict)
    assert outcome.status == "refused"
    assert outcome.error is not None and "non-public address 127.0.0.1" in outcome.error
    assert server.requests == []


def test_an_oversized_body_is_refused(conn: psycopg.Connection, server: FeedServer) -> None:
    server.routes["/big.xml"] = Route(COURIER * 50)
    feed_id = add(conn, server.url("/big.xml"))
    small = FetchPolicy(
        timeout_s=5, max_bytes=10_000, user_agent="test", allow_networks=LOOPBACK.allow_networks
    )
    assert refresh(conn, lease_all(conn)[feed_id], small).status == "too_large"


def test_a_stale_lease_cannot_touch_the_feed(conn: psycopg.Connection, server: FeedServer) -> None:
    server.routes["/c.xml"] = Route(COURIER)
    feed_id = add(conn, server.url("/c.xml"))
    first = lease_all(conn)[feed_id]
    conn.execute("UPDATE feeds SET lease_until = now() - interval '1 second'")
    make_due(conn)
    lease_all(conn)  # another dispatcher takes the expired lease
    assert refresh(conn, first, LOOPBACK).status == "lease_lost"
    assert count_items(conn, feed_id) == 0


def test_a_leased_feed_is_not_dispatched_twice(conn: psycopg.Connection) -> None:
    feed_id = add(conn, "http://feeds.example/a.xml")
    assert feed_id in lease_all(conn)
    assert lease_all(conn) == {}


def test_a_started_fetch_holds_its_feed_for_its_running_lease_only(
    conn: psycopg.Connection,
) -> None:
    # Dispatch's lease covers the wait in the queue; once the fetch starts, its own shorter
    # lease is what keeps a worker killed mid-fetch from holding the feed for 10 minutes.
    feed_id = add(conn, "http://feeds.example/a.xml")
    lease = lease_all(conn)[feed_id]

    def held_for() -> timedelta:
        row = conn.execute("SELECT lease_until - now() FROM feeds WHERE id = %s", (feed_id,))
        return row.fetchone()[0]  # type: ignore[index]

    assert held_for() > timedelta(seconds=590)
    assert feeds.start_fetch(conn, lease, 1) is not None  # and then its worker is killed
    assert timedelta(0) < held_for() <= timedelta(seconds=1)
    assert lease_all(conn) == {}
    time.sleep(1.1)
    [again] = lease_all(conn).values()
    assert again.feed_id == feed_id
    assert feeds.start_fetch(conn, lease, 1) is None  # the dead fetch's redelivered message


def test_a_redirect_to_a_private_address_is_refused_before_connecting(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/moved.xml"] = Route(
        b"", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    feed_id = add(conn, server.url("/moved.xml"))
    outcome = refresh(conn, lease_all(conn)[feed_id], LOOPBACK)
    assert outcome.status == "refused"
    assert outcome.error is not None and "169.254.169.254" in outcome.error


def test_a_feed_url_that_cannot_even_be_requested_is_recorded_on_the_feed(
    conn: psycopg.Connection,
) -> None:
    feed_id = add(conn, "http://127.0.0.1:notaport/feed.xml")
    outcome = refresh(conn, lease_all(conn)[feed_id], LOOPBACK)
    feed = feeds.get(conn, feed_id)
    assert outcome.status == "error"
    assert feed is not None and feed.error_count == 1 and feed.last_error


def test_a_permanent_redirect_chain_updates_the_stored_url(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/old.xml"] = Route(b"", status=301, headers={"Location": "/mid.xml"})
    server.routes["/mid.xml"] = Route(b"", status=308, headers={"Location": "/new.xml"})
    server.routes["/new.xml"] = Route(COURIER)
    feed_id = add(conn, server.url("/old.xml"))
    assert refresh(conn, lease_all(conn)[feed_id]).status == "ok"
    moved = feeds.get(conn, feed_id)
    assert moved is not None and moved.url == server.url("/new.xml")


def test_a_temporary_redirect_keeps_the_stored_url(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/old.xml"] = Route(b"", status=301, headers={"Location": "/temporary.xml"})
    server.routes["/temporary.xml"] = Route(b"", status=302, headers={"Location": "/new.xml"})
    server.routes["/new.xml"] = Route(COURIER)
    feed_id = add(conn, server.url("/old.xml"))
    assert refresh(conn, lease_all(conn)[feed_id]).status == "ok"
    kept = feeds.get(conn, feed_id)
    assert kept is not None and kept.url == server.url("/old.xml")


def admin(conn: psycopg.Connection) -> None:
    add_user(conn, "ops@example.org", "admin")


def test_a_gone_feed_is_disabled_with_the_reason_and_admins_are_told(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    admin(conn)
    server.routes["/gone.xml"] = Route(b"", status=410)
    feed_id = add(conn, server.url("/gone.xml"))
    assert refresh(conn, lease_all(conn)[feed_id]).status == "gone"
    feed = feeds.get(conn, feed_id)
    assert feed is not None and not feed.enabled
    assert feed.disabled_reason is not None and "410" in feed.disabled_reason
    alert = conn.execute("SELECT recipient, subject FROM alert_outbox").fetchall()
    assert alert == [("ops@example.org", f"Feed disabled: {server.url('/gone.xml')}")]


def test_a_feed_failing_longer_than_the_limit_is_disabled_once(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    admin(conn)
    server.routes["/err.xml"] = Route(b"", status=500)
    feed_id = add(conn, server.url("/err.xml"))
    assert refresh(conn, lease_all(conn)[feed_id]).status == "http_error"
    still = feeds.get(conn, feed_id)
    assert still is not None and still.enabled and still.failing_since is not None
    conn.execute("UPDATE feeds SET failing_since = now() - interval '4 days'")
    make_due(conn)
    refresh(conn, lease_all(conn)[feed_id])
    disabled = feeds.get(conn, feed_id)
    assert disabled is not None and not disabled.enabled
    assert disabled.disabled_reason is not None and "failing since" in disabled.disabled_reason
    assert lease_all(conn) == {}
    assert conn.execute("SELECT count(*) FROM alert_outbox").fetchone() == (1,)


def test_errors_back_off_exponentially(conn: psycopg.Connection, server: FeedServer) -> None:
    server.routes["/err.xml"] = Route(b"", status=500)
    feed_id = add(conn, server.url("/err.xml"))
    waits = []
    for _ in range(3):
        refresh(conn, lease_all(conn)[feed_id])
        row = conn.execute(
            "SELECT extract(epoch FROM next_poll_at - now()) FROM feeds WHERE id = %s", (feed_id,)
        ).fetchone()
        assert row is not None
        waits.append(float(row[0]))
        make_due(conn)
    assert 40 < waits[0] < 80 and 90 < waits[1] < 150 and 190 < waits[2] < 290


def test_a_feed_whose_body_did_not_change_is_not_parsed_again(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/c.xml"] = Route(COURIER)  # no validators: only the body hash can tell
    feed_id = add(conn, server.url("/c.xml"))
    refresh(conn, lease_all(conn)[feed_id])
    make_due(conn)
    assert refresh(conn, lease_all(conn)[feed_id]).status == "unchanged"


def test_a_changed_item_keeps_its_earlier_text_as_a_revision(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/c.xml"] = Route(COURIER)
    feed_id = add(conn, server.url("/c.xml"))
    refresh(conn, lease_all(conn)[feed_id])
    server.routes["/c.xml"] = Route(COURIER.replace(b"Sources say", b"Insiders claim", 1))
    make_due(conn)
    [changed] = refresh(conn, lease_all(conn)[feed_id]).new_item_ids
    item = conn.execute("SELECT title, revision FROM items WHERE id = %s", (changed,)).fetchone()
    assert item is not None and item[0].startswith("Insiders claim") and item[1] == 2
    old = conn.execute("SELECT title, revision FROM item_revisions WHERE item_id = %s", (changed,))
    assert [(t.startswith("Sources say"), r) for t, r in old.fetchall()] == [(True, 1)]


def test_the_same_article_in_another_feed_is_linked_to_the_first_copy(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/a.xml"] = Route(COURIER)
    server.routes["/b.xml"] = Route(COURIER.replace(b"daily-courier-", b"mirror-"))
    first, second = add(conn, server.url("/a.xml")), add(conn, server.url("/b.xml"))
    leases = lease_all(conn)
    refresh(conn, leases[first])
    refresh(conn, leases[second])
    rows = conn.execute(
        """SELECT count(*) FROM items m JOIN items o ON o.id = m.duplicate_of
           WHERE m.feed_id = %s AND o.feed_id = %s""",
        (second, first),
    ).fetchone()
    assert rows == (6,)


ARTICLE = "Ministry denies that reservists were called up in three counties overnight"


def test_copies_found_by_text_or_by_a_copys_url_point_at_the_original(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/origin.xml"] = Route(
        rss(f"<item><guid>o</guid><title>{ARTICLE}</title><link>https://o.example/1</link></item>")
    )
    # Same words, other punctuation and case, another URL: a copy by its text.
    server.routes["/reworded.xml"] = Route(
        rss(
            f"<item><guid>r</guid><title>{ARTICLE.upper()}!</title>"
            "<link>https://r.example/1</link></item>"
        )
    )
    # Another text at the copy's URL: a copy of the copy, which points at the original.
    server.routes["/mirror.xml"] = Route(
        rss("<item><guid>m</guid><title>Other words</title><link>https://r.example/1</link></item>")
    )
    ids = [add(conn, server.url(f"/{n}.xml")) for n in ("origin", "reworded", "mirror")]
    leases = lease_all(conn)
    [origin], [reworded], [mirror] = (refresh(conn, leases[i]).new_item_ids for i in ids)
    rows = conn.execute(
        "SELECT id, duplicate_of FROM items WHERE id = ANY(%s) ORDER BY id",
        ([origin, reworded, mirror],),
    ).fetchall()
    assert rows == [(origin, None), (reworded, origin), (mirror, origin)]


def test_an_item_that_changes_into_a_copy_of_another_feeds_item_is_linked(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/first.xml"] = Route(rss(f"<item><guid>f</guid><title>{ARTICLE}</title></item>"))
    server.routes["/later.xml"] = Route(rss("<item><guid>l</guid><title>Draft</title></item>"))
    first, later = add(conn, server.url("/first.xml")), add(conn, server.url("/later.xml"))
    leases = lease_all(conn)
    [original] = refresh(conn, leases[first]).new_item_ids
    [draft] = refresh(conn, leases[later]).new_item_ids
    server.routes["/later.xml"] = Route(rss(f"<item><guid>l</guid><title>{ARTICLE}</title></item>"))
    make_due(conn)
    assert refresh(conn, lease_all(conn)[later]).new_item_ids == [draft]
    row = conn.execute("SELECT duplicate_of FROM items WHERE id = %s", (draft,)).fetchone()
    assert row == (original,)


def test_no_more_than_the_per_host_limit_is_leased_at_once(conn: psycopg.Connection) -> None:
    for i in range(5):
        add(conn, f"http://one.example/{i}.xml")
    add(conn, "http://two.example/feed.xml")
    with conn.transaction():
        first = feeds.claim_due(conn, 100, 600, per_host=2)
    with conn.transaction():
        second = feeds.claim_due(conn, 100, 600, per_host=2)
    hosts = conn.execute(
        "SELECT host, count(*) FROM feeds WHERE lease_until > now() GROUP BY host ORDER BY host"
    ).fetchall()
    assert (len(first), len(second)) == (3, 0)
    assert hosts == [("one.example", 2), ("two.example", 1)]


def test_a_dispatcher_claims_due_feeds_while_another_holds_its_claim_open(
    conn: psycopg.Connection, db_url: str
) -> None:
    for i in range(6):
        add(conn, f"http://one.example/{i}.xml")
    with psycopg.connect(db_url) as other:
        held = feeds.claim_due(other, 2, 600, per_host=100)  # its transaction stays open
        with conn.transaction():
            mine = feeds.claim_due(conn, 2, 600, per_host=100)
        other.commit()
    assert len(held) == len(mine) == 2
    assert not {lease.feed_id for lease in held} & {lease.feed_id for lease in mine}


def rss(items: str, declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return (
        f'{declaration}<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode(
            "latin-1" if "iso" in declaration else "utf-8"
        )
    )


def test_a_ten_thousand_item_feed_is_stored_whole(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    items = "".join(
        f"<item><guid>g{i}</guid><title>Item {i}</title><description>text {i}</description></item>"
        for i in range(10_000)
    )
    server.routes["/big.xml"] = Route(rss(items))
    feed_id = add(conn, server.url("/big.xml"))
    assert len(refresh(conn, lease_all(conn)[feed_id]).new_item_ids) == 10_000
    assert count_items(conn, feed_id) == 10_000


def test_items_without_guids_keep_their_identity_across_polls(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    items = (
        "".join(
            f"<item><title>No guid {i}</title><link>https://n.example/{i}?utm_source=x</link></item>"
            for i in range(5)
        )
        + "<item><title>No guid, no link</title><description>only text</description></item>"
    )
    server.routes["/noguid.xml"] = Route(rss(items))
    feed_id = add(conn, server.url("/noguid.xml"))
    assert len(refresh(conn, lease_all(conn)[feed_id]).new_item_ids) == 6
    server.routes["/noguid.xml"] = Route(
        rss(items).replace(b"<title>T</title>", b"<title>U</title>")
    )
    make_due(conn)
    assert refresh(conn, lease_all(conn)[feed_id]).new_item_ids == []
    keys = [r[0] for r in conn.execute("SELECT dedupe_key FROM items ORDER BY id").fetchall()]
    assert keys[0] == "https://n.example/0" and keys[5].startswith("sha256:")


def test_a_wrongly_declared_encoding_or_invalid_bytes_still_give_readable_text(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    latin = '<?xml version="1.0" encoding="iso-8859-1"?>'
    server.routes["/latin.xml"] = Route(
        rss("<item><guid>1</guid><title>Café Müller in Köln</title></item>", latin),
        content_type="application/rss+xml; charset=utf-8",  # the header lies
    )
    server.routes["/bytes.xml"] = Route(
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        b"<item><guid>1</guid><title>Broken \xff\xfe bytes</title></item></channel></rss>"
    )
    latin_id, bytes_id = add(conn, server.url("/latin.xml")), add(conn, server.url("/bytes.xml"))
    leases = lease_all(conn)
    outcomes = [refresh(conn, leases[latin_id]), refresh(conn, leases[bytes_id])]
    for outcome in outcomes:
        assert outcome.status in ("ok", "ok_bozo", "not_a_feed"), outcome
    titles = [r[0] for r in conn.execute("SELECT title FROM items ORDER BY feed_id").fetchall()]
    for title in titles:
        assert "\x00" not in title and title.strip()
    stored = {feed_id: (feeds.get(conn, feed_id) or pytest.fail()).status for feed_id in leases}
    assert all(status in ("ok", "ok_bozo", "not_a_feed") for status in stored.values())
