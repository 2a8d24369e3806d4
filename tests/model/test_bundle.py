"""The model bundle: the shipped one loads, is small and matches its manifest; an altered one
is refused; `build` writes a bundle that loads, with its model card."""

import json
import shutil
from pathlib import Path

import pytest

from classifiers import bundle
from classifiers.artifacts import ArtifactError
from tracker.domain import TextForModel


def test_the_shipped_bundle_loads_and_is_small() -> None:
    shipped = bundle.load()
    manifest = json.loads((bundle.BUNDLE_DIR / bundle.MANIFEST).read_text())
    assert shipped.item.version == manifest["item"]["version"]
    assert shipped.pair.version == manifest["pair"]["version"]
    size = sum(p.stat().st_size for p in bundle.BUNDLE_DIR.iterdir())
    assert size <= 30 * 2**20
    # Trained on public data: the manifest says which, and the card names its terms.
    assert manifest["sources"]["checkthat"].startswith("checkthat2022_2a_en:")
    card = (bundle.BUNDLE_DIR / bundle.CARD).read_text()
    assert "CC BY 4.0" in card and "tracker models build-bundle" in card
    claim = TextForModel("Video shows anaconda in Xingu river", "", "social", "en")
    check = TextForModel("Anaconda video in the Xingu river is miscaptioned", "", "factcheck")
    assert 0 <= shipped.pair.score_many(claim, [check], True)[0].score <= 1
    assert shipped.item.predict([claim])[0].label in {"rumour", "clarification", "other"}


def test_an_altered_bundle_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.BUNDLE_DIR, copy)
    artifact = copy / bundle.FILES["pair"]
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="digest"):
        bundle.load(copy)
    (copy / bundle.MANIFEST).unlink()
    with pytest.raises(ArtifactError, match="no model bundle"):
        bundle.load(copy)


def _public_data(root: Path) -> bundle.PublicData:
    checkthat = root / "ct"
    checkthat.mkdir(parents=True)
    claims = [
        (f"v{i}", f"Claim {word}", f"Did the {word} really happen in Galati?")
        for i, word in enumerate(["flood", "fire", "strike", "blackout", "drought", "quake"])
    ]
    (checkthat / "vclaims.test.jsonl").write_text(
        "".join(json.dumps({"vclaim_id": v, "vclaim": c, "title": t}) + "\n" for v, t, c in claims)
    )
    queries = [(f"q{i}", v, f"The {t[6:]} in Galati was covered up, share!") for i, (v, t, _) in
               enumerate(claims)]  # fmt: skip
    (checkthat / "queries.train.jsonl").write_text(
        "".join(json.dumps({"qid": q, "text": text}) + "\n" for q, _, text in queries)
    )
    (checkthat / "qrels.train.tsv").write_text("".join(f"{q}\t0\t{v}\t1\n" for q, v, _ in queries))
    pheme = root / "pheme.jsonl"
    rows = [
        {"text": f"Unconfirmed reports of a {w}, sources say?", "label": "rumour", "event": "e"}
        for w in ("flood", "fire", "strike")
    ] + [
        {"text": f"Officials held a briefing on the {w}.", "label": "non-rumour", "event": "e"}
        for w in ("flood", "fire", "strike")
    ]
    pheme.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return bundle.PublicData(pheme=pheme, checkthat=checkthat, checkthat_splits=("train",))


def test_build_writes_a_bundle_that_loads_with_its_card(tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest = bundle.build(_public_data(tmp_path / "data"), out, "tracker test", print)
    built = bundle.load(out)
    assert built.item.version == manifest["item"]["version"]
    assert built.item.metadata["public"]["pheme"] == "pheme.jsonl"
    assert manifest["pair"]["metadata"]["public"]["checkthat"] == "ct:train"
    card = (out / bundle.CARD).read_text()
    assert "`tracker test`" in card and built.pair.version in card
