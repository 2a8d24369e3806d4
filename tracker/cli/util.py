"""Shared pieces of the command line: settings, services, connections, errors, JSON output."""

import contextlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import typer
from pydantic import SecretStr, ValidationError

from tracker.config import Settings, get_settings
from tracker.runtime import embedded
from tracker.storage import db


def one_of(values: Iterable[str]) -> Callable[[Any], Any]:
    """An option's check: a value (or each of a repeated option's) from a fixed set; anything
    else is refused with the choices, exit code 2, before the command runs."""
    allowed = tuple(values)

    def check(value: Any) -> Any:
        given = value if isinstance(value, list) else [value]
        bad = [v for v in given if v is not None and v not in allowed]
        if bad:
            raise typer.BadParameter(f"{bad[0]!r} is not one of {', '.join(allowed)}")
        return value

    return check


def choices(values: Iterable[str]) -> str:
    """The help text naming the choices one_of accepts."""
    return f"One of: {', '.join(values)}."


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def settings() -> Settings:
    try:
        return get_settings()
    except (ValidationError, ValueError) as exc:
        raise fail(f"invalid configuration:\n{exc}") from exc


@contextlib.contextmanager
def _configured_or_embedded(
    configured: SecretStr | None,
    start: Callable[[Path], AbstractContextManager[str]],
    data_dir: Path,
) -> Iterator[str]:
    if configured is not None:
        yield configured.get_secret_value()
        return
    try:
        with start(data_dir) as url:
            yield url
    except embedded.EmbeddedUnavailableError as exc:
        raise fail(str(exc)) from exc


def database_url(s: Settings) -> AbstractContextManager[str]:
    """The configured database, or the embedded one under the data dir."""
    return _configured_or_embedded(s.database_url, embedded.postgres_server, s.data_dir)


def broker_url(s: Settings) -> AbstractContextManager[str]:
    """The configured broker, or the embedded Redis under the data dir (only `up` needs one)."""
    return _configured_or_embedded(s.broker_url, embedded.redis_server, s.data_dir)


@contextlib.contextmanager
def connect() -> Iterator[psycopg.Connection]:
    """A connection to an up-to-date database, for one CLI command."""
    with database_url(settings()) as url:
        try:
            db.check_schema(url)
            conn = psycopg.connect(url, autocommit=True)
        except db.SchemaOutOfDateError as exc:
            raise fail(str(exc)) from exc
        except psycopg.OperationalError as exc:
            raise fail(f"cannot reach the database: {exc}") from exc
        with conn:
            yield conn


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Rows under a header line, each column as wide as its widest cell; the last column is
    left to run on (titles, errors). Nothing at all when there are no rows but the header."""
    cells = [[str(c) for c in row] for row in rows]
    table = [list(headers), *cells]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers) - 1)]
    for row in table:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*padded, row[-1]]).rstrip())
    if not cells:
        typer.echo("(none)")


def score(value: float) -> str:
    """Three decimals, cut not rounded: 0.9996 is not shown as the certainty 1.000."""
    return f"{math.floor(value * 1000) / 1000:.3f}"


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
