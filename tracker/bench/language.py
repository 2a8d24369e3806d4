"""`tracker bench language`: how often the language detector is right, and how often it leaves
an item to its declared language, on real text in the shared data folder (read in place).

Sets: VoxCheck quotes in English, Russian and Ukrainian, whole and cut to their first 40
characters (a headline's length); PHEME source tweets (English); the real-world feeds that
declare a language, title and summary as ingestion sees them, and titles alone.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path

from classifiers import language
from tracker.ingest.parse import parse

Sample = tuple[str, str]  # (true language, text)
# Floors shown beside the shipped ones, to see what moving them would cost.
GRID = ((0, 0.0), (20, 0.0), (20, 0.3), (20, 0.7), (20, 0.9), (40, 0.5))


def samples(data: Path) -> dict[str, list[Sample]]:
    sets: dict[str, list[Sample]] = {}
    for code in ("en", "ru", "uk"):
        quotes = list(_quotes(data / "voxcheck_xling" / f"vox_{code}_en" / "queries.dev.jsonl"))
        if quotes:
            sets[f"voxcheck_{code}"] = [(code, q) for q in quotes]
            sets[f"voxcheck_{code}_40_chars"] = [(code, _prefix(q, 40)) for q in quotes]
    tweets = data / "pheme_rnr" / "pheme_source_tweets.jsonl"
    if tweets.is_file():
        rows = (json.loads(line) for line in tweets.open(encoding="utf-8"))
        sets["pheme"] = [(str(r["lang"]), str(r["text"])) for r in rows if r.get("lang")]
    entries = list(_declared_entries(data / "feeds" / "realworld"))
    if entries:
        sets["feeds"] = [(code, language.item_text(t, s)) for code, t, s in entries]
        sets["feed_titles"] = [(code, t) for code, t, _ in entries]
    return sets


def _quotes(path: Path) -> Iterator[str]:
    if path.is_file():
        for line in path.open(encoding="utf-8"):
            yield str(json.loads(line)["text"])


def _prefix(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0]


def _declared_entries(folder: Path) -> Iterator[tuple[str, str, str]]:
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        for entry in parse(path.read_bytes(), {}, None).entries:
            code = language.declared(entry.language)
            if code:
                yield code, entry.title, entry.summary


def bench(data: Path) -> dict[str, object]:
    """Per set: texts, the share the detector decides (the rest fall back), its accuracy on
    those, the model's accuracy with no floors; the same at other floors; time per text."""
    figures: dict[str, object] = {
        "floors": {"min_letters": language.MIN_LETTERS, "min_confidence": language.MIN_CONFIDENCE}
    }
    texts = 0
    started = time.perf_counter()
    for name, rows in samples(data).items():
        guesses = [(truth, language.identify(text)) for truth, text in rows]
        texts += len(rows)
        figures[name] = _scores(guesses, language.MIN_LETTERS, language.MIN_CONFIDENCE) | {
            "model_accuracy": _share(sum(g.language == t for t, g in guesses), len(guesses)),
            "other_floors": {f"{n}_letters_{c}": _brief(_scores(guesses, n, c)) for n, c in GRID},
        }
    figures["ms_per_text"] = round((time.perf_counter() - started) * 1000 / max(texts, 1), 3)
    return figures


def _scores(
    guesses: list[tuple[str, language.Guess]], letters: int, floor: float
) -> dict[str, float]:
    # A label without an ISO 639-1 code is never stored: it falls back like a doubtful one.
    decided = [
        t == g.language
        for t, g in guesses
        if g.language and g.letters >= letters and g.confidence >= floor
    ]
    return {
        "texts": len(guesses),
        "fallback_share": _share(len(guesses) - len(decided), len(guesses)),
        "decided_accuracy": _share(sum(decided), len(decided)),
    }


def _brief(scores: dict[str, float]) -> str:
    return f"accuracy {scores['decided_accuracy']:.3f}, fallback {scores['fallback_share']:.3f}"


def _share(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def readable(figures: dict[str, object]) -> list[str]:
    lines = []
    for name, value in figures.items():
        if isinstance(value, dict) and "texts" in value:
            lines.append(
                f"{name:>24}: {value['texts']:>5} texts, decided accuracy "
                f"{value['decided_accuracy']:.3f}, fallback {value['fallback_share']:.3f}, "
                f"model alone {value['model_accuracy']:.3f}"
            )
        else:
            lines.append(f"{name:>24}: {value}")
    return lines
