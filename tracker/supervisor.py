"""`tracker up`: prepare the database, start worker, beat and web, stop them in order."""

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

STOP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Role:
    name: str
    argv: list[str]


def roles(data_dir: Path, host: str, port: int) -> list[Role]:
    python = sys.executable
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
            ],
        ),
        # One threads-pool worker serves every queue on a single machine; deploy/ splits them.
        Role(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "worker",
                "-P",
                "threads",
                "-c",
                "8",
                "--loglevel",
                "INFO",
                "-n",
                f"tracker-{os.getpid()}@%h",
            ],
        ),
        Role(
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "beat",
                "--loglevel",
                "INFO",
                "-s",
                str(data_dir / "celerybeat-schedule"),
            ],
        ),
    ]


def child_env(
    database_url: str,
    broker_url: str,
    data_dir: Path,
    public_url: str,
    allow_networks: Sequence[str],
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_BROKER_URL": broker_url,
            "TRACKER_DATA_DIR": str(data_dir),
            "TRACKER_PUBLIC_URL": public_url,
            # Celery turns SIGTERM into a cold shutdown unless remapped; SIGQUIT requeues the task.
            "REMAP_SIGTERM": "SIGQUIT",
        }
    )
    if allow_networks:
        env["TRACKER_FETCH_ALLOW_NETWORKS"] = json.dumps(list(allow_networks))
    return env


class Supervisor:
    def __init__(self, roles: list[Role], env: dict[str, str]):
        self.roles = roles
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()

    def start(self) -> None:
        # Handlers first: a signal between here and wait() must still stop children in order.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
        for role in self.roles:
            # A session of its own: Ctrl-C reaches only us, and we stop children in order.
            self.procs[role.name] = subprocess.Popen(
                role.argv, env=self.env, stdin=subprocess.DEVNULL, start_new_session=True
            )

    def wait(self) -> int:
        """Block until a signal asks us to stop (0) or a child dies on its own (1)."""
        while not self.stopping.wait(0.5):
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    log.error("process exited unexpectedly", role=name, code=proc.returncode)
                    return 1
        return 0

    def stop(self) -> None:
        # Beat first (no new work), then the worker (finishes or requeues), then the web.
        for name in ("beat", "worker", "web"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("process did not stop in time, killing it", role=name)
                proc.kill()
                proc.wait()
