"""The project's own seed corpus (classifiers/seed/seed.jsonl), written for this project."""

import json
from pathlib import Path

from classifiers.item_model import LabelledText
from tracker.domain import TextForModel

SEED_FILE = Path(__file__).parent / "seed" / "seed.jsonl"


def load_seed(path: Path = SEED_FILE) -> list[LabelledText]:
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
    return examples
