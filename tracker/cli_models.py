"""`tracker train`, `tracker models` and `tracker eval`: the model lifecycle from the command
line. scikit-learn is imported inside the commands: it takes a second, and most commands of
the CLI never need it."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tracker import model_admin
from tracker.cliutil import connect, fail, print_json
from tracker.storage import audit, models

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
    """Train the item classifier on the seed corpus, analysts' labels and public data."""
    from classifiers.datasets import DatasetError, checkthat_examples, load_pheme
    from tracker import training

    try:
        extra = [row.example for path in _files(pheme or "") for row in load_pheme(path)]
        if checkthat:
            sources = _splits(checkthat)
            extra += checkthat_examples(sources[0][0], [split for _, split in sources])
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    with connect() as conn:
        outcome = training.train_item_model(conn, extra, _progress())
        audit.record(conn, "cli", "model.train", outcome.version)
    _report_outcome(outcome, as_json)


@train_app.command("pair")
def train_pair(
    checkthat: Annotated[
        str | None, typer.Option(help="CheckThat!-format data to add, as DIR:SPLIT[,SPLIT].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train the pair re-ranker on the seed pairs, analysts' decisions and CheckThat! data."""
    from classifiers.datasets import DatasetError
    from classifiers.pair_eval import candidate_pairs_for
    from tracker import training

    try:
        extra = candidate_pairs_for(_splits(checkthat) if checkthat else [], _progress())
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    with connect() as conn:
        outcome = training.train_pair_model(conn, extra, _progress())
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
    kind: Annotated[str | None, typer.Option(help="item or pair")] = None,
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
    for m in found:
        mark = "*" if m.active else " "
        typer.echo(f"{mark} {m.kind:5} {m.version:34} {m.metadata.get('validation')}")


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
def models_rollback(kind: str) -> None:
    """Reactivate the model of this kind that was active before the current one."""
    with connect() as conn:
        try:
            version = model_admin.rollback(conn, kind, "cli")
        except model_admin.ActivationRefused as exc:
            raise fail(str(exc)) from exc
    typer.echo(f"rolled back: {version} is the active {kind} model again")


@eval_app.command("pairing")
def eval_pairing(
    train: Annotated[str, typer.Option(help="Training data as DIR:SPLIT[,SPLIT...].")],
    test: Annotated[str, typer.Option(help="Test data as DIR:SPLIT.")],
    as_json: JsonFlag = False,
    report: ReportDir = None,
) -> None:
    """Train the pair re-ranker on CheckThat!-format splits and score MAP@k on another."""
    from classifiers.datasets import DatasetError
    from classifiers.pair_eval import evaluate_pairing

    tests = _splits(test)
    if len(tests) != 1:
        raise fail("--test takes one DIR:SPLIT")
    try:
        result = evaluate_pairing(_splits(train), tests[0], _progress())
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    if report is not None:
        from classifiers.report import write_report

        write_report(report, "pairing", result.metrics, result.scores, result.relevant)
    _print_metrics(result.metrics, as_json)


@eval_app.command("rumour")
def eval_rumour(
    train: Annotated[str, typer.Option(help="PHEME-format JSONL files, comma-separated.")],
    test: Annotated[str, typer.Option(help="A PHEME-format JSONL file.")],
    events: Annotated[
        str | None,
        typer.Option(
            help="Leave-one-event-out: for each event listed, train without it and test on it."
        ),
    ] = None,
    as_json: JsonFlag = False,
    report: ReportDir = None,
) -> None:
    """Train the item classifier (with the seed corpus) and score rumour detection."""
    from classifiers.datasets import DatasetError
    from classifiers.rumour_eval import evaluate_rumour

    held_out = [e for e in (events or "").split(",") if e]
    try:
        result = evaluate_rumour(_files(train), _files(test)[0], held_out, _progress())
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    if report is not None:
        from classifiers.report import write_report

        write_report(report, "rumour", result.metrics, result.scores, result.relevant)
    _print_metrics(result.metrics, as_json)


def _print_metrics(metrics: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(metrics)
        return
    for name, value in metrics.items():
        typer.echo(f"{name:>12}: {value}")
