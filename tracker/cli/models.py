"""`tracker train`, `tracker models` and `tracker eval`: the model lifecycle from the command
line. scikit-learn is imported inside the commands: it takes a second, and most commands of
the CLI never need it."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tracker.cli.util import choices, connect, fail, one_of, print_json, print_table
from tracker.storage import audit, models
from tracker.usecases import model_admin

train_app = typer.Typer(help="Train a challenger model; it is activated if not worse.")
models_app = typer.Typer(help="Model versions: list, activate, roll back.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate the models on public datasets.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReportDir = Annotated[
    Path | None, typer.Option("--report", help="Write PNG plots and a Markdown summary here.")
]
_err = Console(stderr=True)


def _progress() -> Callable[[str], None]:
    """Progress lines on stderr with a timestamp, so --json output stays clean."""
    return lambda message: _err.log(message)


def _splits(value: str) -> list[tuple[Path, str]]:
    """DIR:SPLIT[,SPLIT...] -> [(DIR, SPLIT), ...]."""
    directory, _, names = value.rpartition(":")
    if not directory or not names:
        raise fail(f"expected DIR:SPLIT[,SPLIT...], got {value!r}")
    path = Path(directory)
    if not path.is_dir():
        raise fail(f"{path}: not a directory")
    return [(path, name) for name in names.split(",") if name]


def _files(value: str) -> list[Path]:
    paths = [Path(p) for p in value.split(",") if p]
    for path in paths:
        if not path.is_file():
            raise fail(f"{path}: no such file")
    return paths


@train_app.command("item")
def train_item(
    pheme: Annotated[
        str | None, typer.Option(help="PHEME-format JSONL files to add, comma-separated.")
    ] = None,
    checkthat: Annotated[
        str | None,
        typer.Option(
            help="CheckThat!-format DIR:SPLIT[,SPLIT]: tweets as rumours, answers as "
            "clarifications."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Correct the shipped item classifier with analysts' labels; public data given here
    makes the base a model trained on it and the seed corpus by the shipped recipe."""
    from classifiers.datasets import DatasetError, checkthat_examples, load_pheme
    from tracker.config import get_settings
    from tracker.pipeline import training

    try:
        extra = [row.example for path in _files(pheme or "") for row in load_pheme(path)]
        if checkthat:
            sources = _splits(checkthat)
            extra += checkthat_examples(sources[0][0], [split for _, split in sources])
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    public_dir = get_settings().public_data_dir
    with connect() as conn:
        outcome = training.train_item_model(conn, extra, _progress(), public_dir)
        audit.record(conn, "cli", "model.train", outcome.version)
    _report_outcome(outcome, as_json)


