"""Prometheus metrics, counted at the stage orchestrators' boundaries (never in storage).

With PROMETHEUS_MULTIPROC_DIR set in the environment before the process starts (as `tracker up`
and the deploy files do), every process (web workers, Celery workers and their prefork
children) writes its values to files in that directory and `render` adds them all up. Without
it, a process counts in memory and renders only its own values."""

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
PREFIX = "rumour_tracker"
# Classifying a batch takes from milliseconds to a minute (a cold model, a big batch).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass(frozen=True)
class Metrics:
    items_ingested: Counter
    fetches: Counter
    classification_seconds: Histogram
    items_classified: Counter
    pairs_suggested: Counter
    pair_decisions: Counter
    alerts: Counter
    pruned: Counter


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@functools.cache
def _own_registry() -> CollectorRegistry:
    return CollectorRegistry()


@functools.cache
def metrics() -> Metrics:
    # Created on first use, not at import: in multiprocess mode a metric opens its files (in a
    # directory a fresh container's /tmp does not have yet).
    path = multiprocess_dir()
    if path is not None:
        os.makedirs(path, exist_ok=True)
    registry = None if path else _own_registry()
    created = Metrics(
        items_ingested=Counter(
            f"{PREFIX}_items_ingested", "New feed items stored.", registry=registry
        ),
        fetches=Counter(
            f"{PREFIX}_fetches",
            "Feed refreshes by outcome (ok, ok_bozo, not_modified, unchanged, or the error kind).",
            ["outcome"],
            registry=registry,
        ),
        classification_seconds=Histogram(
            f"{PREFIX}_classification_seconds",
            "Time to classify one batch of items.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        items_classified=Counter(
            f"{PREFIX}_items_classified", "Items classified.", registry=registry
        ),
        pairs_suggested=Counter(
            f"{PREFIX}_pairs_suggested",
            "New rumour/clarification pairs stored (auto-confirmed ones included).",
            registry=registry,
        ),
        pair_decisions=Counter(
            f"{PREFIX}_pair_decisions",
            "Analysts' decisions on suggested pairs (confirm, reject, skip).",
            ["decision"],
            registry=registry,
        ),
        alerts=Counter(
            f"{PREFIX}_alerts",
            "Alert emails by outcome (sent, failed).",
            ["outcome"],
            registry=registry,
        ),
        pruned=Counter(
            f"{PREFIX}_pruned",
            "Rows deleted by retention (items, reviews, audit).",
            ["kind"],
            registry=registry,
        ),
    )
    # Labelled series exist only once touched, and in multiprocess mode a family without a
    # series is not listed at all: start the known ones at zero.
    for outcome in ("ok", "not_modified", "unchanged"):
        created.fetches.labels(outcome)
    for decision in ("confirm", "reject", "skip"):
        created.pair_decisions.labels(decision)
    for outcome in ("sent", "failed"):
        created.alerts.labels(outcome)
    for kind in ("items", "reviews", "audit"):
        created.pruned.labels(kind)
    return created


def feed_refreshed(outcome: str, new_items: int) -> None:
    m = metrics()
    m.fetches.labels(outcome).inc()
    m.items_ingested.inc(new_items)


def batch_classified(seconds: float, items: int) -> None:
    m = metrics()
    m.classification_seconds.observe(seconds)
    m.items_classified.inc(items)


def pairs_suggested(count: int) -> None:
    metrics().pairs_suggested.inc(count)


def pair_decided(decision: str) -> None:
    metrics().pair_decisions.labels(decision).inc()


def alerts_relayed(sent: int, failed: int) -> None:
    m = metrics()
    m.alerts.labels("sent").inc(sent)
    m.alerts.labels("failed").inc(failed)


def pruned(kind: str, rows: int) -> None:
    metrics().pruned.labels(kind).inc(rows)


class QueueBacklog(Collector):
    """Queue lengths read from the broker at scrape time; absent when it cannot be read."""

    def __init__(self, read: Callable[[], dict[str, int] | None]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lengths = self.read()
        if lengths is None:
            return
        family = GaugeMetricFamily(
            f"{PREFIX}_queue_backlog", "Messages waiting in each queue.", labels=["queue"]
        )
        for queue, length in sorted(lengths.items()):
            family.add_metric([queue], length)
        yield family


def _scrape_registry() -> CollectorRegistry:
    path = multiprocess_dir()
    if path is None:
        return _own_registry()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return registry


def render(backlog: Callable[[], dict[str, int] | None] | None = None) -> bytes:
    """The text exposition of every process's metrics (and the backlog, when given)."""
    metrics()  # so a scrape before any work still lists every metric at zero
    registry = _scrape_registry()
    if backlog is None:
        return generate_latest(registry)
    return generate_latest(_Union(registry, QueueBacklog(backlog)))


class _Union(Collector):
    def __init__(self, *parts: CollectorRegistry | Collector) -> None:
        self.parts = parts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for part in self.parts:
            yield from part.collect()  # type: ignore[misc]


def serve(port: int) -> None:
    """Serve this host's metrics on `port` from a daemon thread (Celery workers' main process)."""
    metrics()  # every series listed from the start, at zero
    start_http_server(port, registry=_scrape_registry())
