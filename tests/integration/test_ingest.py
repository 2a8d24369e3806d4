import ipaddress
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import free_port
from tests.feedserver import FeedServer, Route
from tracker.demo import FEEDS_DIR
from tracker.feeds.fetch import FetchPolicy
from tracker.feeds.refresh import refresh_feed
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


def lease_all(conn: psycopg.Connection) -> dict[int, Lease]:
    with conn.transaction():
        return {lease.feed_id: lease for lease in feeds.claim_due(conn, 100, 600)}


def add(conn: psycopg.Connection, url: str) -> int:
    return feeds.add(conn, url, "media")[0].id


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
    outcome = refresh_feed(conn, lease_all(conn)[feed_id], LOOPBACK, 3600)
    assert outcome.status == "ok" and len(outcome.new_item_ids) == 6
    make_due(conn)
    again = refresh_feed(conn, lease_all(conn)[feed_id], LOOPBACK, 3600)
    assert again.new_item_ids == []
    assert count_items(conn, feed_id) == 6
    stored = feeds.get(conn, feed_id)
    assert stored is not None and stored.title == "The Daily Courier" and stored.error_count == 0


def test_a_feed_that_answers_304_is_not_parsed_again(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/c.xml"] = Route(COURIER, etag='"v1"')
    feed_id = add(conn, server.url("/c.xml"))
    refresh_feed(conn, lease_all(conn)[feed_id], LOOPBACK, 3600)
    make_due(conn)
    outcome = refresh_feed(conn, lease_all(conn)[feed_id], LOOPBACK, 3600)
    assert outcome.status == "not_modified"
    assert server.requests[-1][1].get("If-None-Match") == '"v1"'


def test_a_changed_item_is_updated_not_duplicated(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/c.xml"] = Route(COURIER)
    feed_id = add(conn, server.url("/c.xml"))
    refresh_feed(conn, lease_all(conn)[feed_id], LOOPBACK, 3600)
    server.routes["/c.xml"] = Route(COURIER.replace(b"Sources say", b"Insiders claim", 1))
    make_due(conn)
    outcome = refresh_feed(conn, lease_all(conn)[feed_id], LOOPBACK, 3600)
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
    outcomes = {name: refresh_feed(conn, leases[i], LOOPBACK, 3600) for name, i in ids.items()}
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
    outcome = refresh_feed(conn, lease_all(conn)[feed_id], strict, 3600)
    assert outcome.status == "refused"
    assert outcome.error is not None and "non-public address 127.0.0.1" in outcome.error
    assert server.requests == []


def test_an_oversized_body_is_refused(conn: psycopg.Connection, server: FeedServer) -> None:
    server.routes["/big.xml"] = Route(COURIER * 50)
    feed_id = add(conn, server.url("/big.xml"))
    small = FetchPolicy(
        timeout_s=5, max_bytes=10_000, user_agent="test", allow_networks=LOOPBACK.allow_networks
    )
    assert refresh_feed(conn, lease_all(conn)[feed_id], small, 3600).status == "too_large"


def test_a_stale_lease_cannot_touch_the_feed(conn: psycopg.Connection, server: FeedServer) -> None:
    server.routes["/c.xml"] = Route(COURIER)
    feed_id = add(conn, server.url("/c.xml"))
    first = lease_all(conn)[feed_id]
    conn.execute("UPDATE feeds SET lease_until = now() - interval '1 second'")
    make_due(conn)
    lease_all(conn)  # another dispatcher takes the expired lease
    assert refresh_feed(conn, first, LOOPBACK, 3600).status == "lease_lost"
    assert count_items(conn, feed_id) == 0


def test_a_leased_feed_is_not_dispatched_twice(conn: psycopg.Connection) -> None:
    feed_id = add(conn, "http://feeds.example/a.xml")
    assert feed_id in lease_all(conn)
    assert lease_all(conn) == {}


def test_a_redirect_to_a_private_address_is_refused_before_connecting(
    conn: psycopg.Connection, server: FeedServer
) -> None:
    server.routes["/moved.xml"] = Route(
        b"", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    feed_id = add(conn, server.url("/moved.xml"))
    outcome = refresh_feed(conn, lease_all(conn)[feed_id], LOOPBACK, 3600)
    assert outcome.status == "refused"
    assert outcome.error is not None and "169.254.169.254" in outcome.error


def test_a_feed_url_that_cannot_even_be_requested_is_recorded_on_the_feed(
    conn: psycopg.Connection,
) -> None:
    feed_id = add(conn, "http://127.0.0.1:notaport/feed.xml")
    outcome = refresh_feed(conn, lease_all(conn)[feed_id], LOOPBACK, 3600)
    feed = feeds.get(conn, feed_id)
    assert outcome.status == "error"
    assert feed is not None and feed.error_count == 1 and feed.last_error
