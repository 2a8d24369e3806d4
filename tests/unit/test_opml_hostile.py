"""Hostile OPML files: malformed, huge, deeply nested, entity bombs and external entities aimed
at a loopback server and at local files. Each gets a clear error or a correct import, in
bounded memory, and nothing is fetched."""

import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.feedserver import FeedServer, Route
from tests.tally import counted
from tracker.ingest.opml import OpmlError, OpmlParseResult, parse_opml, read_capped

HEAD = b'<?xml version="1.0" encoding="UTF-8"?>'
FEED = '<outline text="F{n}" xmlUrl="https://f{n}.example/rss"/>'
MB = 1024 * 1024


def opml(body: str, head: bytes = HEAD) -> bytes:
    return head + f'<opml version="2.0"><body>{body}</body></opml>'.encode()


def peak_memory(call: Callable[[], Any]) -> tuple[Any, int]:
    """What `call` returned (or raised) and the most memory it held at once, in bytes."""
    tracemalloc.start()
    try:
        try:
            outcome: Any = call()
        except OpmlError as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        running.routes["/evil.dtd"] = Route(b'<!ENTITY x "fetched">', content_type="text/xml")
        yield running


MALFORMED = {
    "empty": b"",
    "only a declaration": HEAD,
    "text": b"feeds: https://a.example/rss",
    "unclosed outline": opml('<outline text="a" xmlUrl="https://a.example/rss">'),
    "unquoted attribute": opml("<outline text=a xmlUrl=https://a.example/rss/>"),
    "duplicate attribute": opml('<outline text="a" text="b" xmlUrl="https://a.example/"/>'),
    "two roots": opml("") + b"<opml/>",
    "NUL byte": opml('<outline text="a\x00" xmlUrl="https://a.example/"/>'),
    "bare ampersand": opml('<outline text="a & b" xmlUrl="https://a.example/?a=1&b=2"/>'),
    "undeclared entity": opml('<outline text="&nbsp;" xmlUrl="https://a.example/"/>'),
    "bad UTF-8": opml('<outline text="x" xmlUrl="https://a.example/"/>').replace(b"x", b"\xff\xfe"),
    "unknown encoding": opml("", head=b'<?xml version="1.0" encoding="x-no-such"?>'),
    "lying encoding": opml("").replace(b"UTF-8", b"UTF-16"),
    "lying multi-byte encoding": opml("").replace(b"UTF-8", b"UTF-32"),
    "UTF-7": opml('<outline text="+ADw-b+AD4-" xmlUrl="https://a.example/"/>').replace(
        b"UTF-8", b"UTF-7"
    ),
    "truncated": opml(FEED.format(n=1) * 10)[:-20],
    "not OPML": b'<rss version="2.0"><channel><title>x</title></channel></rss>',
    "HTML": b"<!doctype html><html><body><a href='https://a.example/rss'>rss</a></body></html>",
    "processing instruction only": b'<?xml-stylesheet href="x.xsl"?>',
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_opml_file_gets_a_clear_error(name: str) -> None:
    with counted("OPML: malformed files"), pytest.raises(OpmlError) as refused:
        parse_opml(MALFORMED[name])
    message = str(refused.value)
    assert message and len(message) < 300
    assert "\x00" not in message


@pytest.mark.parametrize(
    ("encoding", "title"),
    [
        ("Shift_JIS", "東京ニュース"),
        ("EUC-JP", "東京ニュース"),
        ("GB2312", "新华社新闻"),
        ("Big5", "中央社新聞"),
        ("windows-1251", "Новости Киева"),
    ],
)
def test_a_file_in_a_declared_multi_byte_or_legacy_encoding_is_read(
    encoding: str, title: str
) -> None:
    text = opml(f'<outline text="{title}" xmlUrl="https://a.example/rss"/>').decode()
    data = text.replace("UTF-8", encoding).encode(encoding)
    [feed] = parse_opml(data).feeds
    assert (feed.title, feed.url) == (title, "https://a.example/rss")


def test_a_huge_opml_file_of_twelve_thousand_feeds_imports_whole_in_bounded_memory() -> None:
    groups = "".join(
        f'<outline text="Group {g}"><outline text="Sub {g}">'
        + "".join(FEED.format(n=f"{g}-{i}") for i in range(200))
        + "</outline></outline>"
        for g in range(60)
    )
    data = opml(groups)
    with counted("OPML: huge files"):
        result, peak = peak_memory(lambda: parse_opml(data))
        assert isinstance(result, OpmlParseResult)
        assert len(result.feeds) == 12_000
        assert result.problems == []
        assert result.feeds[-1].tags == ("group 59", "sub 59")
    # The feeds themselves are the memory: a few hundred bytes each, nothing per nesting level.
    print(f"12,000 feeds, {len(data) / MB:.1f} MB of OPML, peak {peak / MB:.1f} MB")
    assert peak < 40 * MB


def test_outlines_nested_twenty_thousand_deep_import_without_recursion() -> None:
    depth = 20_000
    data = opml('<outline text="c">' * depth + FEED.format(n=1) + "</outline>" * depth)
    with counted("OPML: huge files"):
        result, peak = peak_memory(lambda: parse_opml(data))
        assert isinstance(result, OpmlParseResult)
        assert [f.url for f in result.feeds] == ["https://f1.example/rss"]
        assert result.feeds[0].tags == ("c",)
    assert peak < 40 * MB


def test_a_file_over_the_cap_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    huge = tmp_path / "huge.opml"
    with huge.open("wb") as file:
        file.write(opml(FEED.format(n=1)))
        file.truncate(4 * 1024 * MB)  # sparse: four gigabytes on paper, nothing on disk
    with counted("OPML: huge files"):
        result, peak = peak_memory(lambda: read_capped(huge, max_bytes=MB))
        assert isinstance(result, OpmlError)
        assert str(result) == "OPML file is larger than the limit of 1.0 MB"
    assert peak < 4 * MB


def billion_laughs(levels: int = 10) -> bytes:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, levels)
    )
    body = f'<outline text="&l{levels - 1};" xmlUrl="https://a.example/rss"/>'
    return HEAD + f"<!DOCTYPE opml [{entities}]>".encode() + opml(body, head=b"")


