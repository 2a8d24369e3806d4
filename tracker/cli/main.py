"""The `tracker` command line: run the service, manage feeds, read pairs."""

import errno
import os
import signal
import socket
import sys
import tempfile
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any, get_args

import httpx
import psycopg
import typer
from kombu.exceptions import OperationalError
from pydantic import SecretStr

from tracker import demo
from tracker.cli.alerts import alerts_app
from tracker.cli.feeds import feeds_app, items_app
from tracker.cli.models import eval_app, models_app, train_app
from tracker.cli.ops import backup, db_app, prune, restore
from tracker.cli.users import users_app
from tracker.cli.util import (
    broker_url,
    choices,
    connect,
    database_url,
    fail,
    one_of,
    print_json,
    print_table,
    score,
    settings,
)
from tracker.cli.workers import workers_app
from tracker.config import Settings
from tracker.domain import PairStatus
from tracker.logs import configure as configure_logs
from tracker.runtime import broker as broker_module
from tracker.runtime import embedded, supervisor
from tracker.storage import db, feeds, outbox, pairs
from tracker.usecases.accounts import ensure_admin

app = typer.Typer(
    help="Rumour Tracker: pairs rumours with the clarifications that answer them.",
    no_args_is_help=True,
    add_completion=False,
)
pairs_app = typer.Typer(help="Suggested and reviewed pairs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(feeds_app, name="feeds")
app.add_typer(items_app, name="items")
bench_app = typer.Typer(help="Benchmarks: figures printed, for the record.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(pairs_app, name="pairs")
app.add_typer(alerts_app, name="alerts")
app.add_typer(train_app, name="train")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(users_app, name="users")
app.add_typer(workers_app, name="workers")
app.command("backup")(backup)
app.command("restore")(restore)
app.command("prune")(prune)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where embedded PostgreSQL/Redis keep data (TRACKER_DATA_DIR)."
    ),
]

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LoadedItems = Annotated[int, typer.Option("--items", min=20, help="Items loaded.")]
LoadedPairs = Annotated[
    int, typer.Option("--pairs", min=10, help="Pairs loaded (at most items / 2).")
]


@app.callback()
def _global(data_dir: DataDir = None) -> None:
    if data_dir is not None:
        os.environ["TRACKER_DATA_DIR"] = str(data_dir.expanduser().resolve())


@app.command("config")
def show_config() -> None:
    """Print the effective settings, secrets masked."""
    print_json(settings().masked())


