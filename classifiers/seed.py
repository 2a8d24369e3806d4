"""The project's own seed corpus (classifiers/seed/seed.jsonl) and the rumour-clarification
links between its items (classifiers/seed/pairs.jsonl), written for this project."""

import json
from pathlib import Path

from classifiers import embedder
from classifiers.item_model import LabelledText
from classifiers.pair_model import PairExample
from classifiers.retrieval import SparseIndex
from tracker.domain import TextForModel

SEED_FILE = Path(__file__).parent / "seed" / "seed.jsonl"


def load_seed(path: Path = SEED_FILE) -> list[LabelledText]:
    """The seed items with their sentence vectors, which come from the disk cache: the seed is
    trained on again and again (tests, the demo, every retraining's anchor)."""
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = TextForModel(
                    title=row["title"],
                    summary=row["summary"],
                    feed_kind=row["kind"],
                    language=row["lang"],
                )
                examples.append(LabelledText(text=text, label=row["label"]))
            except (KeyError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}:{number}: bad seed row: {exc}") from exc
    vectors = embedder.with_vectors([ex.text for ex in examples])
    return [LabelledText(v, ex.label) for ex, v in zip(examples, vectors, strict=True)]


SEED_PAIRS_FILE = Path(__file__).parent / "seed" / "pairs.jsonl"
SEED_CANDIDATES = 20
SEED_OTHER_LANGUAGE = 12


def load_seed_pairs(path: Path = SEED_PAIRS_FILE) -> tuple[list[PairExample], list[bool]]:
    """Each seed rumour with its linked clarifications, against the nearest unlinked ones.

    Seed items carry no dates, and invented ones would teach the model a time gap no real
    feed showed it, so the seed model leaves time to models trained on real decisions.
    """
    examples = load_seed()
    texts = {ex.text.title: ex for ex in examples}
    links: dict[str, set[str]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                said, answer = texts[row["rumour"]], texts[row["clarification"]]
            except (KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: bad seed pair: {exc}") from exc
            if (said.label, answer.label) != ("rumour", "clarification"):
                raise ValueError(f"{path}:{number}: must link a rumour to a clarification")
            links.setdefault(said.text.title, set()).add(answer.text.title)
    clarifications = [ex.text for ex in examples if ex.label == "clarification"]
    rumours = [texts[title].text for title in links]
    candidates = _nearest(rumours, clarifications, SEED_CANDIDATES)
    # The nearest candidates share the rumour's language, while over a third of the links
    # cross languages: adding the nearest from the other language, in about that proportion,
    # keeps "different language" from reading as "linked".
    for language in {c.language for c in clarifications}:
        others = [c for c in clarifications if c.language == language]
        near = _nearest(rumours, others, SEED_OTHER_LANGUAGE)
        for rumour in rumours:
            if rumour.language != language:
                candidates[rumour.title] |= near[rumour.title]
    pairs, labels = [], []
    for group, rumour in enumerate(rumours):
        linked = links[rumour.title]
        for title in sorted(candidates[rumour.title] | linked):
            pairs.append(PairExample(rumour, texts[title].text, group))
            labels.append(title in linked)
    return pairs, labels


def _nearest(
    queries: list[TextForModel], collection: list[TextForModel], k: int
) -> dict[str, set[str]]:
    index = SparseIndex([c.title for c in collection], collection)
    found = index.search(queries, k, meaning_k=k)
    return {
        q.title: {collection[i].title for i in near} for q, near in zip(queries, found, strict=True)
    }
