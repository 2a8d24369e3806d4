"""The real pipeline on loopback for `tracker bench faults`: our own Redis (AOF on) and
PostgreSQL in a temp dir, so both can be restarted; Celery fetch and classify workers and beat as
`tracker up` starts them; a feed server that can stall a fetch; an SMTP sink that can go down."""

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from tracker.runtime import embedded, supervisor

STALL_S = 60
# How often the bench looks for a process that exited, to start it again.
WATCH_EVERY_S = 0.5
# What every run needs, whatever it measures: feeds on loopback, a session key, and the debug
# log the report reads task durations and sweeps from (Celery's "succeeded" lines). Everything
# else, ticks, leases, retries and the sweeper, is as `tracker up` ships it.
BENCH_SETTINGS = {
    "FETCH_ALLOW_NETWORKS": '["127.0.0.0/8"]',
    "SECRET_KEY": "f" * 40,
    "LOG_LEVEL": "debug",
}
# Fast ticks for the integration test's small runs, so a fault and its recovery fit in seconds;
# the mechanisms are the same. A started fetch then holds its feed for 4 + 30 s.
FAST_TICKS = {
    "DISPATCH_EVERY_S": "1",
    "RELAY_EVERY_S": "1",
    "FETCH_TIMEOUT_S": "4",
    "ALERT_RETRY_BASE_S": "1",
    # Each alert its own mail, so a small run has several to count.
    "ALERT_BURST": "0",
    # The relay leases a batch for 60 s + 100 x this: the time after which a row whose send was
    # never marked (the database went away in between) is sent again.
    "SMTP_TIMEOUT_S": "0.5",
}
# Feeds served from one loopback address (127.0.0.1, .2, ...): a feed list spans many sites,
# and dispatch fetches at most TRACKER_FETCH_PER_HOST (4) feeds of one host at a time.
FEEDS_PER_SITE = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


class RedisServer:
    """redis-server with AOF on a loopback port; stop and start keep the data dir."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [embedded.redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "everysec"]
        argv += ["--maxmemory-policy", "noeviction", "--save", "", "--logfile", "redis.log"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_until(self._answers, 20, "Redis to start")

    def _answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        # SIGTERM: Redis fsyncs the AOF and exits, as it does on a restart by systemd or compose.
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


class PostgresServer:
    """pgserver's PostgreSQL in a temp dir, restarted with its own pg_ctl."""

    def __init__(self, directory: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
        self.server = pgserver.get_server(directory, cleanup_mode="stop")  # type: ignore[attr-defined]
        self.url = str(self.server.get_uri())

    def restart(self) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(
            ["-w", "-m", "fast", "restart"],
            pgdata=self.server.pgdata,
            user=self.server.system_user,
            timeout=60,
        )

    def close(self) -> None:
        self.server.cleanup()


class FeedServer:
    """Serves feed bodies by path from `sites` loopback addresses (127.0.0.1, .2, ...); a path
    in `stall` holds its first request until released."""

    def __init__(self, sites: int = 1) -> None:
        self.routes: dict[str, bytes] = {}
        self.stall: set[str] = set()
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.requests: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] += 1
                if self.path in server.stall:
                    server.stall.discard(self.path)
                    server.stalled.set()
                    server.release.wait(STALL_S)
                body = server.routes.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                with contextlib.suppress(OSError):  # the fetching worker may have been killed
                    self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpds = [
            ThreadingHTTPServer((f"127.0.0.{site + 1}", 0), Handler) for site in range(sites)
        ]
        for httpd in self.httpds:
            httpd.daemon_threads = True
            threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def url(self, path: str, site: int = 0) -> str:
        host, port = self.httpds[site].server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def close(self) -> None:
        self.release.set()
        for httpd in self.httpds:
            httpd.shutdown()
            httpd.server_close()


class SmtpSink:
    """An SMTP server (aiosmtpd) on a fixed port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.message_ids: Counter[str] = Counter()
        self.controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.message_ids[str(message_from_bytes(envelope.content)["Message-ID"])] += 1
        return "250 OK"

    def start(self) -> None:
        try:
            from aiosmtpd.controller import Controller
        except ImportError as exc:
            raise RuntimeError(
                "the fault bench needs aiosmtpd: pip install 'rumour-tracker[test]'"
            ) from exc
        # aiosmtpd logs every SMTP command at INFO: noise around the bench's figures.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class Pipeline:
    """Fetch worker, classify worker and beat as `tracker up` runs them, against our services."""

    def __init__(
        self,
        directory: Path,
        database_url: str,
        broker_url: str,
        smtp_port: int,
        settings: Mapping[str, str],
    ):
        """`settings`: TRACKER_ settings (without the prefix) beside BENCH_SETTINGS."""
        self.directory = directory
        env = supervisor.child_env(
            database_url, broker_url, directory, "http://tracker.invalid", [], None
        )
        env.update({f"TRACKER_{k}": v for k, v in {**BENCH_SETTINGS, **settings}.items()})
        env.update({"TRACKER_SMTP_HOST": "127.0.0.1", "TRACKER_SMTP_PORT": str(smtp_port)})
        self.env = env
        self.argv = {r.name: r.argv for r in supervisor.roles(directory, "127.0.0.1", 0)}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.roles: dict[str, str] = {}
        # Processes that exited on their own and were started again, as systemd's
        # Restart=always or a Kubernetes restart policy does in deploy/.
        self.restarts: Counter[str] = Counter()
        self.lock = threading.RLock()
        self.stopping = threading.Event()

    def watch(self) -> None:
        threading.Thread(target=self._restart_exited, daemon=True).start()

    def _restart_exited(self) -> None:
        # Every half second until stop_all. (Waiting on an event that is set returns at once:
        # a watcher that waited on "watching" spun, and took a core from the pipeline it timed.)
        while not self.stopping.wait(WATCH_EVERY_S):
            with self.lock:
                for name, proc in list(self.procs.items()):
                    if proc.poll() is not None:
                        self.restarts[name] += 1
                        self.start(self.roles[name], name)

    def start(self, role: str, name: str | None = None) -> None:
        with self.lock:
            self._start(role, name)

    def _start(self, role: str, name: str | None) -> None:
        argv = list(self.argv[role])
        if role == "beat" and name is not None:
            # A second beat keeps its own schedule file, as a second host would.
            argv[argv.index("-s") + 1] = str(self.directory / f"{name}-schedule")
        log = (self.directory / f"{name or role}.log").open("ab")
        self.roles[name or role] = role
        self.procs[name or role] = subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        """SIGKILL the process and its pool children, as the OOM killer or a lost host would."""
        with self.lock:
            proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self, name: str) -> None:
        with self.lock:
            proc = self.procs.pop(name)
        proc.terminate()
        try:
            proc.wait(timeout=supervisor.STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        self.stopping.set()
        # Beats first (no new work), then the workers.
        for name in sorted(self.procs, key=lambda n: not n.startswith("beat")):
            self.stop(name)


@contextlib.contextmanager
def services(directory: Path) -> Iterator[tuple[PostgresServer, RedisServer, SmtpSink]]:
    (directory / "redis").mkdir(parents=True)
    pg = PostgresServer(directory / "pg")
    broker = RedisServer(directory / "redis")
    smtp = SmtpSink()
    try:
        broker.start()
        smtp.start()
        yield pg, broker, smtp
    finally:
        smtp.stop()
        broker.stop()
        pg.close()
