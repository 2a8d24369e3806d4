"""Managing feeds from the command line: add, edit, disable, OPML, bulk import, local parse."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Endpoints
from tests.feedserver import FeedServer, Route
from tracker.demo import FEEDS_DIR


def tracker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def env(db_url: str, services: Endpoints) -> dict[str, str]:
    return {**os.environ, "TRACKER_DATABASE_URL": db_url, "TRACKER_BROKER_URL": services.broker_url}


def listed(env: dict[str, str]) -> list[dict[str, object]]:
    result = tracker("feeds", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_a_feed_is_added_edited_disabled_enabled_and_deleted(env: dict[str, str]) -> None:
    assert (
        tracker(
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
            env=env,
        ).returncode
        == 0
    )
    [feed] = listed(env)
    assert (feed["tags"], feed["language"], feed["min_interval_s"]) == (
        ["defence", "ro"],
        "ro",
        600,
    )
    assert (
        tracker("feeds", "edit", "1", "--kind", "factcheck", "--title", "MoD", env=env).returncode
        == 0
    )
    assert tracker("feeds", "disable", "1", env=env).returncode == 0
    [feed] = listed(env)
    assert (feed["kind"], feed["title"], feed["enabled"]) == ("factcheck", "MoD", False)
    assert tracker("feeds", "enable", "1", env=env).returncode == 0
    assert listed(env)[0]["enabled"] is True
    assert tracker("feeds", "poll", "1", env=env).returncode == 0
    assert tracker("feeds", "delete", "1", "--yes", env=env).returncode == 0
    assert listed(env) == []
    missing = tracker("feeds", "disable", "99", env=env)
    assert missing.returncode == 1 and "no feed with id 99" in missing.stderr


def test_ten_thousand_feeds_import_from_opml_and_export_back(
    env: dict[str, str], tmp_path: Path
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
    imported = tracker("feeds", "import-opml", str(source), "--kind", "media", env=env)
    assert imported.returncode == 0, imported.stderr
    assert "10000 feeds added, 0 already registered, 1 skipped" in imported.stdout
    assert "ftp://x.example/f" in imported.stderr
    again = tracker("feeds", "import-opml", str(source), env=env)
    assert "0 feeds added, 10000 already registered" in again.stdout
    exported = tmp_path / "out.opml"
    assert tracker("feeds", "export-opml", str(exported), env=env).returncode == 0
    text = exported.read_text()
    assert text.count("xmlUrl=") == 10_000 and 'rtKind="media"' in text
    feeds = listed(env)
    assert len(feeds) == 10_000 and feeds[0]["tags"] == ["news"]


def test_a_malformed_opml_file_is_a_clear_error_and_adds_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.opml"
    bad.write_text('<opml><body><outline xmlUrl="https://a.example/f">')
    result = tracker("feeds", "import-opml", str(bad), env=env)
    assert result.returncode == 1 and "line" in result.stderr
    bomb = tmp_path / "bomb.opml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><opml><body>'
        '<outline xmlUrl="https://a.example/&a;"/></body></opml>'
    )
    assert tracker("feeds", "import-opml", str(bomb), env=env).returncode == 1
    assert listed(env) == []


def test_archived_items_are_bulk_loaded_and_bad_lines_reported(
    env: dict[str, str], tmp_path: Path
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
    result = tracker("items", "import", str(archive), env=env)
    assert result.returncode == 0, result.stderr
    assert "12004 lines: 12000 items imported, 1 already stored, 3 rejected" in result.stdout
    assert "line 12002: not JSON" in result.stderr
    again = tracker("items", "import", str(archive), env=env)
    assert "0 items imported, 12001 already stored" in again.stdout


def test_a_local_file_runs_through_the_same_parse_path(env: dict[str, str], tmp_path: Path) -> None:
    result = tracker("feeds", "parse", str(FEEDS_DIR / "daily-courier.xml"), "--json", env=env)
    described = json.loads(result.stdout)
    assert described["entries"] == 6 and described["error"] is None
    assert described["titles"][0].startswith("Sources say Romanian F-16s")
    page = tmp_path / "page.html"
    page.write_text("<html><body>hello</body></html>")
    broken = json.loads(tracker("feeds", "parse", str(page), "--json", env=env).stdout)
    assert broken["entries"] == 0 and "not a feed" in broken["error"]


def test_a_site_url_is_turned_into_its_feed_by_discovery(env: dict[str, str]) -> None:
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/news.xml">'
    with FeedServer() as server:
        server.routes["/"] = Route(
            page + b"</head><body>Home</body></html>", content_type="text/html"
        )
        server.routes["/news.xml"] = Route((FEEDS_DIR / "daily-courier.xml").read_bytes())
        allowed = {**env, "TRACKER_FETCH_ALLOW_NETWORKS": '["127.0.0.0/8"]'}
        added = tracker(
            "feeds", "add", server.url("/"), "--discover", "--kind", "media", env=allowed
        )
        assert added.returncode == 0, added.stderr
        refused = tracker("feeds", "add", server.url("/"), "--discover", env=env)
    assert [f["url"] for f in listed(env)] == [server.url("/news.xml")]
    assert refused.returncode == 1 and "127.0.0.1" in refused.stderr
