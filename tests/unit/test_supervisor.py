"""`tracker up`'s supervisor with real child processes: a child that exits is started again, one
that keeps exiting stops the supervisor, and a stop request ends every child."""

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tracker.runtime import embedded, supervisor
from tracker.runtime.supervisor import Role, Supervisor

# Counts its starts in a file; the first start exits with an error, later ones keep running.
FLAKY = """
import pathlib, sys, time
starts = pathlib.Path(sys.argv[1])
n = int(starts.read_text()) if starts.exists() else 0
starts.write_text(str(n + 1))
if n == 0:
    sys.exit(3)
time.sleep(600)
"""


@pytest.fixture(autouse=True)
def _signal_handlers() -> Iterator[None]:
    # Supervisor.start installs its own SIGINT/SIGTERM handlers: give pytest its own back.
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def starts(path: Path) -> int:
    return int(path.read_text()) if path.exists() else 0


def test_a_child_that_exits_is_started_again(tmp_path: Path) -> None:
    counter = tmp_path / "starts"
    sup = Supervisor([Role("worker-fetch", [sys.executable, "-c", FLAKY, str(counter)])], {})
    sup.start()

    def stop_once_restarted() -> None:
        deadline = time.monotonic() + 30
        while starts(counter) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        sup.stopping.set()

    threading.Thread(target=stop_once_restarted, daemon=True).start()
    try:
        assert sup.wait() == 0
        assert starts(counter) == 2
        assert sup.procs["worker-fetch"].poll() is None, "the second start keeps running"
    finally:
        sup.stop()
    assert sup.procs["worker-fetch"].poll() is not None


def test_a_child_that_keeps_exiting_stops_the_supervisor(tmp_path: Path) -> None:
    counter = tmp_path / "starts"
    crash = "import pathlib, sys; p = pathlib.Path(sys.argv[1]); p.write_text(p.read_text() + 'x')"
    counter.write_text("")
    sleeper = Role("web", [sys.executable, "-c", "import time; time.sleep(600)"])
    sup = Supervisor([sleeper, Role("beat", [sys.executable, "-c", crash, str(counter)])], {})
    sup.start()
    try:
        assert sup.wait() == 1
        assert len(counter.read_text()) == supervisor.RESTART_LIMIT + 1
    finally:
        sup.stop()
    assert sup.procs["web"].poll() is not None, "the others are stopped too"


def test_the_data_dir_is_made_private_to_its_user(tmp_path: Path) -> None:
    shared = tmp_path / "data"
    shared.mkdir(mode=0o755)
    with embedded.run_lock(shared):
        assert shared.stat().st_mode & 0o777 == 0o700
    with embedded.run_lock(tmp_path / "new" / "data"):
        assert (tmp_path / "new" / "data").stat().st_mode & 0o777 == 0o700


FORWARDED = {"client": "203.0.113.9", "scheme": "https"}
ECHO_APP = "tests.asgi_echo:create_app"


@pytest.mark.parametrize(
    ("trusted", "seen"),
    [("", {"client": "127.0.0.1", "scheme": "http"}), ("127.0.0.1", FORWARDED)],
)
def test_the_web_process_believes_forwarded_headers_only_from_configured_proxies(
    tmp_path: Path, trusted: str, seen: dict[str, str]
) -> None:
    port = free_port()
    [web] = [r for r in supervisor.roles(tmp_path, "127.0.0.1", port, trusted) if r.name == "web"]
    # The web role's uvicorn, flags and all, serving an app that shows what it was told.
    argv = [ECHO_APP if a == "tracker.web.app:create_app" else a for a in web.argv]
    proc = subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[2])
    try:
        headers = {"x-forwarded-for": FORWARDED["client"], "x-forwarded-proto": "https"}
        assert answer(f"http://127.0.0.1:{port}/", headers) == seen
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def answer(url: str, headers: dict[str, str]) -> Any:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=2).json()
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
