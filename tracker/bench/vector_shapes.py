"""Synthetic sentence vectors shaped like the embedder's, for the benchmarks that store more
items than the encoder could embed in their run (a million texts would take it most of a day
here), and their binary COPY form for both column types of migration 0018.

The encoder's cosines crowd between about 0.7 (unrelated texts) and 0.9 (the same event), as
multilingual-e5's do (pairing.STORY_TRANSLATION_COSINE): a direction every text shares, an
event's centroid and per-item noise, of these lengths, give that."""

from typing import Any

import numpy as np

from classifiers import embedder

DIM = embedder.DIM
CENTROID_WEIGHT = 0.5
ITEM_NOISE = 0.35
CHUNK = 20_000
FLOAT4_OID = 700
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
COPY_TRAILER = b"\xff\xff"
# maintenance_work_mem for building the HNSW indexes: a graph of 500,000 vectors fits. One that
# does not is built on disk, many times slower.
HNSW_MEMORY = "2GB"


def unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)
    return out


class EventVectors:
    """Vectors of items about the events `0 .. n_events - 1` of one seed: the same seed and
    count give the same centroids, so items generated later about an event land near those
    loaded before. An event of -1 is an item about nothing in particular."""

    def __init__(self, seed: int, n_events: int):
        self.common = unit(np.random.default_rng(0).standard_normal(DIM))
        rng = np.random.default_rng([seed, n_events])
        self.centroids = unit(rng.standard_normal((max(n_events, 1), DIM))) * CENTROID_WEIGHT
        self.rng = rng

    def of(self, events: np.ndarray) -> np.ndarray:
        """One unit vector per item, float32, in chunks: a million at once would be 1.5 GB of
        intermediate float64."""
        out = np.empty((len(events), DIM), dtype=np.float32)
        for start in range(0, len(events), CHUNK):
            part = events[start : start + CHUNK]
            alone = unit(self.rng.standard_normal((len(part), DIM))) * CENTROID_WEIGHT
            centre = np.where((part >= 0)[:, None], self.centroids[np.maximum(part, 0)], alone)
            noise = self.rng.standard_normal((len(part), DIM)) * (ITEM_NOISE / np.sqrt(DIM))
            out[start : start + len(part)] = unit(self.common + centre + noise)
        return out


def embedding_fields(pgvector: bool) -> tuple[list[tuple[Any, ...]], int]:
    """The numpy fields of one vector in PostgreSQL's binary COPY, and their byte length."""
    if pgvector:  # pgvector's binary form: dimensions, a zero, the floats
        return [("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (DIM,))], 4 + 4 * DIM
    # An array: dimensions, no nulls, element type, size, lower bound, (length, float)s.
    head = [(f, ">i4") for f in ("ndim", "flags", "oid", "size", "lbound")]
    return [*head, ("v", [("len", ">i4"), ("x", ">f4")], (DIM,))], 20 + 8 * DIM


def fill_embeddings(out: np.ndarray, vectors: np.ndarray, pgvector: bool) -> None:
    """Set the fields `embedding_fields` made in a block of COPY tuples."""
    if pgvector:
        out["dim"], out["v"] = DIM, vectors
    else:
        out["ndim"], out["oid"], out["size"], out["lbound"] = 1, FLOAT4_OID, DIM, 1
        out["v"]["len"], out["v"]["x"] = 4, vectors


def id_vector_rows(ids: np.ndarray, vectors: np.ndarray, pgvector: bool) -> bytes:
    """Binary COPY tuples of (bigint, embedding), without the file's header and trailer."""
    emb, emb_len = embedding_fields(pgvector)
    fields = [("n", ">i2"), ("l0", ">i4"), ("id", ">i8"), ("l1", ">i4"), *emb]
    out = np.zeros(len(ids), dtype=np.dtype(fields))
    out["n"], out["l0"], out["l1"], out["id"] = 2, 8, emb_len, ids
    fill_embeddings(out, vectors, pgvector)
    return out.tobytes()
