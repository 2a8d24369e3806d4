"""The walls between the layers, read from the code (docs/architecture.md, "Walls").

Every module of tracker/, workers/ and classifiers/ is parsed with `ast` (nothing is
imported), and each of its imports becomes an edge "importer -> imported module". Imports
inside functions and under `if TYPE_CHECKING:` count as well: a lazy import is still a
dependency, only a later one. Each wall below holds today; a crossing that could not be
undone yet is listed with it, with its reason, as work to do. A new crossing fails with the
importing module, the imported one, the line and the wall's name.
"""

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tracker", "workers", "classifiers")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # always one of our modules (a package counts as its __init__)
    line: int
    private_name: str | None = None  # an underscore name of `imported` the importer uses


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _known(name: str, known: set[str]) -> str:
    """`name`, or the longest of its prefixes that is a module ("tracker.x.y" for an object y
    of tracker.x); `name` itself when none is (a module that does not exist fails anyway)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return name


def scan(importer: str, source: str, known: set[str], is_package: bool = False) -> list[Import]:
    """Every import of one of our modules in `source`, and every use of an underscore name of
    another of our modules: `from x import _name`, or `x._name` where `x` names a module."""
    tree = ast.parse(source)
    found: list[Import] = []
    bound: dict[str, str] = {}  # a local name -> the module of ours it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _ours(alias.name):
                    continue
                found.append(Import(importer, _known(alias.name, known), node.lineno))
                # `import a.b` binds `a`; `import a.b as c` binds `c` to a.b.
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            source_module = node.module or ""
            if node.level:  # relative: from the importer's package, up level - 1 packages
                base = importer.split(".") if is_package else importer.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source_module = ".".join([*base, *([node.module] if node.module else [])])
            if not _ours(source_module):
                continue
            for alias in node.names:
                full = f"{source_module}.{alias.name}"
                if full in known:  # `from tracker import embedded`: the module itself
                    found.append(Import(importer, full, node.lineno))
                    bound[alias.asname or alias.name] = full
                else:
                    imported = _known(source_module, known)
                    private = alias.name if _private(alias.name) else None
                    found.append(Import(importer, imported, node.lineno, private))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        chain: list[str] = []
        value: ast.expr = node.value
        while isinstance(value, ast.Attribute):
            chain.insert(0, value.attr)
            value = value.value
        if not (isinstance(value, ast.Name) and value.id in bound):
            continue
        module = ".".join([bound[value.id], *chain])
        if module in known:
            found.append(Import(importer, module, node.lineno, node.attr))
    return [i for i in found if i.imported != importer]


@cache
def imports() -> tuple[Import, ...]:
    known = set(modules())
    return tuple(
        found
        for name, path in modules().items()
        for found in scan(name, path.read_text(), known, path.name == "__init__.py")
    )


def edges() -> dict[tuple[str, str], int]:
    """importer -> imported, with the first line that imports it."""
    first: dict[tuple[str, str], int] = {}
    for i in imports():
        key = (i.importer, i.imported)
        first[key] = min(first.get(key, i.line), i.line)
    return first


def within(*prefixes: str) -> Callable[[str], bool]:
    """A module that is one of `prefixes` or inside one of them (packages or modules)."""
    return lambda m: any(m == p or m.startswith(f"{p}.") for p in prefixes)


def either(*tests: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda m: any(test(m) for test in tests)


def besides(*prefixes: str) -> Callable[[str], bool]:
    """Any module of ours that is not one of `prefixes` nor inside one."""
    inside = within(*prefixes)
    return lambda m: not inside(m)


# The layers, outermost first (docs/architecture.md): the CLI, the web and the workers call the
# use cases and the stages; the stages and the use cases call storage; storage, ingest and the
# models stand on tracker.domain and a few shared helpers alone.
OUTER = ("tracker.cli", "tracker.web", "workers", "tracker.bench", "tracker.demo")
HELPERS = (
    "tracker.domain",
    "tracker.config",
    "tracker.metrics",
    "tracker.redact",
    "tracker.backoff",
)


@dataclass(frozen=True)
class Wall:
    name: str
    importers: Callable[[str], bool]
    forbidden: Callable[[str], bool]
    # (importer, imported) pairs that cross the wall today, each commented with its reason.
    exceptions: frozenset[tuple[str, str]] = field(default_factory=frozenset)


WALLS = (
    # Storage is the bottom layer that everything else uses: an import upwards would drag
    # FastAPI, Celery, the CLI or a stage's side effects into every process and make cycles.
    # Storage reads and writes what it is told; what follows from a write (an alert, the next
    # task) is the caller's decision.
    Wall(
        "storage imports nothing of ours but storage and tracker.domain",
        within("tracker.storage"),
        besides("tracker.storage", "tracker.domain"),
    ),
    # Ingest is pure (bytes in, values out): the stages (tracker.pipeline.refresh, .archive)
    # decide what is stored, so the parsers are tested and benchmarked without a database.
    Wall(
        "ingest imports nothing of ours but ingest, the shared helpers and the models",
        within("tracker.ingest"),
        besides("tracker.ingest", *HELPERS, "classifiers"),
    ),
    # The stages run in workers; what a person asks for (usecases) and how it is asked (web,
    # CLI) is above them, and starting processes (runtime) is no stage's business.
    Wall(
        "the pipeline imports no use case, outer layer or process management",
        within("tracker.pipeline"),
        within("tracker.usecases", "tracker.runtime", *OUTER),
    ),
    # A use case is shared by the web, the API and the CLI, so it knows none of them.
    Wall(
        "use cases import no outer layer",
        within("tracker.usecases"),
        within(*OUTER),
    ),
    # The benchmarks are `tracker bench ...`: fault injection, throwaway services and corpora
    # the product never needs. They may import the product, never the other way round.
    Wall(
        "only the benchmarks themselves and the CLI import tracker.bench",
        besides("tracker.bench", "tracker.cli"),
        within("tracker.bench"),
    ),
    # The CLI is the outermost layer (arguments, printing, exit codes): what it does that
    # others need belongs in a module below it.
    Wall(
        "nothing outside tracker.cli imports the CLI",
        besides("tracker.cli"),
        within("tracker.cli"),
        frozenset(
            {
                # `python -m tracker`: the entry point is the CLI's main.
                ("tracker.__main__", "tracker.cli.main"),
            }
        ),
    ),
    # Said on its own as well: the web app and the API serve requests; they share code with the
    # CLI only through the use cases below both.
    Wall("the web imports no CLI", within("tracker.web"), within("tracker.cli")),
    # Account rules (passwords, one-time passwords, token strings, roles) live in
    # tracker.usecases.accounts: the CLI never loads the web app to add a user.
    Wall("the CLI imports no tracker.web", within("tracker.cli"), within("tracker.web")),
    # Workers run stages: the web app (FastAPI, templates, sessions) is no part of them.
    Wall("workers import no tracker.web", within("workers"), within("tracker.web")),
    # The Celery app and its tasks are the top of the worker processes: tasks are queued by
    # beat and by the tasks themselves, and the web and the CLI only look at the broker
    # (tracker.runtime.broker: queue lengths, pings), so nothing else needs workers/, and
    # importing it would load Celery's app and configuration into the web and the CLI.
    Wall("nothing outside workers/ imports workers", besides("workers"), within("workers")),
    # The models are trained, evaluated and bundled offline and loaded by workers: classifiers/
    # stays usable without a database, the web or Celery, and takes only the domain types
    # (as classifiers/__init__.py says).
    Wall(
        "classifiers import nothing of ours but tracker.domain",
        within("classifiers"),
        besides("classifiers", "tracker.domain"),
    ),
    # tracker.domain is shared by every layer, so what it imported would be everyone's.
    Wall("tracker.domain imports nothing of ours", within("tracker.domain"), lambda m: True),
    # Starting PostgreSQL, Redis and the worker processes is `tracker up` and the benchmarks'
    # job; a stage, a page or a model that did it would start services from a library call.
    Wall(
        "only the CLI and the benchmarks import process management",
        besides("tracker.cli", "tracker.bench", "tracker.runtime"),
        within("tracker.runtime.supervisor", "tracker.runtime.embedded"),
    ),
)


# Underscore names of another module that product code still uses, each with its reason.
# (Tests may use the private names of what they test; they are not scanned.)
PRIVATE_EXCEPTIONS: frozenset[tuple[str, str, str]] = frozenset()


def test_the_scanner_reads_imports() -> None:
    # Without this, every wall would hold by reading nothing.
    assert len(modules()) > 100
    assert ("tracker.cli.main", "tracker.cli.util") in edges()
    assert ("workers.tasks", "tracker.pipeline.refresh") in edges()
    known = {
        "tracker",
        "tracker.runtime",
        "tracker.runtime.embedded",
        "tracker.storage",
        "tracker.storage.db",
        "x.y",
    }
    source = (
        "import tracker.storage.db\n"
        "from tracker.runtime import embedded as e\n"
        "from tracker.storage.db import _secret, connect\n"
        "from . import db\n"
        "def f():\n"
        "    e._binary()\n"
        "    tracker.storage.db._alembic()\n"
        "    db._pool\n"
        "    e.__name__\n"
    )
    found = scan("tracker.storage.x", source, known)
    assert {(i.imported, i.private_name) for i in found} == {
        ("tracker.storage.db", None),
        ("tracker.runtime.embedded", None),
        ("tracker.storage.db", "_secret"),
        ("tracker.runtime.embedded", "_binary"),
        ("tracker.storage.db", "_alembic"),
        ("tracker.storage.db", "_pool"),
    }


def test_every_module_of_tracker_is_in_a_layer() -> None:
    # A new top-level module or package takes a place in the layers, so a wall covers it.
    top = {m.split(".")[1] for m in modules() if m.startswith("tracker.")}
    layered = {p.split(".")[1] for p in (*OUTER, *HELPERS) if p.startswith("tracker.")}
    found = top - layered - {"ingest", "pipeline", "usecases", "storage", "runtime", "logs"}
    assert found == {"__main__"}, f"place it in a layer: {sorted(found - {'__main__'})}"


@pytest.mark.parametrize("wall", WALLS, ids=[w.name for w in WALLS])
def test_the_wall_holds(wall: Wall) -> None:
    crossings = {
        (importer, imported): line
        for (importer, imported), line in edges().items()
        if wall.importers(importer) and wall.forbidden(imported)
    }
    new = sorted(
        f"{importer} (line {line}) imports {imported}: crosses {wall.name!r}"
        for (importer, imported), line in crossings.items()
        if (importer, imported) not in wall.exceptions
    )
    assert not new, "\n".join(new)
    # An exception that no longer crosses is taken off the list, so the wall closes behind it.
    gone = sorted(wall.exceptions - set(crossings))
    assert not gone, f"no longer crossing {wall.name!r}, remove from its exceptions: {gone}"


def test_no_module_uses_another_modules_private_names() -> None:
    # A leading underscore says "not part of this module's interface": a name another module
    # needs is made public (or moves to the module that uses it), so it is changed knowingly.
    used = {(i.importer, i.imported, i.private_name): i.line for i in imports() if i.private_name}
    new = sorted(
        f"{importer} (line {line}) uses {imported}.{name}: crosses 'no private imports'"
        for (importer, imported, name), line in used.items()
        if (importer, imported, name) not in PRIVATE_EXCEPTIONS
    )
    assert not new, "\n".join(new)
    gone = sorted(PRIVATE_EXCEPTIONS - set(used))
    assert not gone, f"no longer used, remove from PRIVATE_EXCEPTIONS: {gone}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["d", "e"]]
    graph["c"].add("b")
    assert _shortest_cycle(graph, ["a", "b", "c"]) == ["b", "c"]


def _shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """The shortest path back to itself from any module of `component`: what to cut."""
    members = set(component)
    best: list[str] = []
    for start in component:
        paths = {start: [start]}
        queue = [start]
        for node in queue:
            for successor in sorted(graph.get(node, set()) & members):
                if successor == start and (not best or len(paths[node]) < len(best)):
                    best = paths[node]
                if successor not in paths:
                    paths[successor] = [*paths[node], successor]
                    queue.append(successor)
    return best


def test_no_import_cycles() -> None:
    # A cycle means neither module can be understood, tested or imported without the other,
    # and at import time one of them sees the other half-initialised. Lazy imports count:
    # one that only hides a cycle from the interpreter still ties the two together.
    lines = edges()
    graph: dict[str, set[str]] = {}
    for importer, imported in lines:
        graph.setdefault(importer, set()).add(imported)
    messages = []
    for component in _cycles(graph):
        cycle = _shortest_cycle(graph, component)
        steps = zip(cycle, [*cycle[1:], cycle[0]], strict=True)
        messages.append(
            f"import cycle among {len(component)} modules ({', '.join(component)}), "
            "crosses 'no import cycles'; the shortest: "
            + "; ".join(f"{a} (line {lines[a, b]}) imports {b}" for a, b in steps)
        )
    assert not messages, "\n".join(messages)
