"""`tracker workers status`: which Celery workers answer now, and each queue's last heartbeat."""

from typing import Annotated, Any

import typer
from kombu.exceptions import OperationalError
from pydantic import SecretStr

from tracker.cli.util import connect, fail, print_json, settings
from tracker.runtime import broker, embedded
from tracker.storage import heartbeats

workers_app = typer.Typer(help="Celery workers.", no_args_is_help=True)


@workers_app.command("status")
def status(
    timeout: Annotated[
        float, typer.Option(min=0.1, max=60, help="Seconds to wait for replies.")
    ] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Ping every worker (celery inspect ping) and show each queue's last heartbeat task.

    Exits 1 when no worker answers."""
    s = settings()
    if s.broker_url is None:
        # Next to a running `tracker up` (same data dir): its embedded broker.
        running = embedded.running_redis_url(s.data_dir)
        if running is None:
            raise fail(
                f"no broker: TRACKER_BROKER_URL is not set and no `tracker up` is running with "
                f"the data dir {s.data_dir} (TRACKER_DATA_DIR or --data-dir)"
            )
        s = s.model_copy(update={"broker_url": SecretStr(running)})
    try:
        answered = broker.ping_workers(s, timeout)
    except (OSError, OperationalError) as exc:
        raise fail(f"cannot reach the broker: {type(exc).__name__}: {exc}") from exc
    with connect() as conn:
        beats = heartbeats.heartbeats(conn)
    report: dict[str, Any] = {
        "workers": [{"name": name, "reply": reply} for name, reply in sorted(answered.items())],
        "heartbeats": [
            {"queue": b.queue, "hostname": b.hostname, "age_s": round(b.age_s, 1)} for b in beats
        ],
    }
    if as_json:
        print_json(report)
    else:
        _print(report)
    if not answered:
        raise typer.Exit(1)


def _print(report: dict[str, Any]) -> None:
    typer.echo(f"workers answering ping: {len(report['workers'])}")
    for worker in report["workers"]:
        typer.echo(f"  {worker['name']}: {worker['reply']}")
    typer.echo("last heartbeat per queue:" + ("" if report["heartbeats"] else " none yet"))
    for beat in report["heartbeats"]:
        typer.echo(f"  {beat['queue']}: {beat['hostname']} {beat['age_s']} s ago")
