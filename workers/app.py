"""The Celery app. Configuration is a promise, read from settings on first use, not at import."""

from typing import Any

from celery import Celery, signals

from tracker import metrics
from tracker.config import get_settings
from tracker.logs import configure as configure_logs
from tracker.runtime import broker
from tracker.runtime.broker import QUEUES
from tracker.storage.db import SchemaOutOfDateError, check_schema


def celery_config() -> dict[str, Any]:
    settings = get_settings()
    if settings.broker_url is None or settings.database_url is None:
        raise RuntimeError(
            "TRACKER_BROKER_URL and TRACKER_DATABASE_URL must be set for workers; "
            "`tracker up` sets them for the processes it starts"
        )
    return {
        "broker_url": settings.broker_url.get_secret_value(),
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        # A task that queues the next stage while Redis restarts waits for it (about a minute
        # in all) rather than failing after Celery's default 0.6 s and leaving its items to
        # the sweeper: 7 tasks failed so under a 200 x 10 load.
        "task_publish_retry_policy": {
            "max_retries": 15,
            "interval_start": 0.5,
            "interval_step": 1,
            "interval_max": 5,
        },
        "broker_connection_max_retries": None,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_hijack_root_logger": False,
        # Our handler writes to stderr; redirected back into logging, each line came out twice.
        "worker_redirect_stdouts": False,
        # The visibility timeout, and Sentinel's master name when the URL is sentinel://.
        "broker_transport_options": broker.transport_options(settings),
        "task_routes": {
            "rt.classify_items": {"queue": "classify"},
            "rt.pair_items": {"queue": "classify"},
            "rt.retrain_models": {"queue": "classify"},
            # On the fetch queue: it must run while the classify queue is the one stuck.
            "rt.sweep_stalled": {"queue": "fetch"},
            "rt.*": {"queue": "fetch"},
        },
        "beat_schedule": {
            "dispatch-due-feeds": {
                "task": "rt.dispatch_due_feeds",
                "schedule": settings.dispatch_every_s,
            },
            "relay-outbox": {"task": "rt.relay_outbox", "schedule": settings.relay_every_s},
            "sweep-stalled": {"task": "rt.sweep_stalled", "schedule": settings.sweep_every_s},
            "retrain-models": {
                "task": "rt.retrain_models",
                "schedule": settings.retrain_every_h * 3600,
            },
            "check-ops": {"task": "rt.check_ops", "schedule": settings.ops_check_every_s},
            "prune": {"task": "rt.prune", "schedule": settings.prune_every_h * 3600},
            **{
                f"heartbeat-{queue}": {
                    "task": "rt.heartbeat",
                    "schedule": settings.heartbeat_every_s,
                    "args": (queue,),
                    "options": {"queue": queue},
                }
                for queue in QUEUES
            },
        },
    }


app = Celery("rumour_tracker", include=["workers.tasks"])
app.add_defaults(celery_config)


def _configure_logging(**_: Any) -> None:
    settings = get_settings()
    configure_logs(settings.log_format, settings.log_level)


def _start_process(**kwargs: Any) -> None:
    settings = get_settings()
    _configure_logging(**kwargs)
    assert settings.database_url is not None
    try:
        check_schema(settings.database_url.get_secret_value())
    except SchemaOutOfDateError as exc:
        # SystemExit passes through Celery's signal dispatch, which logs and swallows Exceptions.
        raise SystemExit(f"error: {exc}") from exc


def _start_worker(**kwargs: Any) -> None:
    _start_process(**kwargs)
    port = get_settings().worker_metrics_port
    if port:
        # In the main process, before the pool forks: one endpoint adds up every child.
        metrics.serve(port)


# With a receiver here, Celery sets up no logging of its own (beat's lines came out twice).
signals.setup_logging.connect(_configure_logging, weak=False)
signals.worker_init.connect(_start_worker, weak=False)
signals.beat_init.connect(_start_process, weak=False)
