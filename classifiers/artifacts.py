"""Model artifacts as stored in `models.artifact`: scikit-learn pipelines in skops' format.

Loading an artifact never runs code it carries. skops rebuilds objects from a JSON schema and
numpy arrays (read without pickle), and builds only types it is told to trust. skops on its own
trusts every scikit-learn estimator and numpy/scipy ufunc; our pipelines hold far fewer types,
so an artifact naming any type outside TRUSTED_TYPES, or stored as any other kind of node, is
refused before skops builds anything. Pickles (joblib, the format before skops) are refused
unread.
"""

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

# Each kind's pipeline: its steps' names and types, by the names skops stores.
STEPS: dict[str, tuple[tuple[str, str], ...]] = {
    "item": (
        ("features", "classifiers.item_model.WordsAndMeaning"),
        ("classifier", "classifiers.item_model.CalibratedLogistic"),
    ),
    "pair": (
        ("features", "classifiers.pair_model.PairFeatures"),
        ("scale", "sklearn.preprocessing._data.StandardScaler"),
        ("classifier", "sklearn.linear_model._logistic.LogisticRegression"),
    ),
}

# Item models trained before sentence vectors read words alone: deployments keep them as
# champions and in their history, so they still load.
LEGACY_STEPS: dict[str, tuple[tuple[str, str], ...]] = {
    "item": (
        ("features", "classifiers.style.ItemFeatures"),
        ("classifier", "classifiers.item_model.CalibratedLogistic"),
    ),
}

# Every type a fitted item or pair pipeline holds, and nothing else. `dump` checks what it
# writes against this list too, so a model change that adds a type fails when it is trained,
# not when a worker loads it.
TRUSTED_TYPES = frozenset(
    {
        *(name for steps in (*STEPS.values(), *LEGACY_STEPS.values()) for _, name in steps),
        "sklearn.pipeline.Pipeline",
        # CalibratedLogistic's calibrator_; also the pair pipeline's last step.
        "sklearn.linear_model._logistic.LogisticRegression",
        "numpy.ndarray",
        "numpy.float64",  # StandardScaler.n_samples_seen_
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",  # JSON values and the types of dict keys
    }
)

# How skops stores those: objects, containers, JSON values, arrays and dict key types. Nodes
# that stand for functions, methods, partials or operators never occur in our artifacts.
NODES = frozenset(
    {"ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode", "TypeNode"}
)

# Our largest artifact unpacks to about 6 MB; a bound on what a damaged or hostile archive
# may claim to unpack to, so it cannot exhaust memory.
MAX_UNPACKED_BYTES = 256 * 2**20
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_MAGIC = b"\x80"  # the PROTO opcode that opens every pickle of protocol 2 and later


class ArtifactError(Exception):
    """A stored model that may not be loaded, and why, in words for an operator."""


class LegacyArtifact(ArtifactError):
    """A pickle (joblib) artifact from before skops: never unpickled."""


def dump(pipeline: Pipeline) -> bytes:
    """The pipeline in skops' format, deflated (the item model's weights are mostly zeros:
    about 5.5 MB stored, 0.7 MB deflated)."""
    import skops.io as sio  # here, not at the top: importing it takes 0.6 s

    data: bytes = sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)
    _check_types(_schema(data))
    return data


def load(data: bytes, kind: str) -> Pipeline:
    """The fitted pipeline of `kind` in `data`; ArtifactError for anything else."""
    _check_types(_schema(data))
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        pipeline = sio.loads(data, trusted=sorted(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ArtifactError(f"the artifact holds untrusted types: {exc}") from exc
    except Exception as exc:
        # Past the checks above, a failure here (numpy, zipfile, json, a class's __setstate__)
        # means a damaged artifact, whatever the exception's type.
        raise ArtifactError(f"corrupt model artifact: {exc}") from exc
    _check_pipeline(pipeline, kind)
    return pipeline


def _schema(data: bytes) -> dict[str, Any]:
    if data.startswith(PICKLE_MAGIC):
        raise LegacyArtifact(
            "a pickle (joblib) artifact from before skops; it is never loaded, because "
            "unpickling can run any code"
        )
    if not data.startswith(ZIP_MAGIC):
        raise ArtifactError("not a skops artifact")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(i.file_size for i in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise ArtifactError(
                    f"corrupt model artifact: it would unpack to {unpacked} bytes, over the "
                    f"{MAX_UNPACKED_BYTES} allowed"
                )
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as exc:
        raise ArtifactError(f"corrupt model artifact: {exc}") from exc
    if not isinstance(schema, dict):
        raise ArtifactError("corrupt model artifact: its schema is not an object")
    return schema


def _check_types(schema: dict[str, Any]) -> None:
    untrusted = sorted(
        {f"{node.get('__module__')}.{node['__class__']}" for node in _nodes(schema)} - TRUSTED_TYPES
    )
    if untrusted:
        raise ArtifactError(f"the artifact holds untrusted types: {', '.join(untrusted)}")
    loaders = sorted({str(node.get("__loader__")) for node in _nodes(schema)} - NODES)
    if loaders:
        raise ArtifactError(f"the artifact holds untrusted kinds of node: {', '.join(loaders)}")


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object skops would build: each is a JSON object naming its class."""
    pending = [tree]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if "__class__" in value:
                yield value
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def _check_pipeline(pipeline: Any, kind: str) -> None:
    if not isinstance(pipeline, Pipeline):
        raise ArtifactError(f"the artifact holds a {type(pipeline).__name__}, not a Pipeline")
    found = tuple((name, _type_name(step)) for name, step in pipeline.steps)
    if found not in (STEPS.get(kind), LEGACY_STEPS.get(kind)):
        raise ArtifactError(f"not a pipeline of the {kind} model: its steps are {found}")
    try:
        for _, step in pipeline.steps:
            check_is_fitted(step)
    except (NotFittedError, TypeError) as exc:
        raise ArtifactError(f"the {kind} model in the artifact is not fitted: {exc}") from exc


def _type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"
