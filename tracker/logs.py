"""structlog set-up: our events and every stdlib record (Celery, uvicorn, libraries) go through
one handler that renders JSON lines or key=value lines, with secrets redacted."""

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

from tracker.redact import MASK, redact_text

SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|cookie|api_?key", re.I)
HANDLER_NAME = "rumour-tracker"
# Celery's lines for every task received and done, every due beat task, every worker meeting:
# routine, many a minute. Shown at TRACKER_LOG_LEVEL=debug; errors always.
ROUTINE_LOGGERS = (
    "celery.beat",
    "celery.worker.strategy",
    "celery.app.trace",
    "celery.worker.consumer.mingle",
    "celery.worker.consumer.connection",
)


def _redact_value(key: str, value: Any) -> Any:
    if SECRET_KEYS.search(key) and value is not None:
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, BaseException):
        return redact_text(str(value))
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A processor: secret-named keys are masked, and secrets in URLs (tracker.redact) in any
    text."""
    for key, value in list(event_dict.items()):
        if not key.startswith("_"):
            event_dict[key] = _redact_value(key, value)
    return event_dict


def _renderer(log_format: str) -> structlog.typing.Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer()
    return structlog.processors.KeyValueRenderer(key_order=["timestamp", "event"], sort_keys=True)


def configure(
    log_format: Literal["json", "console"] = "console",
    level: Literal["debug", "info", "warning"] = "info",
) -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks are rendered into text before redaction sees them.
        structlog.processors.format_exc_info,
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _renderer(log_format),
            ],
        )
    )
    root = logging.getLogger()
    # Configuring twice (a worker's init after the CLI's) replaces our handler, never doubles it.
    root.handlers = [h for h in root.handlers if h.get_name() != HANDLER_NAME] + [handler]
    root.setLevel(level.upper())
    for name in ROUTINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    # uvicorn's own handlers would print plain text beside ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # httpx logs every request at INFO; one line per fetch is ours to write.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
