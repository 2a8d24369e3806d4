"""Settings, read once from `TRACKER_*` environment variables (and `*_FILE` for secrets)."""

import functools
import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tracker.domain import DEFAULT_CLAIM_MIN_RUMOUR, FeedKind

DEFAULT_SECRET_KEY = "insecure-development-key-change-me"  # noqa: S105 - refused in production
SECRET_FIELDS = (
    "secret_key",
    "smtp_password",
    "database_url",
    "broker_url",
    "database_read_url",
    "metrics_token",
)


def default_data_dir() -> Path:
    return platformdirs.user_data_path("rumour-tracker")


def _archive_defaults() -> dict[FeedKind, int]:
    return {"factcheck": 3650, "official": 3650}


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error must not echo a secret back into logs.
    model_config = SettingsConfigDict(
        env_prefix="TRACKER_", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["development", "production"] = "development"
    # None means "start the embedded PostgreSQL / Redis under data_dir".
    database_url: SecretStr | None = None
    broker_url: SecretStr | None = None
    # A streaming replica for the web UI's read-only pages and API lists; None: the primary.
    database_read_url: SecretStr | None = None
    # Set with `sentinel://h1:26379;sentinel://h2:26379` as TRACKER_BROKER_URL.
    broker_sentinel_master: str | None = None
    # Longer than any task, so no task is redelivered merely for being slow.
    broker_visibility_timeout_s: int = Field(default=3600, ge=60)
    data_dir: Path = Field(default_factory=default_data_dir)
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)

    # A web session ends after this long unused, and this long after login whatever its use.
    session_idle_h: float = Field(default=12.0, gt=0)
    session_lifetime_h: float = Field(default=168.0, gt=0)

    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None
    # Larger request bodies are refused with 413 while they are read (OPML uploads have their
    # own cap, tracker.web.feed_views).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    mail_from: str = "Rumour Tracker <tracker@localhost>"

    fetch_timeout_s: float = Field(default=30.0, gt=0)
    fetch_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    fetch_allow_networks: list[str] = Field(default_factory=list)
    # The reverse proxies whose X-Forwarded-For / -Proto `tracker up`'s web process believes
    # (comma-separated addresses, or "*"); none by default.
    forwarded_allow_ips: str = ""
    user_agent: str = "RumourTracker/0.1 (+https://github.com/rumour-tracker/rumour-tracker)"
    poll_interval_s: int = Field(default=900, ge=10)
    poll_min_interval_s: int = Field(default=300, ge=10)
    poll_max_interval_s: int = Field(default=86400, ge=10)
    max_backoff_s: int = Field(default=86400, ge=60)
    disable_after_failing_h: float = Field(default=72.0, gt=0)
    fetch_per_host: int = Field(default=4, ge=1)
    # How long a fetch dispatched to the queue holds its feed before it starts. Its message may
    # be lost with a worker killed before it started it (kept unacked in Redis for the hour of
    # the visibility timeout), and the feed waits this long. Dispatch keeps at most 200 fetches
    # waiting (feeds.DISPATCH_BATCH): 25 for each of `tracker up`'s 8 fetch threads, which 120 s
    # covers at up to 4.8 s a fetch. A longer wait dispatches the feed again, and the older
    # message finds its lease gone and does nothing. Once the fetch starts it holds the feed for
    # its deadline plus time to store (tracker.pipeline.refresh).
    fetch_lease_s: int = Field(default=120, ge=5)

    dispatch_every_s: float = Field(default=10.0, gt=0)
    relay_every_s: float = Field(default=10.0, gt=0)
    # The sweeper re-queues items stored but not classified, or classified but not paired, for
    # longer than the grace period: the work of a message lost to a killed worker or an outage.
    # With nothing waiting in the classify queue, an item not done is lost or in a running task:
    # the grace outlasts the longest task and its retries (`tracker bench faults` reports how
    # long tasks take under a 2,000-item burst). While messages wait, the item is most likely
    # among them, and the sweeper waits the backlog grace.
    sweep_every_s: float = Field(default=30.0, gt=0)
    sweep_grace_s: float = Field(default=60.0, gt=0)
    sweep_backlog_grace_s: float = Field(default=600.0, gt=0)
    pair_window_days: int = Field(default=14, ge=1)
    # Clarifications of these feed kinds stay matchable this many days: a rumour that comes
    # round again was often checked years ago.
    pair_archive_days: dict[FeedKind, int] = Field(default_factory=_archive_defaults)
    # Items of media, social and other feeds are claims to pair from this rumour probability.
    pair_claim_min_rumour: float = Field(default=DEFAULT_CLAIM_MIN_RUMOUR, ge=0, le=1)
    # Scores are the pair re-ranker's probability that the clarification answers the rumour.
    pair_suggest_threshold: float = Field(default=0.2, ge=0, le=1)
    # Pairs at or above this are confirmed without review; above 1 (the default) turns that
    # off: no threshold of the shipped re-ranker has shown 0.99 precision on real data
    # (docs/models.md).
    pair_autoconfirm_threshold: float = Field(default=1.01, ge=0, le=2)
    # How often models retrain from analysts' decisions (only when there are new ones).
    retrain_every_h: float = Field(default=24.0, gt=0)
    # The public datasets the shipped models were trained on (laid out as ../shared/data), if
    # this deployment has them: a retrained model is then also validated on their held-out
    # part. Without them, the seed corpus's held-out part stands in
    # (tracker/pipeline/training.py).
    public_data_dir: Path | None = None
    story_threshold: float = Field(default=0.45, ge=0, le=1)
    # Items fetched longer ago than this are deleted (0: never), except what analysts and the
    # fact-check archive need (tracker.pipeline.retention); review decisions and the audit log
    # by their own setting (0, the default: kept forever). A pass every prune_every_h hours, in
    # batches with a pause between them so the review queue is not kept waiting.
    retain_items_days: int = Field(default=365, ge=0)
    retain_decisions_days: int = Field(default=0, ge=0)
    prune_every_h: float = Field(default=1.0, gt=0)
    prune_batch: int = Field(default=1000, ge=1)
    prune_pause_s: float = Field(default=0.05, ge=0)
    rumour_alert_min_probability: float = Field(default=0.5, ge=0, le=1)
    # This many immediate alerts due at once for one subscription become one digest; 0: never.
    alert_burst: int = Field(default=5, ge=0)
    # A failed alert is retried after base * 2^attempts seconds (capped at an hour).
    alert_retry_base_s: float = Field(default=30.0, gt=0)
    # Ops alerts: a worker heartbeat every N s, missing for longer than the limit; backlogs.
    heartbeat_every_s: float = Field(default=60.0, gt=0)
    heartbeat_stale_s: float = Field(default=300.0, gt=0)
    ops_check_every_s: float = Field(default=60.0, gt=0)
    ops_backlog_limit: int = Field(default=1000, ge=1)
    ops_feed_failing_h: float = Field(default=6.0, gt=0)

    log_format: Literal["json", "console"] = "console"
    # debug also shows Celery's routine lines (every task received and done, every beat tick).
    log_level: Literal["debug", "info", "warning"] = "info"
    # Bearer token Prometheus sends to /metrics; None: /metrics answers 404.
    metrics_token: SecretStr | None = None
    # Celery workers serve their own processes' metrics on this port (0: not served).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        if self.environment == "production":
            problems = []
            if self.secret_key.get_secret_value() == DEFAULT_SECRET_KEY:
                problems.append("TRACKER_SECRET_KEY is the built-in development key")
            if len(self.secret_key.get_secret_value()) < 32:
                problems.append("TRACKER_SECRET_KEY is shorter than 32 characters")
            if self.database_url is None or self.broker_url is None:
                problems.append("TRACKER_DATABASE_URL and TRACKER_BROKER_URL must be set")
            if problems:
                raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    @property
    def has_default_secret_key(self) -> bool:
        return self.secret_key.get_secret_value() == DEFAULT_SECRET_KEY

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.broker_url is None

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret replaced by `***`."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if name in SECRET_FIELDS and value is not None:
                shown[name] = "***"
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        return shown


def _secrets_from_files() -> dict[str, str]:
    """`TRACKER_X_FILE=/run/secrets/x` sets X from the file's content (Docker/K8s secrets)."""
    found = {}
    for name in SECRET_FIELDS:
        path = os.environ.get(f"TRACKER_{name.upper()}_FILE")
        if path:
            try:
                found[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"TRACKER_{name.upper()}_FILE: cannot read {path}: {exc}") from exc
    return found


@functools.cache
def get_settings() -> Settings:
    """Read and validate the configuration once per process."""
    return Settings(**_secrets_from_files())  # type: ignore[arg-type]