@train_app.command("pair")
def train_pair(
    checkthat: Annotated[
        str | None, typer.Option(help="CheckThat!-format data to add, as DIR:SPLIT[,SPLIT].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Correct the shipped pair re-ranker with analysts' decisions; CheckThat! data given here
    makes the base a model trained on it and the seed pairs by the shipped recipe."""
    from classifiers.datasets import DatasetError
    from tracker.config import get_settings
    from tracker.pipeline import training

    sources = _splits(checkthat) if checkthat else []
    public_dir = get_settings().public_data_dir
    with connect() as conn:
        try:
            outcome = training.train_pair_model(conn, sources, _progress(), public_dir)
        except DatasetError as exc:
            raise fail(str(exc)) from exc
        audit.record(conn, "cli", "model.train", outcome.version)
    _report_outcome(outcome, as_json)


def _report_outcome(outcome: Any, as_json: bool) -> None:
    figures = {
        "kind": outcome.kind,
        "version": outcome.version,
        "metric": outcome.metric,
        "challenger": outcome.challenger,
        "champion": outcome.champion,
        "activated": outcome.activated,
        "validated_on": outcome.validated_on,
    }
    if as_json:
        print_json(figures)
        return
    verdict = "activated" if outcome.activated else "kept the champion (challenger was worse)"
    typer.echo(
        f"{outcome.version}: validation {outcome.metric} {outcome.challenger:.4f} "
        f"vs champion {outcome.champion if outcome.champion is not None else '-'}: {verdict}"
    )


@models_app.command("list")
def models_list(
    kind: Annotated[
        str | None,
        typer.Option(callback=one_of(model_admin.KINDS), help=choices(model_admin.KINDS)),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Model versions, newest first, with their validation metrics."""
    with connect() as conn:
        found = models.list_models(conn, kind)
    if as_json:
        print_json(
            [
                {
                    "kind": m.kind,
                    "version": m.version,
                    "active": m.active,
                    "created_at": m.created_at.isoformat(),
                    "activated_at": m.activated_at.isoformat() if m.activated_at else None,
                    "validation": m.metadata.get("validation"),
                    "examples": m.metadata.get("examples", m.metadata.get("pairs")),
                }
                for m in found
            ]
        )
        return
    print_table(
        ("active", "kind", "version", "validation"),
        (("*" if m.active else "", m.kind, m.version, m.metadata.get("validation")) for m in found),
    )


@models_app.command("build-bundle")
def models_build_bundle(
    data: Annotated[
        Path, typer.Option(help="The public datasets' folder (../shared/data), read in place.")
    ] = Path("../shared/data"),
    checkthat_splits: Annotated[
        str, typer.Option(help="CheckThat! splits the re-ranker trains on, comma-separated.")
    ] = "train,dev",
    out: Annotated[
        Path | None, typer.Option(help="Where to write it (default: the package's bundle).")
    ] = None,
) -> None:
    """Train the shipped models on public data and the seed corpus, and write the bundle
    `tracker up` activates at first start, with its manifest and model card."""
    from classifiers import bundle
    from classifiers.datasets import DatasetError

    public = bundle.PublicData(
        pheme=data / "pheme_rnr" / "pheme_source_tweets.jsonl",
        checkthat=data / "checkthat2022_2a_en",
        checkthat_splits=tuple(s for s in checkthat_splits.split(",") if s),
    )
    if not public.pheme.is_file() or not public.checkthat.is_dir():
        raise fail(f"{data}: needs pheme_rnr/ and checkthat2022_2a_en/ (see its README)")
    command = f"tracker models build-bundle --checkthat-splits {checkthat_splits}"
    try:
        manifest = bundle.build(public, out or bundle.BUNDLE_DIR, command, _progress())
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    for kind in ("item", "pair"):
        entry = manifest[kind]
        typer.echo(
            f"{kind}: {entry['version']} ({entry['bytes'] / 1e6:.1f} MB), "
            f"validation {entry['metadata'].get('validation')}"
        )


@models_app.command("activate")
def models_activate(version: str) -> None:
    """Make a version the active model of its kind (workers pick it up on their next task).
    A challenger that scored below its champion at training time is refused."""
    with connect() as conn:
        try:
            kind = model_admin.activate(conn, version, "cli")
        except model_admin.ActivationRefused as exc:
            raise fail(f"{exc}; see `tracker models list`") from exc
    typer.echo(f"{version} is now the active {kind} model")


@models_app.command("rollback")
def models_rollback(
    kind: Annotated[
        str, typer.Argument(callback=one_of(model_admin.KINDS), help=choices(model_admin.KINDS))
    ],
) -> None:
    """Reactivate the model of this kind that was active before the current one."""
    with connect() as conn:
        try:
            version = model_admin.rollback(conn, kind, "cli")
        except model_admin.ActivationRefused as exc:
            raise fail(str(exc)) from exc
    typer.echo(f"rolled back: {version} is the active {kind} model again")


ModelChoice = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Score a model without training: `bundle` (shipped) or `active` (in the database).",
    ),
]


@eval_app.command("pairing")
def eval_pairing(
    test: Annotated[str, typer.Option(help="Test data as DIR:SPLIT.")],
    train: Annotated[
        str | None, typer.Option(help="Train afresh by the shipped recipe on DIR:SPLIT[,SPLIT].")
    ] = None,
    model: ModelChoice = None,
    as_json: JsonFlag = False,
    report: ReportDir = None,
) -> None:
    """Score MAP@k of the pair re-ranker on a CheckThat!-format split: one trained afresh on
    other splits (--train), or the shipped or active one (--model)."""
    from classifiers.datasets import DatasetError
    from classifiers.pair_eval import evaluate_pairing

    tests = _splits(test)
    if len(tests) != 1:
        raise fail("--test takes one DIR:SPLIT")
    ranker = _chosen(model, train, "pair")
    try:
        result = evaluate_pairing(_splits(train) if train else None, tests[0], _progress(), ranker)
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    if report is not None:
        from classifiers.report import write_report

        write_report(report, "pairing", result.metrics, result.scores, result.relevant)
    _print_metrics(result.metrics, as_json)


def _chosen(model: str | None, train: str | None, kind: str) -> Any:
    """The model named by --model, or None to train afresh; exactly one of the two is given."""
    if (model is None) == (train is None):
        raise fail("give either --train (train afresh) or --model bundle|active")
    if model is None:
        return None
    from classifiers import bundle
    from classifiers.artifacts import ArtifactError
    from tracker.pipeline import model_registry

    try:
        if model == "bundle":
            return getattr(bundle.load(), kind)
        if model == "active":
            with connect() as conn:
                return model_registry.active_model(conn, kind)
    except ArtifactError as exc:
        raise fail(str(exc)) from exc
    raise fail(f"--model takes bundle or active, not {model!r}")


@eval_app.command("rumour")
def eval_rumour(
    test: Annotated[str, typer.Option(help="A PHEME-format JSONL file.")],
    train: Annotated[
        str | None,
        typer.Option(help="PHEME-format JSONL files, comma-separated: train afresh on them."),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            help="Leave-one-event-out: for each event listed, train without it and test on it."
        ),
    ] = None,
    model: ModelChoice = None,
    as_json: JsonFlag = False,
    report: ReportDir = None,
) -> None:
    """Score rumour detection: an item classifier trained afresh by the shipped recipe (the
    seed corpus and --train) per fold, or the shipped or active one (--model)."""
    from classifiers.datasets import DatasetError
    from classifiers.rumour_eval import evaluate_rumour

    held_out = [e for e in (events or "").split(",") if e]
    classifier = _chosen(model, train, "item")
    try:
        result = evaluate_rumour(
            _files(train or ""), _files(test)[0], held_out, _progress(), classifier
        )
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    if report is not None:
        from classifiers.report import write_report

        write_report(report, "rumour", result.metrics, result.scores, result.relevant)
    _err.log(f"scored: {result.model}")
    _print_metrics(result.metrics, as_json)