@pairs_app.command("list")
def pairs_list(
    as_json: JsonOut = False,
    status: Annotated[
        str | None,
        typer.Option(callback=one_of(get_args(PairStatus)), help=choices(get_args(PairStatus))),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
) -> None:
    """List pairs, best score first."""
    with connect() as conn:
        found = pairs.list_pairs(conn, status, limit)
    if as_json:
        print_json(
            [
                {
                    "id": p.id,
                    "score": round(p.score, 4),
                    "status": p.status,
                    "rumour": {"id": p.rumour_id, "title": p.rumour_title, "feed": p.rumour_feed},
                    "clarification": {
                        "id": p.clarification_id,
                        "title": p.clarification_title,
                        "feed": p.clarification_feed,
                    },
                    "shared_terms": p.explanation.get("shared_terms", []),
                    "created_at": p.created_at,
                }
                for p in found
            ]
        )
        return
    print_table(
        ("id", "score", "status", "rumour  <->  clarification"),
        (
            (p.id, score(p.score), p.status, f"{p.rumour_title}  <->  {p.clarification_title}")
            for p in found
        ),
    )


def _progress(line: str) -> None:
    """A benchmark's progress lines go to stderr, so that --json output stays parseable."""
    typer.echo(line, err=True)


def _report(figures: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(figures)
        return
    for key, value in figures.items():
        typer.echo(f"{key}: {value}")


def _check_pairs(n_items: int, n_pairs: int) -> None:
    if n_pairs * 2 > n_items:
        raise fail("--pairs must be at most --items / 2: each pair has two items of its own")


@bench_app.command("ingest")
def bench_ingest(
    n_feeds: Annotated[int, typer.Option("--feeds", min=1, help="Feeds of 50 items.")] = 200,
    repoll: Annotated[int, typer.Option(min=1, help="Unchanged feeds to re-poll.")] = 10_000,
    as_json: JsonOut = False,
) -> None:
    """Ingest a generated corpus served on loopback with 1 and 2 worker processes."""
    from tracker.bench.ingest import bench

    with database_url(settings()) as url:
        typer.echo(f"benchmarking {n_feeds} feeds x 50 items, then {repoll} re-polls ...", err=True)
        figures = bench(url, n_feeds, repoll)
    _report(figures, as_json)


@bench_app.command("pairing")
def bench_pairing(
    n_items: Annotated[
        int, typer.Option("--items", min=10, help="Stored items (also measured at a tenth).")
    ] = 1_000_000,
    new: Annotated[int, typer.Option(min=2, help="New items paired one at a time.")] = 200,
    classify_n: Annotated[
        int, typer.Option("--classify", min=100, help="Items for the throughput figure.")
    ] = 20_000,
    as_json: JsonOut = False,
    reuse: Annotated[
        str | None,
        typer.Option(
            help="Keep the loaded items in this database; later runs measure at N only.",
        ),
    ] = None,
) -> None:
    """Classification throughput on one core; pairing latency at N/10 and N stored items."""
    from tracker.bench.pairing import bench

    with database_url(settings()) as url:
        typer.echo(f"benchmarking pairing at {n_items // 10} and {n_items} items ...", err=True)
        figures = bench(url, n_items, new, classify_n, _progress, reuse)
    _report(figures, as_json)


@bench_app.command("review")
def bench_review(
    n_items: LoadedItems = 1_000_000,
    n_pairs: LoadedPairs = 100_000,
    requests: Annotated[int, typer.Option(min=10, help="Timed requests per endpoint.")] = 300,
    as_json: JsonOut = False,
    reuse: Annotated[
        str | None,
        typer.Option(help="Keep the loaded data in this database; later runs reuse it."),
    ] = None,
) -> None:
    """Server time of the review queue page and the API pair list (p95 target 100 ms)."""
    from tracker.bench.review import bench

    _check_pairs(n_items, n_pairs)
    with database_url(settings()) as url:
        typer.echo(
            f"benchmarking the review queue at {n_items} items, {n_pairs} pairs ...", err=True
        )
        figures = bench(url, n_items, n_pairs, requests, _progress, reuse)
    _report(figures, as_json)


@bench_app.command("ops")
def bench_ops(
    n_items: LoadedItems = 1_000_000,
    n_pairs: LoadedPairs = 100_000,
    requests: Annotated[int, typer.Option(min=10, help="Timed idle requests per endpoint.")] = 300,
    as_json: JsonOut = False,
    reuse: Annotated[
        str | None,
        typer.Option(help="Keep the loaded data in this database (bench review's); reuse it."),
    ] = None,
) -> None:
    """Backup and restore times and dump size; a retention pass over half-expired items, with
    the review queue's p95 during it against idle (target at most 1.5x)."""
    from tracker.bench.ops import bench

    _check_pairs(n_items, n_pairs)
    with database_url(settings()) as url:
        typer.echo(f"benchmarking backup, restore and retention at {n_items} items ...", err=True)
        figures = bench(url, n_items, n_pairs, requests, _progress, reuse)
    _report(figures, as_json)


@bench_app.command("scale")
def bench_scale(
    n_feeds: Annotated[int, typer.Option("--feeds", min=1, help="Feeds of 5 items.")] = 5_000,
    workers: Annotated[
        str, typer.Option(help="Worker processes per queue, one run each, comma-separated.")
    ] = "1,2,4",
    as_json: JsonOut = False,
) -> None:
    """The whole pipeline (beat, fetch and classify workers on their queues) on loopback feeds."""
    from tracker.bench.scale import bench

    try:
        counts = [int(n) for n in workers.split(",")]
    except ValueError as exc:
        raise fail(f"--workers takes whole numbers separated by commas, not {workers!r}") from exc
    if not counts or min(counts) < 1:
        raise fail("--workers needs at least one count, each 1 or more")
    s = settings()
    with database_url(s) as url, broker_url(s) as broker:
        typer.echo(f"benchmarking {n_feeds} feeds x 5 items with {workers} workers ...", err=True)
        figures = bench(url, broker, n_feeds, counts, _progress)
    _report(figures, as_json)


@bench_app.command("replay")
def bench_replay(
    split: Annotated[
        str,
        typer.Option(
            help="DIR:SPLIT, a CheckThat!-format folder and split (queries.SPLIT.jsonl, "
            "qrels.SPLIT.tsv, vclaims*.jsonl)."
        ),
    ],
    dates: Annotated[
        str,
        typer.Option(
            help="recent: fact-checks a day old, claims now; real: fact-checks at their real "
            "dates, claims now; all-real: both at their real dates."
        ),
    ] = "recent",
    distractors: Annotated[
        int, typer.Option(min=0, help="Other fact-checks of the collection served too.")
    ] = 800,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the pipeline.")] = 600,
    as_json: JsonOut = False,
) -> None:
    """A CheckThat! split as feeds through the whole pipeline and models `tracker up` runs:
    labels, pairs against the gold fact-checks, time to settle. Exit 1 if it did not settle."""
    from classifiers.datasets import DatasetError
    from tracker.bench import replay

    folder, _, name = split.rpartition(":")
    if not folder or not name:
        raise fail(
            f"--split takes DIR:SPLIT, e.g. ../shared/data/checkthat2022_2a_en:dev, not {split!r}"
        )
    if not Path(folder).is_dir():
        raise fail(f"--split: no folder {folder}")
    if dates not in replay.DATE_MODES:
        raise fail(f"--dates takes {' or '.join(replay.DATE_MODES)}, not {dates!r}")
    try:
        data = replay.load(Path(folder), name, distractors, _progress)
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    s = settings()
    with database_url(s) as url, broker_url(s) as broker:
        figures = replay.bench(url, broker, s, data, dates, timeout, _progress)
    if as_json:
        print_json(figures)
    else:
        typer.echo("\n".join(replay.readable(figures)))
    if not figures["settled"]:
        raise typer.Exit(1)


@bench_app.command("language")
def bench_language(
    data: Annotated[
        Path, typer.Option(help="The shared data folder (voxcheck_xling, pheme_rnr, feeds).")
    ] = Path("../shared/data"),
    as_json: JsonOut = False,
) -> None:
    """Language detection on real text: accuracy where it decides, how often an item falls back
    to its declared language, at the shipped floors and at others."""
    from tracker.bench import language

    if not data.is_dir():
        raise fail(f"--data: no folder {data}")
    figures = language.bench(data)
    if as_json:
        print_json(figures)
    else:
        typer.echo("\n".join(language.readable(figures)))


@bench_app.command("vectors")
def bench_vectors(
    n_items: Annotated[int, typer.Option("--items", min=100, help="Stored vectors.")] = 100_000,
    queries: Annotated[int, typer.Option(min=1, help="Query vectors per path.")] = 200,
    exact_items: Annotated[
        int | None, typer.Option(min=100, help="Cap on the real[] path's rows [--items].")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Server for the real[] path [TRACKER_DATABASE_URL, else the local 5432].",
        ),
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Vector search as pairing runs it, on pgvector (HNSW, embedded pgserver unless the server
    has it) and on real[] (exact): load, index build, size, latency, recall; embedder speed."""
    from tracker.bench import vectors

    configured = settings().database_url
    url = server or (configured.get_secret_value() if configured else vectors.DEFAULT_SERVER)
    figures = vectors.bench(url, n_items, queries, exact_items, _progress)
    _report(figures, as_json)


@bench_app.command("faults")
def bench_faults(
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Only this fault (repeatable); default: every one, after a clean run."),
    ] = None,
    n_feeds: Annotated[
        int, typer.Option("--feeds", min=1, help="Feeds of rumours and clarifications.")
    ] = 200,
    items_per_feed: Annotated[int, typer.Option(min=1, help="Items in each feed.")] = 10,
    demo_feeds: Annotated[
        bool, typer.Option("--demo-feeds", help="The 6 demo feeds (28 items) instead of a load.")
    ] = False,
    as_json: JsonOut = False,
) -> None:
    """The pipeline under faults while it is busy: killed workers, Redis and PostgreSQL
    restarts, SMTP down, a second beat, the connection limit; counts items, classifications,
    pairs, stories and alerts, lost and duplicated, and how long each run took to settle."""
    from tracker.bench import faultload, faults

    unknown = sorted(set(fault or ()) - set(faults.FAULTS))
    if unknown:
        raise fail(f"unknown fault {', '.join(unknown)}; choose from {', '.join(faults.FAULTS)}")
    load = None if demo_feeds else faultload.Load(n_feeds, items_per_feed)
    # Killed with SIGTERM (a timeout, a CI job cancelled): unwind, so the workers, Redis and
    # PostgreSQL the bench started are stopped rather than left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="rt-faults-") as directory:
        what = "the demo feeds" if load is None else f"{n_feeds} feeds x {items_per_feed} items"
        typer.echo(f"running the pipeline under faults, {what}, in {directory} ...", err=True)
        figures = faults.bench(Path(directory), tuple(fault or faults.FAULTS), load, _progress)
    if as_json:
        print_json(figures)
    else:
        for run in figures["runs"]:
            typer.echo(" ".join(f"{key}={value}" for key, value in run.items()))
    if not figures["all_ok"]:
        raise typer.Exit(1)


@app.command("up")
def up(
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Web UI port [TRACKER_WEB_PORT: 8000]."),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Web UI address [TRACKER_WEB_HOST: 127.0.0.1].")
    ] = None,
    with_demo: Annotated[
        bool, typer.Option("--demo", help="Serve and register the demo newsroom.")
    ] = False,
    demo_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port of the demo feed server.")
    ] = 8765,
) -> None:
    """Run the tracker: embedded PostgreSQL and Redis unless URLs are configured."""
    s = settings()
    host = host or s.web_host
    port = port if port is not None else s.web_port
    # Before anything starts: a taken port would otherwise surface as a web process that
    # keeps exiting, deep in the log.
    _check_free(host, port, "--port or TRACKER_WEB_PORT")
    if with_demo:
        _check_free("127.0.0.1", demo_port, "--demo-port")
    started = time.monotonic()
    with embedded.run_lock(s.data_dir), database_url(s) as db_url, broker_url(s) as broker:
        db.upgrade(db_url)
        public_url = s.public_url or f"http://{host}:{port}"
        allow = list(s.fetch_allow_networks)
        demo_server = _serve_demo(demo_port) if with_demo else None
        if demo_server is not None:
            # The demo's feed server and nothing else on this machine (its database, Redis).
            allow.append(f"127.0.0.1:{demo_server.server_address[1]}")
        password = _prepare(db_url, demo_server is not None, demo_port)
        key_file = (
            supervisor.local_secret_key_file(s.data_dir) if s.has_default_secret_key else None
        )
        env = supervisor.child_env(db_url, broker, s.data_dir, public_url, allow, key_file)
        roles = supervisor.roles(s.data_dir, host, port, s.forwarded_allow_ips)
        sup = supervisor.Supervisor(roles, env)
        sup.start()
        _wait_for_web(f"http://{host}:{port}/healthz", sup)
        # Announced once the workers are ready too, so their start-up lines come before it.
        _wait_for_workers(s.model_copy(update={"broker_url": SecretStr(broker)}), sup)
        _announce(public_url, password, s, time.monotonic() - started, demo_server is not None)
        code = sup.wait()
        typer.echo("stopping: beat, workers, web, then Redis and PostgreSQL")
        sup.stop()
        if demo_server is not None:
            demo_server.shutdown()
    raise typer.Exit(code)


# How long `up` waits for both workers to answer before it announces itself anyway.
WORKERS_READY_S = 60


def _check_free(host: str, port: int, option: str) -> None:
    """Bind as the server will. Port 0 (any free port) is bound too: that proves the host can
    be listened on. Only the web's host comes from the user (the demo's is loopback), so the
    host problems name its option."""
    # A machine without IPv6 refuses the socket itself: inside the try too.
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            # As the servers themselves do: a port a stopped server left in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        other_host = "choose another address with --host or TRACKER_WEB_HOST"
        if isinstance(exc, socket.gaierror):
            why = f": the name does not resolve; {other_host}"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = f": not an address of this machine; {other_host}"
        elif exc.errno == errno.EADDRINUSE:
            why = f": another program uses it; choose another port with {option}"
        else:
            why = ""  # a privileged port, say: the reason itself says it
        raise fail(f"cannot listen on {host}:{port} ({exc.strerror}){why}") from exc


def _serve_demo(port: int) -> ThreadingHTTPServer:
    try:
        return demo.serve(port)
    except OSError as exc:
        raise fail(
            f"cannot serve the demo feeds on 127.0.0.1:{port} ({exc.strerror}); "
            "choose another port with --demo-port"
        ) from exc


def _prepare(database_url: str, with_demo: bool, demo_port: int) -> str | None:
    """First-start work: the first admin, the seed model, and the demo feeds."""
    # Imported here: scikit-learn takes a second to load, and only `up` needs it.
    from tracker.pipeline.model_registry import ensure_models

    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            password = ensure_admin(conn)
        ensure_models(conn)
        if with_demo:
            with conn.transaction():
                for f in demo.feeds(f"http://127.0.0.1:{demo_port}"):
                    new = feeds.NewFeed(f.url, f.kind, f.title, f.language, tags=("demo",))
                    feeds.add(conn, new, poll_interval_s=300)
                outbox.subscribe(conn, "admin@localhost", [], 0.5)
    return password


def _wait_for_web(health_url: str, sup: supervisor.Supervisor) -> None:
    """Announce the URL only once it answers (or give up quietly: wait() reports a crash)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not sup.stopping.is_set():
        try:
            if httpx.get(health_url, timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if any(proc.poll() is not None for proc in sup.procs.values()):
            return
        time.sleep(0.2)


def _wait_for_workers(s: Settings, sup: supervisor.Supervisor) -> None:
    deadline = time.monotonic() + WORKERS_READY_S
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in sup.procs.values()):
            return
        try:
            answered = broker_module.ping_workers(s, 1.0)
        except (OSError, OperationalError):
            answered = {}
        queues = {name.split("@")[0].rsplit("-", 1)[-1] for name in answered}
        if queues >= {"fetch", "classify"}:
            return
        time.sleep(0.5)


def _announce(url: str, password: str | None, s: Settings, seconds: float, demo: bool) -> None:
    lines = [f"Rumour Tracker is up in {seconds:.1f} s: {url}"]
    if password:
        lines.append(f"first login: admin@localhost / {password} (you must change it)")
    else:
        lines.append("log in with your existing account")
    lines.append(f"data dir: {s.data_dir}")
    if demo:
        lines += [
            "demo newsroom registered; pairs appear within a minute",
            "(`tracker pairs list` in another terminal)",
        ]
    lines.append("Ctrl-C stops everything")
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    box = [rule, *(f"| {line.ljust(width)} |" for line in lines), rule]
    typer.echo("\n" + "\n".join(box) + "\n")


GLOBAL_OPTIONS = ("--data-dir",)


def misplaced_global(argv: list[str]) -> tuple[str, str] | None:
    """A global option given after the command (`tracker up --data-dir X`), which the command
    would refuse as unknown, and the command; None when there is none."""
    command = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    if command is None or (command > 0 and argv[command - 1] in GLOBAL_OPTIONS):
        return None  # the first bare word is the global option's value, not the command
    for arg in argv[command + 1 :]:
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            return name, argv[command]
    return None


def main() -> None:
    configure_logs()
    misplaced = misplaced_global(sys.argv[1:])
    if misplaced is not None:
        option, command = misplaced
        typer.secho(
            f"error: {option} is an option of `tracker` itself: put it before the command, "
            f"as in `tracker {option} DIR {command} ...`",
            err=True,
            fg=typer.colors.RED,
        )
        sys.exit(2)
    try:
        app()
    except embedded.EmbeddedUnavailableError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)
