"""Managing feeds from the command line: add, edit, disable, OPML, bulk import, local parse."""

import json
from pathlib import Path

from tests.conftest import run_tracker
from tests.feedserver import FeedServer, Route
from tracker.demo import FEEDS_DIR


def listed(cli_env: dict[str, str]) -> list[dict[str, object]]:
    result = run_tracker("feeds", "list", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_a_feed_is_added_edited_disabled_enabled_and_deleted(cli_env: dict[str, str]) -> None:
    assert (
        run_tracker(
            "feeds",
            "add",
            "https://mod.example/rss",
            "--kind",
            "official",
            "--tag",
            "defence",
            "--tag",
            "ro",
            "--language",
            "ro",
            "--min-interval",
            "600",
            env=cli_env,
        ).returncode
        == 0
    )
    [feed] = listed(cli_env)
    assert (feed["tags"], feed["language"], feed["min_interval_s"]) == (
        ["defence", "ro"],
        "ro",
        600,
    )
    assert (
        run_tracker(
            "feeds", "edit", "1", "--kind", "factcheck", "--title", "MoD", env=cli_env
        ).returncode
        == 0
    )
    assert run_tracker("feeds", "disable", "1", env=cli_env).returncode == 0
    [feed] = listed(cli_env)
    assert (feed["kind"], feed["title"], feed["enabled"]) == ("factcheck", "MoD", False)
    assert run_tracker("feeds", "enable", "1", env=cli_env).returncode == 0
    assert listed(cli_env)[0]["enabled"] is True
    assert run_tracker("feeds", "poll", "1", env=cli_env).returncode == 0
    assert run_tracker("feeds", "delete", "1", "--yes", env=cli_env).returncode == 0
    assert listed(cli_env) == []
    missing = run_tracker("feeds", "disable", "99", env=cli_env)
    assert missing.returncode == 1 and "no feed with id 99" in missing.stderr


def test_ten_thousand_feeds_import_from_opml_and_export_back(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    outlines = "".join(
        f'<outline text="Feed {i}" xmlUrl="https://site{i % 500}.example/f{i}"/>'
        for i in range(10_000)
    )
    source = tmp_path / "in.opml"
    source.write_text(
        f'<?xml version="1.0"?><opml version="2.0"><body>'
        f'<outline text="News">{outlines}</outline>'
        f'<outline text="bad" xmlUrl="ftp://x.example/f"/></body></opml>'
    )
    imported = run_tracker("feeds", "import-opml", str(source), "--kind", "media", env=cli_env)
    assert imported.returncode == 0, imported.stderr
    assert "10000 feeds added, 0 already registered, 1 skipped" in imported.stdout
    assert "ftp://x.example/f" in imported.stderr
    again = run_tracker("feeds", "import-opml", str(source), env=cli_env)
    assert "0 feeds added, 10000 already registered" in again.stdout
    exported = tmp_path / "out.opml"
    assert run_tracker("feeds", "export-opml", str(exported), env=cli_env).returncode == 0
    text = exported.read_text()
    assert text.count("xmlUrl=") == 10_000 and 'rtKind="media"' in text
    feeds = listed(cli_env)
    assert len(feeds) == 10_000 and feeds[0]["tags"] == ["news"]


def test_a_malformed_opml_file_is_a_clear_error_and_adds_nothing(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.opml"
    bad.write_text('<opml><body><outline xmlUrl="https://a.example/f">')
    result = run_tracker("feeds", "import-opml", str(bad), env=cli_env)
    assert result.returncode == 1 and "line" in result.stderr
    bomb = tmp_path / "bomb.opml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><opml><body>'
        '<outline xmlUrl="https://a.example/&a;"/></body></opml>'
    )
    assert run_tracker("feeds", "import-opml", str(bomb), env=cli_env).returncode == 1
    assert listed(cli_env) == []


def test_archived_items_are_bulk_loaded_and_bad_lines_reported(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    lines = [
        json.dumps(
            {
                "feed_url": "https://a.example/rss",
                "guid": f"g{i}",
                "title": f"Archived story number {i}",
                "published": "2026-11-01T10:00:00Z",
            }
        )
        for i in range(12_000)
    ]
    lines += ['{"feed_url": "https://a.example/rss"}', "not json", '{"title": "no feed"}']
    lines.append(lines[0])  # a duplicate line
    archive = tmp_path / "items.jsonl"
    archive.write_text("\n".join(lines) + "\n")
    result = run_tracker("items", "import", str(archive), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "12004 lines: 12000 items imported, 1 already stored, 3 rejected" in result.stdout
    assert "line 12002: not JSON" in result.stderr
    again = run_tracker("items", "import", str(archive), env=cli_env)
    assert "0 items imported, 12001 already stored" in again.stdout


def test_a_local_file_runs_through_the_same_parse_path(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_tracker(
        "feeds", "parse", str(FEEDS_DIR / "daily-courier.xml"), "--json", env=cli_env
    )
    described = json.loads(result.stdout)
    assert described["entries"] == 6 and described["error"] is None
    assert described["titles"][0].startswith("Sources say Romanian F-16s")
    page = tmp_path / "page.html"
    page.write_text("<html><body>hello</body></html>")
    refused = run_tracker("feeds", "parse", str(page), "--json", env=cli_env)
    broken = json.loads(refused.stdout)
    assert broken["entries"] == 0 and "not a feed" in broken["error"]
    assert refused.returncode == 1 and "not a feed" in refused.stderr
    # A file over the size cap is refused as unreadable, without reading it all.
    huge = tmp_path / "huge.xml"
    huge.write_bytes(b"<rss>" + b" " * (11 * 1024 * 1024))
    too_big = run_tracker("feeds", "parse", str(huge), env=cli_env)
    assert too_big.returncode == 1 and "larger than" in too_big.stderr


def test_a_site_url_is_turned_into_its_feed_by_discovery(cli_env: dict[str, str]) -> None:
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/news.xml">'
    with FeedServer() as server:
        server.routes["/"] = Route(
            page + b"</head><body>Home</body></html>", content_type="text/html"
        )
        server.routes["/news.xml"] = Route((FEEDS_DIR / "daily-courier.xml").read_bytes())
        allowed = {**cli_env, "TRACKER_FETCH_ALLOW_NETWORKS": '["127.0.0.0/8"]'}
        added = run_tracker(
            "feeds", "add", server.url("/"), "--discover", "--kind", "media", env=allowed
        )
        assert added.returncode == 0, added.stderr
        refused = run_tracker("feeds", "add", server.url("/"), "--discover", env=cli_env)
    assert [f["url"] for f in listed(cli_env)] == [server.url("/news.xml")]
    assert refused.returncode == 1 and "127.0.0.1" in refused.stderr