def test_a_billion_laughs_file_is_refused_before_anything_expands() -> None:
    with counted("OPML: entity attacks"):
        result, peak = peak_memory(lambda: parse_opml(billion_laughs()))
        assert isinstance(result, OpmlError)
        assert "DOCTYPE and ENTITY declarations are not allowed" in str(result)
    assert peak < 4 * MB  # expanded, it would be 30 GB of "lol"


def external_entities(server: FeedServer) -> dict[str, bytes]:
    evil = server.url("/evil.dtd")
    outline = '<outline text="&x;" xmlUrl="https://a.example/rss"/>'
    return {
        "system entity at loopback": HEAD
        + f'<!DOCTYPE opml [<!ENTITY x SYSTEM "{evil}">]>'.encode()
        + opml(outline, head=b""),
        "system entity at /etc/passwd": HEAD
        + b'<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + opml(outline, head=b""),
        "parameter entity at loopback": HEAD
        + f'<!DOCTYPE opml [<!ENTITY % p SYSTEM "{evil}"> %p;]>'.encode()
        + opml(outline, head=b""),
        "external DTD at loopback": HEAD
        + f'<!DOCTYPE opml SYSTEM "{evil}">'.encode()
        + opml(outline, head=b""),
        "public DTD at /etc/passwd": HEAD
        + b'<!DOCTYPE opml PUBLIC "-//x//EN" "file:///etc/passwd">'
        + opml(outline, head=b""),
        "entity in an attribute without DOCTYPE": opml(outline),
        "XInclude": opml(
            f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{evil}"/>'
            '<outline text="ok" xmlUrl="https://a.example/rss"/>'
        ),
    }


def test_external_entities_fetch_nothing_and_read_no_local_file(server: FeedServer) -> None:
    for name, data in external_entities(server).items():
        with counted("OPML: entity attacks"):
            try:
                result = parse_opml(data)
            except OpmlError as exc:
                assert "root:" not in str(exc), name
                continue
            # XInclude is not processed: the include is an unknown element and is ignored.
            assert name == "XInclude"
            assert [f.title for f in result.feeds] == ["ok"]
    assert server.requests == [], "the parser fetched an external entity"


def test_the_loopback_server_would_see_a_fetch() -> None:
    # The test above passes only because nothing asked: check that a fetch would be recorded.
    with FeedServer() as running:
        running.routes["/evil.dtd"] = Route(b"x")
        with urllib.request.urlopen(running.url("/evil.dtd")) as response:
            assert response.read() == b"x"
        assert [path for path, _ in running.requests] == ["/evil.dtd"]