@eval_app.command("languages")
def eval_languages(
    test: Annotated[
        list[str],
        typer.Option(
            help="Claims as DIR:SPLIT (CheckThat! layout; qrels name the fake each claim "
            "repeats), once per language, the same claims in each. The first is the reference."
        ),
    ],
    train: Annotated[
        str | None,
        typer.Option(help="PHEME-format JSONL files, comma-separated: train afresh on them."),
    ] = None,
    model: ModelChoice = None,
    as_json: JsonFlag = False,
) -> None:
    """Score how rumour detection carries across languages: the share of the claims labelled
    rumour in each language, and how well each language's per-fake rumour probabilities agree
    with the first's."""
    from classifiers import recipe
    from classifiers.datasets import DatasetError, load_pheme
    from classifiers.language_eval import evaluate_languages

    classifier = _chosen(model, train, "item")
    try:
        if classifier is None:
            pheme = [row for path in _files(train or "") for row in load_pheme(path)]
            examples = recipe.item_examples(pheme)
            _progress()(f"training on {len(examples)} (seed and PHEME)")
            classifier = recipe.train_item(examples, hold_out=False)
        tests = [found for value in test for found in _splits(value)]
        metrics = evaluate_languages(tests, classifier, _progress())
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    _err.log(f"scored: {classifier.version}")
    _print_metrics(metrics, as_json)


def _print_metrics(metrics: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(metrics)
        return
    for name, value in metrics.items():
        typer.echo(f"{name:>12}: {value}")
