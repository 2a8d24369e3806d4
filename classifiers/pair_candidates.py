"""CheckThat!-format retrieval data as candidate pairs for the re-ranker: each query against its
nearest clarifications from an in-process index over the directory's collection, as the
pairing workers bring candidates from PostgreSQL."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from classifiers.datasets import RetrievalSplit, load_checkthat_collection, load_checkthat_split
from classifiers.pair_model import PairExample
from classifiers.retrieval import SparseIndex
from tracker.domain import TextForModel

Progress = Callable[[str], None]
CANDIDATES = 50
# Candidates by meaning alone, beside the lexical ones: a quote in Russian shares no word with
# its English debunk (tracker/pipeline/pairing.py brings as many from the vector column).
MEANING_CANDIDATES = 20


@dataclass(frozen=True)
class Collection:
    ids: list[str]
    texts: list[TextForModel]
    index: SparseIndex

    @classmethod
    def load(cls, directory: Path, progress: Progress | None = None) -> "Collection":
        found = load_checkthat_collection(directory, progress)
        return cls(
            list(found), list(found.values()), SparseIndex(list(found), list(found.values()))
        )


def candidate_pairs(
    split: RetrievalSplit, collection: Collection, with_relevant: bool
) -> tuple[list[PairExample], list[bool], list[tuple[str, str]]]:
    """Each query's candidates as pairs, with labels and (query id, document id) keys."""
    qids = list(split.queries)
    found = collection.index.search(
        [split.queries[q] for q in qids], CANDIDATES, MEANING_CANDIDATES
    )
    position = {doc: i for i, doc in enumerate(collection.ids)}
    pairs, labels, keys = [], [], []
    for group, (qid, candidates) in enumerate(zip(qids, found, strict=True)):
        chosen = set(candidates)
        if with_relevant:
            chosen |= {position[d] for d in split.relevant.get(qid, set()) if d in position}
        for i in sorted(chosen):
            doc = collection.ids[i]
            pairs.append(PairExample(split.queries[qid], collection.texts[i], group))
            labels.append(doc in split.relevant.get(qid, set()))
            keys.append((qid, doc))
    return pairs, labels, keys


def candidate_pairs_for(
    sources: Sequence[tuple[Path, str]],
    progress: Progress,
    collections: dict[Path, Collection] | None = None,
) -> tuple[list[PairExample], list[bool]]:
    """Training pairs from CheckThat!-format splits, each against its directory's collection."""
    collections = {} if collections is None else collections
    pairs: list[PairExample] = []
    labels: list[bool] = []
    for directory, split in sources:
        progress(f"candidates for {directory.name}:{split}")
        if directory not in collections:
            collections[directory] = Collection.load(directory, progress)
        split_pairs, split_labels, _ = candidate_pairs(
            load_checkthat_split(directory, split, progress),
            collections[directory],
            with_relevant=True,
        )
        # Groups must stay distinct across splits: offset them past the ones already taken.
        offset = 1 + max((p.group for p in pairs), default=-1)
        pairs += [PairExample(p.rumour, p.clarification, p.group + offset) for p in split_pairs]
        labels += split_labels
    return pairs, labels
