"""The clarifications each claim was compared with (0021): pairing reads them back by id when a
later clarification scores the claim again, instead of searching for them once more."""

from collections.abc import Mapping, Sequence

import psycopg
from psycopg.rows import class_row

from tracker.storage.items import ITEM_FOR_MODEL, ItemForModel

# Ids kept per claim: a claim's own search brings at most about 70; each clarification that
# scores it later adds itself, and past this the earliest added go first.
KEPT = 100

# One row per claim, which keeps the ids already there, in order, then the new ones, each once.
EXTEND = f"""INSERT INTO claim_candidates AS c (item_id, model_version, candidate_ids)
    VALUES (%s, %s, %s)
    ON CONFLICT (item_id, model_version) DO UPDATE SET candidate_ids = (
        SELECT array_agg(id ORDER BY n) FROM (
            SELECT id, n FROM (
                SELECT DISTINCT ON (id) id, n
                FROM unnest(c.candidate_ids || EXCLUDED.candidate_ids) WITH ORDINALITY AS u(id, n)
                ORDER BY id, n
            ) AS once
            ORDER BY n DESC LIMIT {KEPT}
        ) AS kept
    )"""


def of(
    conn: psycopg.Connection, model_version: str, claim_ids: Sequence[int]
) -> dict[int, list[int]]:
    """The ids each claim was compared with, for the claims that have them."""
    rows = conn.execute(
        """SELECT item_id, candidate_ids FROM claim_candidates
           WHERE item_id = ANY(%s) AND model_version = %s""",
        (list(claim_ids), model_version),
    ).fetchall()
    return {int(claim): list(ids) for claim, ids in rows}


def clarifications(
    conn: psycopg.Connection, model_version: str, item_ids: Sequence[int]
) -> list[ItemForModel]:
    """Those of the items still stored that are clarifications under `model_version`."""
    with conn.cursor(row_factory=class_row(ItemForModel), binary=True) as cur:
        cur.execute(
            ITEM_FOR_MODEL
            + """ JOIN pairing_candidates p ON p.item_id = i.id
                  WHERE i.id = ANY(%s) AND p.model_version = %s AND p.label = 'clarification'
                  ORDER BY i.id""",
            (list(item_ids), model_version),
        )
        return cur.fetchall()


def extend(
    conn: psycopg.Connection, model_version: str, compared: Mapping[int, Sequence[int]]
) -> None:
    """Ids each claim was also compared with, after those it has (KEPT at most, latest kept).
    A claim searched again keeps what it had: a clarification may have joined it meanwhile
    from a concurrent batch, and what it had is still what it was compared with."""
    if not compared:
        return
    # In claim order, as every batch writes them: no two wait on each other's rows.
    with conn.cursor() as cur:
        cur.executemany(
            EXTEND,
            [(claim, model_version, list(ids)) for claim, ids in sorted(compared.items())],
        )
