"""Sentence vectors for the rumours and clarifications pairing searches but that have none
(`tracker items embed`): rows classified before vectors (0018), and items edited since. Without
one, pairing's vector search never finds the item.

One transaction per batch, in item-id order: an interrupted run keeps what it stored, and the
next run reads only the rows still without a vector."""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg

from classifiers import embedder
from tracker.pipeline import classify
from tracker.storage import item_vectors, models, vectors
from tracker.storage.items import ItemForModel

# Items per transaction: two of the embedder's batches, a few seconds of work on one core, so
# an edit of one of them (which waits for the lock) is not held up for long.
BATCH = 64


class NoActiveModelError(RuntimeError):
    """No item model is active: there is no model version to backfill the vectors of."""


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    seconds: float

    def line(self) -> str:
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        return f"embedded {self.done:,} of {self.total:,} items ({rate:.1f} items/s)"


def model_version(conn: psycopg.Connection) -> str:
    """The active item model's version: the rows pairing searches are that version's."""
    version = models.active_version(conn, "item")
    if version is None:
        raise NoActiveModelError("no item model is active")
    return version


def remaining(conn: psycopg.Connection, version: str, limit: int | None = None) -> int:
    """How many items a run would embed."""
    left = item_vectors.count(conn, version)
    return left if limit is None else min(left, limit)


def backfill(
    conn: psycopg.Connection,
    version: str,
    progress: Callable[[Progress], None],
    batch_size: int = BATCH,
    limit: int | None = None,
) -> int:
    """Embed and store the vectors of `version`'s rows that have none, up to `limit` items;
    returns how many were stored. `conn` is in autocommit mode."""
    total = remaining(conn, version, limit)
    started = time.perf_counter()
    done = after = 0
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        with conn.transaction():
            rows = item_vectors.batch(conn, version, after, size)
            _embed(conn, version, rows)
        if not rows:
            break
        done += len(rows)
        after = rows[-1].id
        progress(Progress(done, max(total, done), time.perf_counter() - started))
    return done


def _embed(conn: psycopg.Connection, version: str, rows: Sequence[ItemForModel]) -> None:
    if not rows:
        return  # Nothing to do: the encoder is not loaded for it.
    # As classification embeds (tracker/pipeline/classify.py): a backfilled vector is the one
    # the item would have had.
    found = embedder.completed([classify.to_model_text(row) for row in rows])
    vectors.store(conn, version, {r.id: v for r, v in zip(rows, found, strict=True)})
