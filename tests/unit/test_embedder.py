"""The embedder seam: one multilingual encoder, unit vectors, stored vectors used as they are,
and the on-disk cache that evaluation and training read datasets through."""

from pathlib import Path

import numpy as np
import pytest

from classifiers import bundle, embedder
from tracker.domain import TextForModel

CLAIM_EN = TextForModel("Romanian F-16s fly secret combat missions over Ukraine", "")
CLAIM_RO = TextForModel("Avioane F-16 românești zboară misiuni secrete deasupra Ucrainei", "")
CLAIM_RU = TextForModel("Румынские F-16 тайно выполняют боевые вылеты над Украиной", "")
UNRELATED = TextForModel("Heavy snow closes mountain roads; schools shut for two days", "")


def test_vectors_are_unit_length_and_copies_in_other_languages_are_nearer_than_news() -> None:
    found = embedder.vectors([CLAIM_EN, CLAIM_RO, CLAIM_RU, UNRELATED])
    assert found.shape == (4, embedder.DIM)
    assert np.allclose(np.linalg.norm(found, axis=1), 1, atol=1e-3)
    cosines = found @ found[0]
    assert cosines[1] > cosines[3] and cosines[2] > cosines[3]


def test_a_stored_vector_is_used_as_it_is() -> None:
    stored = np.zeros(embedder.DIM, dtype=np.float32)
    stored[0] = 1
    [found] = embedder.vectors([TextForModel("anything", "", embedding=stored)])
    assert np.array_equal(found, stored)


def test_text_is_title_and_summary_cut_at_the_limit() -> None:
    text = embedder.embedding_text(TextForModel("Title", "word " * 200))
    assert text.startswith("Title. word word")
    assert len(text) == embedder.MAX_CHARS


def test_the_disk_cache_embeds_each_text_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKER_EMBEDDING_CACHE", str(tmp_path / "cache.npz"))
    said: list[str] = []
    first = embedder.with_vectors([CLAIM_EN, CLAIM_RO], said.append)
    again = embedder.with_vectors([CLAIM_RO, CLAIM_EN, CLAIM_RU], said.append)
    assert said == [
        f"embedding 2 texts (cached in {tmp_path / 'cache.npz'})",
        f"embedding 1 texts (cached in {tmp_path / 'cache.npz'})",
    ]
    assert first[0].embedding is not None and again[1].embedding is not None
    assert np.array_equal(first[0].embedding, again[1].embedding)


def test_a_long_embedding_says_how_far_it_is_and_keeps_each_chunk_it_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache.npz"
    monkeypatch.setenv("TRACKER_EMBEDDING_CACHE", str(cache))
    monkeypatch.setattr(embedder, "SAVE_EVERY", 2)
    real_embed = embedder.Embedder.embed
    calls: list[int] = []

    def stop_at_second_chunk(self: embedder.Embedder, texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_embed(self, texts)

    monkeypatch.setattr(embedder.Embedder, "embed", stop_at_second_chunk)
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        embedder.with_vectors([CLAIM_EN, CLAIM_RO, CLAIM_RU, UNRELATED], said.append)
    assert said == [
        f"embedding 4 texts (cached in {cache})",
        "embedded 2 of 4 texts",
    ]
    # The first chunk was saved before the stop: only the other two are embedded again.
    monkeypatch.setattr(embedder.Embedder, "embed", real_embed)
    said.clear()
    again = embedder.with_vectors([CLAIM_EN, CLAIM_RO, CLAIM_RU, UNRELATED], said.append)
    assert said == [f"embedding 2 texts (cached in {cache})"]
    assert all(embedder.known(item.embedding) for item in again)


def test_an_unknown_vector_stays_unknown_and_reads_as_the_usual_candidate() -> None:
    """Pairing never embeds a stored item without a vector: its cosine takes the training
    candidates' mean, and the pair is scored on its words."""
    [found] = embedder.vectors([TextForModel("anything", "", embedding=embedder.UNKNOWN)])
    assert not embedder.known(found)
    assert embedder.known(embedder.vector_of(TextForModel("anything", "", embedding=found)))


def test_a_candidate_without_a_vector_is_scored_on_its_words() -> None:
    ranker = bundle.load().pair
    check = TextForModel(
        "FALSE: Romanian F-16s are not flying secret missions over Ukraine",
        "The Ministry of Defence says no Romanian F-16 has flown over Ukraine.",
        "factcheck",
        embedding=embedder.UNKNOWN,
    )
    other = TextForModel("Snow closes mountain roads", "", "factcheck", embedding=embedder.UNKNOWN)
    scores = [s.score for s in ranker.score_many(CLAIM_EN, [check, other], True)]
    assert all(np.isfinite(scores)) and scores[0] > scores[1]
