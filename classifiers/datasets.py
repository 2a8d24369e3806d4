"""Loaders for public datasets, turned into what the models see.

- CheckThat! 2022 task 2A (verified-claim retrieval): tweets are rumours, Snopes fact-checks
  (the `vclaims*.jsonl` collection) are clarifications, qrels say which answers which.
- PHEME rumour / non-rumour source tweets: rumours and `other`.

Bad input stops with a message naming the file and line, never a bare traceback.
"""

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classifiers import embedder
from classifiers.item_model import LabelledText
from tracker.domain import TextForModel

# Long work (embedding a dataset the first time) says how far it is.
Progress = Callable[[str], None] | None

# oEmbed-style tweet text: "text — Name (@handle) January 28, 2021".
TWEET_SIGNATURE = re.compile(
    r"\s*\u2014\s*(?P<name>[^()\n\u2014]*?)\s*\(@(?P<handle>\w+)\)"
    r"\s*(?P<date>\w+ \d{1,2}, \d{4})\s*$"
)


class DatasetError(ValueError):
    pass


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{number}: expected a JSON object")
        yield number, row


def _date(text: str | None, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(text or "", fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def tweet(text: str) -> TextForModel:
    """A tweet as a social-media item; its signature gives the author and the date."""
    found = TWEET_SIGNATURE.search(text)
    if found is None:
        return TextForModel(title=text, summary="", feed_kind="social", language="en")
    return TextForModel(
        title=text[: found.start()],
        summary="",
        feed_kind="social",
        language="en",
        seen_at=_date(found["date"], "%B %d, %Y"),
        author=found["name"] or found["handle"],
    )


@dataclass(frozen=True)
class RetrievalSplit:
    """Queries (rumours) with the ids of the clarifications relevant to each."""

    queries: dict[str, TextForModel]
    relevant: dict[str, set[str]]


def load_checkthat_split(
    directory: Path, split: str, progress: Progress = None, vectors: bool = True
) -> RetrievalSplit:
    """A split's queries and relevance judgements; `vectors` False for callers that only
    serve the texts (`tracker bench replay`), which then skip the encoder altogether."""
    queries: dict[str, TextForModel] = {}
    path = directory / f"queries.{split}.jsonl"
    for number, row in _json_lines(path):
        if not isinstance(row.get("qid"), str) or not isinstance(row.get("text"), str):
            raise DatasetError(f"{path}:{number}: needs string fields qid and text")
        queries[row["qid"]] = tweet(row["text"])
    relevant: dict[str, set[str]] = defaultdict(set)
    qrels = directory / f"qrels.{split}.tsv"
    try:
        lines = qrels.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{qrels}: cannot read: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        fields = line.split("\t")
        if len(fields) != 4:
            raise DatasetError(f"{qrels}:{number}: expected 4 tab-separated fields")
        if fields[3].strip() != "0":
            relevant[fields[0]].add(fields[2])
    missing = sorted(set(relevant) - set(queries))
    if missing:
        raise DatasetError(f"{qrels}: qrels name queries not in {path.name}: {missing[:3]}")
    return RetrievalSplit(_with_vectors(queries, progress) if vectors else queries, dict(relevant))


def load_checkthat_collection(
    directory: Path, progress: Progress = None, vectors: bool = True
) -> dict[str, TextForModel]:
    """Every `vclaims*.jsonl` in the directory: fact-checks as clarifications. Embedding its
    14,000 texts takes 20 to 25 minutes on a cold cache: `vectors` False skips it."""
    files = sorted(directory.glob("vclaims*.jsonl"))
    if not files:
        raise DatasetError(f"{directory}: no vclaims*.jsonl collection found")
    collection = {}
    for path in files:
        for number, row in _json_lines(path):
            if not isinstance(row.get("vclaim_id"), str):
                raise DatasetError(f"{path}:{number}: needs a string vclaim_id")
            collection[row["vclaim_id"]] = TextForModel(
                title=str(row.get("title") or ""),
                summary=f"{row.get('vclaim') or ''} {row.get('subtitle') or ''}".strip(),
                feed_kind="factcheck",
                language="en",
                seen_at=_date(row.get("date"), "%d %B %Y"),
                author=row.get("author"),
            )
    return _with_vectors(collection, progress) if vectors else collection


def _with_vectors(texts: dict[str, TextForModel], progress: Progress) -> dict[str, TextForModel]:
    """Read again and again by evaluation and training: their vectors come from a disk cache."""
    return dict(zip(texts, embedder.with_vectors(list(texts.values()), progress), strict=True))


@dataclass(frozen=True)
class EventText:
    event: str
    example: LabelledText


def load_pheme(path: Path, progress: Progress = None) -> list[EventText]:
    """PHEME source tweets: verified accounts read as media, others as social media; their
    vectors come from the disk cache."""
    examples = []
    for number, row in _json_lines(path):
        label = {"rumour": "rumour", "non-rumour": "other"}.get(str(row.get("label")))
        if label is None or not isinstance(row.get("text"), str):
            raise DatasetError(f"{path}:{number}: needs text and label rumour or non-rumour")
        text = TextForModel(
            title=row["text"],
            summary="",
            feed_kind="media" if row.get("user_verified") else "social",
            language=row.get("lang") or "en",
            seen_at=_date(row.get("created_at"), "%a %b %d %H:%M:%S %z %Y"),
            author=row.get("user_screen_name"),
        )
        examples.append(EventText(str(row.get("event", "")), LabelledText(text, label)))
    vectors = embedder.with_vectors([row.example.text for row in examples], progress)
    return [
        EventText(row.event, LabelledText(vector, row.example.label))
        for row, vector in zip(examples, vectors, strict=True)
    ]


def checkthat_examples(directory: Path, splits: list[str]) -> list[LabelledText]:
    """CheckThat! data for the item classifier: the tweets that were fact-checked as rumours,
    and the fact-checks that answer them as clarifications."""
    collection = load_checkthat_collection(directory)
    examples: list[LabelledText] = []
    answers: set[str] = set()
    for split in splits:
        data = load_checkthat_split(directory, split)
        examples += [LabelledText(q, "rumour") for q in data.queries.values()]
        answers |= {doc for docs in data.relevant.values() for doc in docs}
    examples += [LabelledText(collection[d], "clarification") for d in sorted(answers)]
    return examples
