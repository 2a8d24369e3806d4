"""`tracker up --demo` as a newcomer runs it: embedded services, the demo pair in the browser's
pages and in the CLI, Ctrl-C, and a restart that keeps the data."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Endpoints, free_port
from tests.factories import CSRF_INPUT, log_in

embedded_only = pytest.mark.skipif(
    bool(os.environ.get("TRACKER_TEST_DATABASE_URL")),
    reason="exercises the embedded PostgreSQL and Redis; runs in the default (embedded) pass",
)

DEADLINE_S = 120


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}


class Up:
    def __init__(self, data_dir: Path, port: int, demo_port: int, run: int):
        self.log = data_dir.with_suffix(f".{run}.log")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tracker",
                "--data-dir",
                str(data_dir),
                "up",
                "--demo",
                "--port",
                str(port),
                "--demo-port",
                str(demo_port),
            ],
            env=clean_env(),
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_up(self) -> str:
        deadline = time.monotonic() + DEADLINE_S
        while "Rumour Tracker is up" not in self.output():
            assert self.proc.poll() is None, self.output()[-3000:]
            assert time.monotonic() < deadline, self.output()[-3000:]
            time.sleep(0.2)
        return self.output()

    def ctrl_c(self) -> int:
        # A terminal's Ctrl-C reaches the whole foreground process group.
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=90)


def cli(data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "--data-dir", str(data_dir), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(f"/tmp/rt-up-{uuid.uuid4().hex[:8]}")  # noqa: S108 - short unix socket paths
    yield path
    for leftover in (path, path.with_suffix(".1.log"), path.with_suffix(".2.log")):
        subprocess.run(["rm", "-rf", str(leftover)], check=False)


def allow_lists(root: int) -> set[str]:
    """TRACKER_FETCH_ALLOW_NETWORKS as the processes `tracker up` started have it."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # the parent's pid follows the state, after the command's closing parenthesis
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):  # gone meanwhile
            continue
    family, grown = {root}, True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grown = True
    prefix = b"TRACKER_FETCH_ALLOW_NETWORKS="
    found = set()
    for pid in family - {root}:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        found |= {v[len(prefix) :].decode() for v in environ if v.startswith(prefix)}
    return found


def unmarked(page: str) -> str:
    return re.sub(r"</?mark>", "", page)


@embedded_only
def test_the_demo_pair_shows_up_and_survives_a_restart(data_dir: Path) -> None:
    port, demo_port = free_port(), free_port()
    started = time.monotonic()
    up = Up(data_dir, port, demo_port, 1)
    try:
        output = up.wait_until_up()
        password = re.findall(r"admin@localhost / (\S+)", output)[0]
        deadline = time.monotonic() + DEADLINE_S
        while not any(
            "F-16" in p["rumour"]["title"]
            for p in json.loads(cli(data_dir, "pairs", "list", "--json"))
        ):
            assert time.monotonic() < deadline, up.output()[-3000:]
            time.sleep(1)
        print(f"demo pair listed {time.monotonic() - started:.1f} s after `tracker up --demo`")
        # The workers may fetch the demo's feed server, and nothing else on this machine.
        assert allow_lists(up.proc.pid) == {json.dumps([f"127.0.0.1:{demo_port}"])}
        # A command beside the running `tracker up` reaches its embedded broker.
        status = json.loads(cli(data_dir, "workers", "status", "--json", "--timeout", "5"))
        assert {w["name"].split("@")[0].rsplit("-", 1)[-1] for w in status["workers"]} >= {
            "fetch",
            "classify",
        }
        with httpx.Client(base_url=up.url, timeout=10) as browser:
            page = log_in(browser, "admin@localhost", password, follow_redirects=True)
            assert "/account/password" in str(page.url)
            token = CSRF_INPUT.findall(page.text)[0]
            new_password = "a-long-new-password-42"
            queue = browser.post(
                "/account/password",
                follow_redirects=True,
                data={
                    "csrf_token": token,
                    "current_password": password,
                    "new_password": new_password,
                    "new_password_again": new_password,
                },
            )
            # Shared terms are highlighted (<mark>) inside item titles on the queue.
            text = unmarked(queue.text)
            assert "Romanian F-16s" in text and "Ministry of National Defence" in text
    finally:
        code = up.ctrl_c()
    assert code == 0, up.output()[-3000:]
    assert "stopping: beat, workers, web" in up.output()
    assert not (data_dir / "redis" / "redis.sock").exists()
    assert not (data_dir / "pg" / "postmaster.pid").exists()
    pairs_before = json.loads(cli(data_dir, "pairs", "list", "--json"))

    again = Up(data_dir, port, demo_port, 2)
    try:
        output = again.wait_until_up()
        assert "log in with your existing account" in output
        assert json.loads(cli(data_dir, "pairs", "list", "--json"))[: len(pairs_before)] == (
            pairs_before
        )
        with httpx.Client(base_url=again.url, timeout=10) as browser:
            queue_again = log_in(
                browser, "admin@localhost", new_password, follow_redirects=True
            ).text
            assert "Romanian F-16s" in unmarked(queue_again)
    finally:
        assert again.ctrl_c() == 0


def test_with_urls_configured_up_uses_those_services_and_starts_only_its_own(
    db_url: str, services: Endpoints, tmp_path: Path
) -> None:
    port = free_port()
    env = {**clean_env(), "TRACKER_DATABASE_URL": db_url, "TRACKER_BROKER_URL": services.broker_url}
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracker",
            "--data-dir",
            str(tmp_path / "d"),
            "up",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while "Rumour Tracker is up" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        assert not (tmp_path / "d" / "pg").exists()
        assert not (tmp_path / "d" / "redis").exists()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=90) == 0, log.read_text()[-3000:]
