import time

import pytest

from tracker.ingest.opml import OpmlError, OpmlFeed, export_opml, parse_opml


def opml(body: str) -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8"?><opml version="2.0">'
    return f"{head}<body>{body}</body></opml>".encode()


def test_nested_category_outlines_become_lower_cased_tags_along_the_path() -> None:
    result = parse_opml(
        opml(
            '<outline text="News"><outline text="Romania">'
            '<outline text="A" xmlUrl="https://a.example/rss"/>'
            '</outline><outline text="B" xmlUrl="https://b.example/rss"/></outline>'
            '<outline text="C" xmlUrl="https://c.example/rss"/>'
        )
    )
    assert [(f.url, f.tags) for f in result.feeds] == [
        ("https://a.example/rss", ("news", "romania")),
        ("https://b.example/rss", ("news",)),
        ("https://c.example/rss", ()),
    ]
    assert result.problems == []


def test_the_category_attribute_adds_tags_split_on_commas_and_slashes_without_repeats() -> None:
    result = parse_opml(
        opml(
            '<outline text="News"><outline xmlUrl="https://a.example/rss"'
            ' category="/Tech/Security, news ,Politics,,"/></outline>'
        )
    )
    assert result.feeds[0].tags == ("news", "tech", "security", "politics")


def test_title_is_preferred_over_text_and_a_title_that_is_the_url_reads_as_none() -> None:
    result = parse_opml(
        opml(
            '<outline text="Short" title="  Full\n title " xmlUrl="https://a.example/rss"/>'
            '<outline text="https://b.example/rss" xmlUrl="https://b.example/rss"/>'
        )
    )
    assert [f.title for f in result.feeds] == ["Full title", None]


def test_kind_language_title_and_tags_survive_an_export_and_import_round_trip() -> None:
    feeds = [
        OpmlFeed(
            "https://mapn.example/rss", "MApN", ("official", "romania", "defence"), "official", "ro"
        ),
        OpmlFeed(
            "https://check.example/feed", "Check & <Co>", ("factcheck",), "factcheck", "en-GB"
        ),
        OpmlFeed("https://x.example/atom", None, (), None, None),
        OpmlFeed("https://y.example/rss", "Y", ("official",), "media", None),
    ]
    result = parse_opml(export_opml(feeds))
    assert result.problems == []
    assert sorted(result.feeds, key=lambda f: f.url) == sorted(feeds, key=lambda f: f.url)


def test_export_groups_feeds_under_their_first_tag_and_lists_the_rest_as_categories() -> None:
    feeds = [
        OpmlFeed("https://a.example/rss", "A", ("news", "ro"), None, None),
        OpmlFeed("https://b.example/rss", "B", ("news",), None, None),
    ]
    text = export_opml(feeds, title="Mine").decode()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert "<title>Mine</title>" in text
    assert text.count('<outline text="news" title="news">') == 1
    assert 'category="ro"' in text
    assert 'type="rss"' in text


def test_export_escapes_markup_and_quotes_and_drops_control_characters() -> None:
    nasty = "A <b>&amp; \"quoted\" 'single'\x07\x00 end"
    feed = OpmlFeed('https://a.example/rss?a=1&b="2"', nasty, ("t<ag>",), None, None)
    data = export_opml([feed], title="Feeds & <friends>\x01")
    assert b"\x07" not in data and b"\x00" not in data and b"\x01" not in data
    result = parse_opml(data)
    assert result.feeds[0].title == "A <b>&amp; \"quoted\" 'single' end"
    assert result.feeds[0].url == 'https://a.example/rss?a=1&b="2"'
    assert result.feeds[0].tags == ("t<ag>",)


def test_an_unknown_rt_kind_or_language_is_dropped_with_a_problem_line() -> None:
    result = parse_opml(
        opml('<outline xmlUrl="https://a.example/rss" rtKind="Tabloid" language="not a language"/>')
    )
    assert result.feeds[0].kind is None and result.feeds[0].language is None
    assert len(result.problems) == 2
    assert result.problems[0].startswith("outline 1 (line 1): rtKind 'tabloid' is not one of")


