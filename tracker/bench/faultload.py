"""The load for `tracker bench faults --feeds N --items-per-feed M`: feeds of rumours and feeds of
the clarifications that answer them, from the seed corpus's linked pairs (classifiers/seed/), so
that a loaded run classifies, pairs, groups into stories and alerts as a real burst does.

Three feeds in four carry rumours, each repeated by several outlets as a rumour spreads; the
fourth carries the clarifications of the same pairs. Texts are the seed's own; guids, links and
dates are new per run, so one run never dedupes against another."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from classifiers.seed import SEED_FILE, SEED_PAIRS_FILE

RUMOUR_KINDS = ("media", "social")
CLARIFICATION_KINDS = ("official", "factcheck")


@dataclass(frozen=True)
class Load:
    feeds: int
    items_per_feed: int


@dataclass(frozen=True)
class _Text:
    title: str
    summary: str
    language: str


def _linked_pairs() -> list[tuple[_Text, _Text]]:
    texts = {}
    for line in SEED_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts[row["title"]] = _Text(row["title"], row["summary"], row["lang"])
    pairs = []
    for line in SEED_PAIRS_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            pairs.append((texts[row["rumour"]], texts[row["clarification"]]))
    return pairs


def bodies(tag: str, load: Load) -> dict[str, tuple[dict[str, str], bytes]]:
    """Feed file name -> (its manifest entry, as the demo's, and its RSS body)."""
    pairs = _linked_pairs()
    n_clarifying = max(1, load.feeds // 4)
    now = datetime.now(UTC)
    found = {}
    for n in range(load.feeds):
        clarifying = n < n_clarifying
        # Rumour feeds and clarification feeds each walk the pairs from the start, so every
        # clarification's rumours are in the run.
        first = (n if clarifying else n - n_clarifying) * load.items_per_feed
        texts = [
            pairs[(first + i) % len(pairs)][1 if clarifying else 0]
            for i in range(load.items_per_feed)
        ]
        kinds = CLARIFICATION_KINDS if clarifying else RUMOUR_KINDS
        entry = {
            "title": f"Load outlet {n}",
            "kind": kinds[n % 2],
            "language": texts[0].language,
        }
        # Clarifications come a day after the rumours they answer, as they do in life.
        published = now - timedelta(hours=2 if clarifying else 26)
        found[f"load-{n}.xml"] = (entry, _rss(tag, n, texts, published))
    return found


def _rss(tag: str, n: int, texts: list[_Text], published: datetime) -> bytes:
    items = "".join(
        f"<item><title>{escape(t.title)}</title>"
        f"<link>http://load.invalid/{tag}/{n}/{i}</link>"
        f"<guid isPermaLink='false'>{tag}-{n}-{i}</guid>"
        f"<pubDate>{format_datetime(published + timedelta(minutes=i))}</pubDate>"
        f"<description>{escape(t.summary)}</description></item>"
        for i, t in enumerate(texts)
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Load outlet {n}</title><link>http://load.invalid/{n}/</link>"
        f"<description>Fault bench load</description>{items}</channel></rss>"
    ).encode()
