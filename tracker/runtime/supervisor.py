"""`tracker up`: prepare the database, start worker, beat and web, stop them in order."""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import structlog

log = structlog.get_logger(__name__)

STOP_TIMEOUT_S = 30
# A child that exits on its own is started again, as systemd's Restart=always would (Celery's
# worker exits when Redis restarts under it); one that exits this often in the window is
# broken, and `tracker up` stops rather than spin.
RESTART_LIMIT = 5
RESTART_WINDOW_S = 60.0
# Role names start with one of these (a bench runs several "worker-fetch-N").
STOP_ORDER = ("beat", "worker-fetch", "worker-classify", "web")


@dataclass(frozen=True)
class Role:
    name: str
    argv: list[str]


# Fetching waits on the network (threads); classifying and pairing use the CPU (prefork).
POOLS = {"fetch": "threads", "classify": "prefork"}
# -q: no banners; what each process is and does is in the log lines.
CELERY = ("-m", "celery", "-q", "-A", "workers.app")


def worker_argv(queue: str, concurrency: int, node: str, *options: str) -> list[str]:
    """A Celery worker consuming one queue with the pool that suits its work."""
    return [
        sys.executable,
        *CELERY,
        "worker",
        "-Q",
        queue,
        "-P",
        POOLS[queue],
        "-c",
        str(concurrency),
        "-n",
        node,
        *options,
    ]


def beat_argv(schedule: Path, *options: str) -> list[str]:
    return [sys.executable, *CELERY, "beat", "-s", str(schedule), *options]


def roles(data_dir: Path, host: str, port: int, forwarded_allow_ips: str = "") -> list[Role]:
    """`forwarded_allow_ips`: the proxies whose X-Forwarded-For and -Proto the web process
    believes (uvicorn's --forwarded-allow-ips); none by default. Uvicorn's own default trusts
    127.0.0.1, so any local client could pick the address the login throttle counts."""
    python = sys.executable
    name = f"tracker-{os.getpid()}"
    info = ("--loglevel", "INFO")
    proxies = (
        ("--proxy-headers", "--forwarded-allow-ips", forwarded_allow_ips)
        if forwarded_allow_ips
        else ("--no-proxy-headers",)
    )
    return [
        Role(
            "web",
            [
                python,
                "-m",
                "uvicorn",
                "--factory",
                "tracker.web.app:create_app",
                "--host",
                host,
                "--port",
                str(port),
                "--log-level",
                "warning",
                *proxies,
            ],
        ),
        Role("worker-fetch", worker_argv("fetch", 8, f"{name}-fetch@%h", *info)),
        Role("worker-classify", worker_argv("classify", 2, f"{name}-classify@%h", *info)),
        Role("beat", beat_argv(data_dir / "celerybeat-schedule", *info)),
    ]


def secret_key_path(data_dir: Path) -> Path:
    return data_dir / "secret_key"


def local_secret_key_file(data_dir: Path) -> Path:
    """A random session-signing key kept in the data dir, for when none is configured: the
    built-in development key is public, so cookies signed with it could be forged."""
    path = secret_key_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path


def child_env(
    database_url: str,
    broker_url: str,
    data_dir: Path,
    public_url: str,
    allow_networks: Sequence[str],
    secret_key_file: Path | None,
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_BROKER_URL": broker_url,
            "TRACKER_DATA_DIR": str(data_dir),
            "TRACKER_PUBLIC_URL": public_url,
            # SIGTERM as SIGQUIT: a cold shutdown that hands running tasks back to the broker
            # (acks_late) instead of waiting for them; every step is idempotent.
            "REMAP_SIGTERM": "SIGQUIT",
        }
    )
    # Every role's processes count into one directory, so the web role's /metrics adds up the
    # workers' metrics too. Emptied first: files of a previous run's processes would be summed.
    metrics_dir = data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    if secret_key_file is not None:
        env["TRACKER_SECRET_KEY_FILE"] = str(secret_key_file)
    if allow_networks:
        env["TRACKER_FETCH_ALLOW_NETWORKS"] = json.dumps(list(allow_networks))
    return env


class Supervisor:
    def __init__(self, roles: list[Role], env: dict[str, str], output: IO[bytes] | None = None):
        self.roles = roles
        self.env = env
        self.output = output  # where children write; None: our own stdout and stderr
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()

    def start(self) -> None:
        # Handlers first: a signal between here and wait() must still stop children in order.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
        for role in self.roles:
            self._spawn(role)

    def _spawn(self, role: Role) -> None:
        # A session of its own: Ctrl-C reaches only us, and we stop children in order.
        self.procs[role.name] = subprocess.Popen(
            role.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=self.output,
            start_new_session=True,
        )

    def wait(self) -> int:
        """Block until a signal asks us to stop (0), starting again any child that exits on its
        own; 1 when one keeps exiting (RESTART_LIMIT times within RESTART_WINDOW_S)."""
        exits: dict[str, list[float]] = {}
        while not self.stopping.wait(0.5):
            for role in self.roles:
                code = self.procs[role.name].poll()
                if code is None:
                    continue
                now = time.monotonic()
                recent = [t for t in exits.get(role.name, []) if now - t < RESTART_WINDOW_S]
                exits[role.name] = [*recent, now]
                if len(exits[role.name]) > RESTART_LIMIT:
                    log.error("process keeps exiting, stopping", role=role.name, code=code)
                    return 1
                log.warning(
                    "process exited unexpectedly, starting it again", role=role.name, code=code
                )
                self._spawn(role)
        return 0

    def stop(self) -> None:
        # Beat first (no new work), then the workers (they requeue what runs), then the web.
        for name in sorted(self.procs, key=_stop_rank):
            proc = self.procs[name]
            if proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("process did not stop in time, killing it", role=name)
                proc.kill()
                proc.wait()


def _stop_rank(name: str) -> int:
    return next((i for i, role in enumerate(STOP_ORDER) if name.startswith(role)), len(STOP_ORDER))