def test_outlines_with_unusable_urls_are_skipped_with_a_problem_line_each() -> None:
    result = parse_opml(
        opml(
            '<outline text="ok" xmlUrl="https://a.example/rss"/>\n'
            '<outline xmlUrl="ftp://x"/>\n'
            '<outline xmlUrl=""/>\n'
            '<outline xmlUrl="javascript:alert(1)"/>\n'
            '<outline xmlUrl="http:///no-host"/>\n'
            '<outline xmlUrl="http://a b.example/"/>\n'
        )
    )
    assert [f.url for f in result.feeds] == ["https://a.example/rss"]
    assert result.problems == [
        "outline 2 (line 2): xmlUrl 'ftp://x' is not http(s)",
        "outline 3 (line 3): xmlUrl '' is empty",
        "outline 4 (line 4): xmlUrl 'javascript:alert(1)' is not http(s)",
        "outline 5 (line 5): xmlUrl 'http:///no-host' has no host",
        "outline 6 (line 6): xmlUrl 'http://a b.example/' contains whitespace or control"
        " characters",
    ]


def test_a_repeated_url_keeps_the_first_feed_and_reports_the_later_one() -> None:
    result = parse_opml(
        opml(
            '<outline text="First" xmlUrl="https://a.example/rss"/>'
            '<outline text="Tech"><outline text="Second" xmlUrl="HTTPS://A.EXAMPLE/rss"/></outline>'
        )
    )
    assert [(f.title, f.tags) for f in result.feeds] == [("First", ())]
    assert result.problems == [
        "outline 3 (line 1): xmlUrl 'HTTPS://A.EXAMPLE/rss' repeats outline 1; the first was kept"
    ]


def test_an_entity_expansion_bomb_is_rejected_before_anything_expands() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(8)
        )
        + b']><opml version="2.0"><body><outline text="&i;" xmlUrl="https://a.example/"/></body></opml>'
    )
    with pytest.raises(OpmlError, match="DOCTYPE and ENTITY declarations are not allowed"):
        parse_opml(bomb)


def test_an_external_entity_doctype_is_rejected() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "file:///etc/passwd"><opml/>'
    with pytest.raises(OpmlError, match="DOCTYPE"):
        parse_opml(data)


def test_malformed_xml_is_reported_with_its_line_and_column() -> None:
    data = b'<?xml version="1.0"?>\n<opml version="2.0">\n<body>\n<outline text="a"\n</body></opml>'
    with pytest.raises(OpmlError, match=r"not well-formed XML at line 5, column \d+"):
        parse_opml(data)


def test_an_undeclared_entity_is_a_parse_error_not_an_expansion() -> None:
    with pytest.raises(OpmlError, match="undefined entity"):
        parse_opml(opml('<outline text="&xxe;" xmlUrl="https://a.example/"/>'))


def test_input_over_the_size_cap_is_rejected_before_parsing() -> None:
    data = opml('<outline xmlUrl="https://a.example/rss"/>' * 100)
    with pytest.raises(OpmlError, match=r"OPML file is 0\.0 MB; the limit is 0\.0 MB"):
        parse_opml(data, max_bytes=1000)


def test_a_document_that_is_not_opml_is_rejected() -> None:
    with pytest.raises(OpmlError, match="root element is <rss>"):
        parse_opml(b'<rss version="2.0"><channel/></rss>')


def test_ten_thousand_feeds_in_one_file_are_all_read() -> None:
    outlines = "".join(
        f'<outline text="Group {g}">'
        + "".join(
            f'<outline type="rss" text="Feed {g}-{i}" xmlUrl="https://f{g}.example/{i}.xml"'
            ' rtKind="media" language="en"/>'
            for i in range(100)
        )
        + "</outline>"
        for g in range(100)
    )
    data = opml(outlines)
    started = time.perf_counter()
    result = parse_opml(data)
    elapsed = time.perf_counter() - started
    print(f"parsed {len(result.feeds)} feeds ({len(data) / 1e6:.1f} MB) in {elapsed:.3f}s")
    assert len(result.feeds) == 10_000
    assert result.problems == []
    assert result.feeds[-1].tags == ("group 99",)
    assert len(parse_opml(export_opml(result.feeds)).feeds) == 10_000
