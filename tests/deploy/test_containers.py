"""The container image, the compose stack and the Kubernetes manifests, checked without a Docker engine
or a cluster (there is none on the project's machines).

What is checked is what would break a deployment: the Dockerfile installs what the package needs and
runs it as a non-root user, with a health check that really answers against a running monitor; every
path the compose file mounts exists; every ``POISON_MONITOR_*`` variable and settings file is a real
setting that `monitor.config.Settings` accepts with the intended value; every command line given to the
image parses with the real CLI and starts; ports, probes, selectors, topics and listeners agree with
each other and with the settings; Prometheus' compose config passes promtool; the PrometheusRule is the
tested rules file. Where the real tools exist here (docker compose / docker-compose, kubectl) they
validate the files too.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from monitor import cli, config
from monitor.config import ENV_PREFIX, MetricsSettings, Settings, describe

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
RULES = DEPLOY / "prometheus" / "rules" / "poison-monitor.rules.yml"

SIX_SERVICES = {"kafka", "monitor", "simulator", "prometheus", "alertmanager", "grafana"}
OPTIONS = {row["option"] for row in describe(Settings)}
UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: the Kafka clients fail fast


# ------------------------------------------------------------------ the PrometheusRule, generated
PROMETHEUSRULE = K8S / "prometheusrule.yaml"
PROMETHEUSRULE_HEADER = """\
# Generated from deploy/prometheus/rules/poison-monitor.rules.yml (its comments explain the rules):
# spec is that file's content. tests/deploy/test_containers.py fails when they differ; regenerate with
#   python -c "import tests.deploy.test_containers as t; t.write_prometheusrule()"
# (metadata is kept). Multi-line expressions are written `|-`: kustomize re-emits a folded (`>-`)
# scalar that has more-indented lines with extra blank lines in it.
# A Prometheus that selects rules by label (kube-prometheus-stack: release=<its release name>) needs
# that label in metadata.labels too.
"""


def render_prometheusrule() -> str:
    """deploy/kubernetes/prometheusrule.yaml as generated from the rules file (keeping the current metadata)."""

    class Dumper(yaml.SafeDumper):
        pass

    class Expr(str):
        """A PromQL expression: written as a block, never wrapped or folded."""

    def text(dumper: yaml.SafeDumper, value: str):
        block = "\n" in value or (isinstance(value, Expr) and len(value) > 80)
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if block else None)

    Dumper.add_representer(str, text)
    Dumper.add_representer(Expr, text)
    spec = yaml.safe_load(RULES.read_text())
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule["expr"] = Expr(rule["expr"])
    metadata = {"name": "poison-monitor", "labels": {"app.kubernetes.io/name": "poison-monitor",
                                                     "app.kubernetes.io/part-of": "iot-poison-monitor"}}
    if PROMETHEUSRULE.exists():
        metadata = yaml.safe_load(PROMETHEUSRULE.read_text())["metadata"]
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata,
           "spec": spec}
    return PROMETHEUSRULE_HEADER + yaml.dump(doc, Dumper=Dumper, sort_keys=False, width=110, allow_unicode=True)


def write_prometheusrule() -> None:
    PROMETHEUSRULE.write_text(render_prometheusrule())


# ----------------------------------------------------------------------------------------- helpers
def tool(name: str) -> str:
    return shutil.which(name) or pytest.fail(f"{name} not found (scripts/setup.sh installs prometheus)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions in order, (INSTRUCTION, arguments): comments dropped, continuations joined."""
    out, buf = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") or (not buf and not line.strip()):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        instruction, _, args = (buf + line).strip().partition(" ")
        out.append((instruction.upper(), args.strip()))
        buf = ""
    assert not buf, "the Dockerfile ends inside a continuation line"
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    return instructions[last_from:]


def only(instructions: list[tuple[str, str]], name: str) -> str:
    found = [args for ins, args in instructions if ins == name]
    assert len(found) == 1, f"expected one {name} in the final stage, found {found}"
    return found[0]


def image_env() -> dict[str, str]:
    """ENV of the final stage (KEY=VALUE pairs)."""
    env = {}
    for args in (a for ins, a in final_stage() if ins == "ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def image_uid() -> int:
    user = only(final_stage(), "USER").split(":")[0]
    assert user.isdigit(), f"USER {user!r}: a numeric uid lets Kubernetes' runAsNonRoot verify it"
    return int(user)


def healthcheck() -> tuple[list[str], list[str]]:
    """(options, exec-form command) of the HEALTHCHECK."""
    args = only(final_stage(), "HEALTHCHECK")
    options, sep, command = args.partition(" CMD ")
    assert sep, f"HEALTHCHECK without CMD: {args}"
    command = json.loads(command)  # exec form: no shell needed in the image
    return options.split(), command


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict]:
    return compose()["services"]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def monitor_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}


def builds_our_image(service: dict) -> bool:
    build = service.get("build")
    if not build:
        return False
    context = DEPLOY / (build if isinstance(build, str) else build.get("context", "."))
    return (context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            ).resolve() == DOCKERFILE


def bind_mounts(service: dict) -> list[tuple[Path, str]]:
    """(host path, container path) of every bind mount (short or long syntax), host paths resolved from deploy/."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source.startswith((".", "/", "~")):
            mounts.append(((DEPLOY / source).resolve(), target))
    return mounts


def host_path(service: dict, container_path: str) -> Path:
    """The host file behind a path inside the service's container, through its bind mounts."""
    path = PurePosixPath(container_path)
    for host, target in bind_mounts(service):
        if path == PurePosixPath(target) or PurePosixPath(target) in path.parents:
            return host / path.relative_to(target)
    raise AssertionError(f"{container_path} is not mounted from the repository")


def flag(command: list[str], name: str) -> str:
    values = [c.split("=", 1)[1] for c in command if c.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} in {command}"
    return values[0]


def k8s_docs() -> dict[str, dict]:
    """Every manifest under deploy/kubernetes (but the kustomization), by kind."""
    docs: dict[str, dict] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in docs, f"two {doc['kind']} manifests"
            docs[doc["kind"]] = doc
    return docs


def container() -> dict:
    [c] = k8s_docs()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def k8s_env() -> dict[str, str]:
    """The container's env; values from the downward API stand in as a pod name."""
    return {e["name"]: e["value"] if "value" in e else "poison-monitor-7d9f-x2x4q" for e in container().get("env", [])}


def settings_file(tmp_path: Path) -> Path:
    """The ConfigMap's settings file, written where the test can read it, under its own name."""
    [(name, text)] = k8s_docs()["ConfigMap"]["data"].items()
    path = tmp_path / name
    path.write_text(text)
    return path


def k8s_args(tmp_path: Path) -> list[str]:
    """The Deployment's args with the mounted settings file replaced by the ConfigMap's content here."""
    args = list(container()["args"])
    i = args.index("--config")
    args[i + 1] = str(settings_file(tmp_path))
    return args


def annotation(option: str):
    model: type[BaseModel] = Settings
    *sections, name = option.split(".")
    for section in sections:
        model = model.model_fields[section].annotation
    return model.model_fields[name].annotation


def value_of(settings: BaseModel, option: str):
    for part in option.split("."):
        settings = getattr(settings, part)
    return settings


def isolate(monkeypatch, env: dict[str, str], config_file: Path | None = None) -> None:
    """Exactly these POISON_MONITOR_* variables, and this settings file (or none)."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(config, "CONFIG_FILE", config_file)


def check_env(monkeypatch, env: dict[str, str], config_file: Path | None = None) -> Settings:
    """Each variable names a real option and Settings takes its value; returns the effective settings."""
    for var in env:
        option = var.removeprefix(ENV_PREFIX).lower().replace("__", ".")
        assert option in OPTIONS, f"{var} is no setting (poison-monitor options lists them)"
    isolate(monkeypatch, env, config_file)
    settings = Settings()
    for var, raw in env.items():
        option = var.removeprefix(ENV_PREFIX).lower().replace("__", ".")
        assert value_of(settings, option) == TypeAdapter(annotation(option)).validate_python(raw), var
    return settings


def parse_command(monkeypatch, args: list[str], env: dict[str, str]):
    """The subcommand object the real CLI builds from these args and variables, without running it."""
    isolate(monkeypatch, env)
    args = cli._take_config(list(args))  # sets config.CONFIG_FILE like main() (restored by monkeypatch)
    app = cli.App(_cli_parse_args=args, _cli_exit_on_error=False)
    command = getattr(app, args[0])
    assert command is not None, args
    return command


def start_against_no_broker(args: list[str], env: dict[str, str], tmp_path: Path, port: int = 0,
                            connect_timeout: float = 1):
    """Runs `python -m monitor ARGS` for real with the brokers unreachable and a short connect timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)} | env | {
        f"{ENV_PREFIX}KAFKA__BOOTSTRAP_SERVERS": UNREACHABLE,
        f"{ENV_PREFIX}KAFKA__CONNECT_TIMEOUT_SECONDS": str(connect_timeout),
        f"{ENV_PREFIX}KAFKA__CONNECT_RETRY_SECONDS": "0.2",
        f"{ENV_PREFIX}METRICS__HOST": "127.0.0.1",  # loopback only in tests
        f"{ENV_PREFIX}METRICS__PORT": str(port),
    }
    log = (tmp_path / "stderr.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "monitor", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    return proc, tmp_path / "stderr.log"


def finish(proc: subprocess.Popen, log: Path, timeout: float = 20) -> str:
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return log.read_text()


# ---------------------------------------------------------------------------------------- Dockerfile
def test_dockerfile_builds_on_a_pinned_slim_python_311():
    bases = [args.split()[0] for ins, args in dockerfile() if ins == "FROM"]
    assert bases, "no FROM"
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), f"{base}: pin a slim Python 3.11 by its full tag"


def test_dockerfile_installs_the_package_and_only_its_runtime_dependencies():
    instructions = dockerfile()
    installs = [args for ins, args in instructions if ins == "RUN" and "pip install" in args]
    assert len(installs) == 1 and re.search(r"pip install\b[^&]*\s\.(\s|$)", installs[0]), installs
    assert "[dev]" not in installs[0] and "-e " not in installs[0]
    if "--mount=" in installs[0]:  # BuildKit syntax: say which frontend parses it
        assert DOCKERFILE.read_text().startswith("# syntax=docker/dockerfile:1")
    # everything `pip install .` reads is copied into the build stage before it
    copied = {src for ins, args in instructions if ins == "COPY" and not args.startswith("--from")
              for src in args.split()[:-1]}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", project["project"]["readme"], *packages} <= copied
    # the final stage gets the installed environment and puts its scripts first on PATH
    copies = [args for ins, args in final_stage() if ins == "COPY"]
    assert any(args.startswith("--from=") for args in copies)
    venv = next(args.split()[-1] for args in copies if args.startswith("--from="))
    assert image_env()["PATH"].startswith(f"{venv}/bin:")


def test_dockerfile_runs_the_cli_as_a_non_root_user():
    assert image_uid() != 0
    assert json.loads(only(final_stage(), "ENTRYPOINT")) == ["poison-monitor"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["poison-monitor"] == "monitor.cli:main"
    assert json.loads(only(final_stage(), "CMD")) == ["run"]


def test_dockerfile_exposes_the_metrics_port_and_listens_beyond_loopback(monkeypatch):
    default_port = MetricsSettings().port
    assert only(final_stage(), "EXPOSE").split() == [str(default_port)]
    settings = check_env(monkeypatch, monitor_env(image_env()))
    assert settings.metrics.host == "0.0.0.0" and settings.metrics.port == default_port
    _, command = healthcheck()
    assert f"'{default_port}'" in command[-1], "the health check's default port is not the settings' default"


def test_healthcheck_passes_on_a_running_monitor_and_fails_without_one(tmp_path):
    options, command = healthcheck()
    assert command[:2] == ["python", "-c"] and "urllib" in command[2] and "/healthz" in command[2]
    # the request gives up before Docker kills the check
    docker_timeout = next(float(o.split("=")[1].rstrip("s")) for o in options if o.startswith("--timeout="))
    request_timeout = re.search(r"timeout=(\d+(?:\.\d+)?)", command[2])
    assert request_timeout and float(request_timeout.group(1)) < docker_timeout
    port = free_port()
    probe_env = {**os.environ, f"{ENV_PREFIX}METRICS__PORT": str(port)}
    # the image's own command (CMD ["run"]) and environment: /healthz is served while it connects
    proc, log = start_against_no_broker(json.loads(only(final_stage(), "CMD")), monitor_env(image_env()),
                                        tmp_path, port, connect_timeout=2)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        healthy = subprocess.run([sys.executable, *command[1:]], env=probe_env, capture_output=True, timeout=10)
    finally:
        stderr = finish(proc, log)
    assert healthy.returncode == 0, healthy.stderr.decode() + stderr
    assert proc.returncode == 2 and "cannot reach Kafka" in stderr, stderr
    down = subprocess.run([sys.executable, *command[1:]], env=probe_env, capture_output=True, timeout=10)
    assert down.returncode == 1, down.stderr.decode()  # 1 = unhealthy for Docker


def _dockerignore() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        rx = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        rx = rx.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        rules.append((negate, re.compile(rx)))
    return rules


def excluded(rel: str, rules=None) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories decides."""
    parts = rel.split("/")
    out = False
    for negate, rx in rules or _dockerignore():
        if any(rx.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            out = not negate
    return out


def test_dockerignore_sends_the_sources_and_nothing_else():
    rules = _dockerignore()
    copied = [src for ins, args in dockerfile() if ins == "COPY" and not args.startswith("--from")
              for src in args.split()[:-1]]
    for src in copied:
        assert not excluded(src, rules), f"COPY {src} is excluded by .dockerignore"
    for package in ("monitor", "simulators"):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            assert "__pycache__" in rel or not excluded(rel, rules), rel
    for rel in (".git/config", "tests/test_cli.py", "deploy/docker-compose.yml", "docs/deploy.md",
                "scenarios/README.md", "monitor/__pycache__/cli.cpython-311.pyc", ".venv/bin/python"):
        assert excluded(rel, rules), f"{rel} would be sent to the build"


# ------------------------------------------------------------------------------------------- compose
def test_compose_has_the_six_services_and_builds_the_monitor_image_once():
    svcs = services()
    assert SIX_SERVICES <= set(svcs) and set(svcs) - SIX_SERVICES <= {"kafka-init"}
    assert builds_our_image(svcs["monitor"]) and builds_our_image(svcs["simulator"])
    assert svcs["monitor"]["image"] == svcs["simulator"]["image"]
    assert svcs["monitor"]["command"][0] == "run" and svcs["simulator"]["command"][0] == "simulate"
    for name, svc in svcs.items():
        image = svc.get("image", "")
        if not builds_our_image(svc):
            assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+", image), f"{name}: pin {image!r} by a version tag"


def test_compose_mounts_only_paths_that_exist_in_the_repository():
    mounts = [(name, host) for name, svc in services().items() for host, _ in bind_mounts(svc)]
    assert {name for name, _ in mounts} == {"prometheus", "alertmanager", "grafana"}
    for name, host in mounts:
        assert host.exists(), f"{name} mounts {host}, which does not exist"
        assert ROOT in host.parents, f"{name} mounts {host}, outside the repository"


def test_compose_waits_on_health_checks_that_exist():
    svcs = services()
    dockerfile_has_healthcheck = any(ins == "HEALTHCHECK" for ins, _ in final_stage())

    def has_healthcheck(svc: dict) -> bool:
        hc = svc.get("healthcheck")
        if hc is not None:
            return not hc.get("disable") and bool(hc.get("test"))
        return builds_our_image(svc) and dockerfile_has_healthcheck

    for name, svc in svcs.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on with conditions"
        for dep, cond in depends.items():
            assert dep in svcs, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert has_healthcheck(svcs[dep]), f"{name} waits for {dep} to be healthy, which has no health check"
            if cond["condition"] == "service_completed_successfully":
                assert svcs[dep].get("restart", "no") == "no", f"{dep} is waited on to finish: no restart"
    # the long-running services say when they are healthy; the simulator (no /healthz) turns the image's off
    for name in SIX_SERVICES - {"simulator"}:
        assert has_healthcheck(svcs[name]), name
    assert svcs["simulator"]["healthcheck"] == {"disable": True}
    assert svcs["monitor"]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", ["monitor", "simulator"])
def test_compose_variables_are_real_settings(monkeypatch, service):
    env = monitor_env(env_of(services()[service]))
    assert env, f"{service} sets no {ENV_PREFIX}* variable"
    assert check_env(monkeypatch, env).kafka.bootstrap_servers == "kafka:9092"


def test_a_misspelt_variable_fails_the_check(monkeypatch):
    for typo in ({f"{ENV_PREFIX}KAFKA__BOOTSTRAP_SERVER": "kafka:9092"},  # Settings itself refuses it
                 {f"{ENV_PREFIX}LOGLEVEL": "INFO"},  # Settings would ignore it: the option check catches it
                 {f"{ENV_PREFIX}METRICS__PORT": "nine"}):
        with pytest.raises((AssertionError, ValidationError)):
            check_env(monkeypatch, typo)


def test_compose_kafka_is_one_kraft_node_reachable_as_kafka_9092():
    svcs = services()
    env = env_of(svcs["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = dict(re.fullmatch(r"(\w+)://[^:]*:(\d+)", x).groups() for x in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(re.fullmatch(r"(\w+)://(.+)", x).groups() for x in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(x.split(":") for x in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) == set(protocols)
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:{listeners[controller]}"
    inter = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert advertised[inter] == f"kafka:{listeners[inter]}" and svcs["kafka"]["hostname"] == "kafka"
    assert controller not in advertised
    # the host listener is published on the port it advertises
    [published] = svcs["kafka"]["ports"]
    host_ip, host_port, container_port = published.split(":")
    assert host_ip == "127.0.0.1" and advertised["HOST"] == f"localhost:{host_port}" == f"localhost:{container_port}"
    for key in ("OFFSETS_TOPIC_REPLICATION_FACTOR", "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "TRANSACTION_STATE_LOG_MIN_ISR", "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR"):
        assert env[f"KAFKA_{key}"] == "1", key  # a single node cannot hold three replicas
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # a base64 UUID, as kafka-storage wants


def test_compose_commands_parse_and_agree_with_the_broker_and_topics(monkeypatch):
    svcs = services()
    # run the init script with kafka-topics.sh replaced by echo: the shell parses it, and each call shows
    init = svcs["kafka-init"]
    script = init["command"][0].replace("/opt/kafka/bin/kafka-topics.sh", "echo")
    calls = subprocess.run([*init["entrypoint"], script], capture_output=True, text=True, check=True).stdout
    created = set()
    for call in calls.splitlines():
        words = call.split()
        opts = dict(zip(words, words[1:]))
        assert {"--create", "--if-not-exists"} <= set(words), call
        assert opts["--bootstrap-server"] == "kafka:9092" and opts["--replication-factor"] == "1", call
        created.add(opts["--topic"])

    run = parse_command(monkeypatch, svcs["monitor"]["command"], monitor_env(env_of(svcs["monitor"])))
    assert isinstance(run, cli.RunCommand) and run.duration is None  # runs until stopped
    assert run.kafka.bootstrap_servers == "kafka:9092"
    assert created == {run.kafka.topic, run.kafka.alerts_topic, run.kafka.dead_letter_topic}
    assert run.metrics.host == "0.0.0.0"
    assert svcs["monitor"]["ports"] == [f"127.0.0.1:{run.metrics.port}:{run.metrics.port}"]

    sim = parse_command(monkeypatch, svcs["simulator"]["command"], monitor_env(env_of(svcs["simulator"])))
    assert isinstance(sim, cli.SimulateCommand) and sim.out is None  # to Kafka, not to a file
    assert sim.kafka.bootstrap_servers == "kafka:9092" and sim.kafka.topic == run.kafka.topic
    assert sim.rate > 0, "paced, so that the dashboards show the attack unfold"
    labels = sim.simulator().labels()
    assert any(r["status"] == "attack" for r in labels), "the simulated fleet has no attacker"


@pytest.mark.parametrize("service", ["monitor", "simulator"])
def test_compose_commands_start_for_real(tmp_path, service):
    """The real program with the service's command and variables, the broker unreachable: the arguments
    are accepted and it gets as far as connecting to Kafka (exit 2 with the connection error)."""
    svc = services()[service]
    proc, log = start_against_no_broker(svc["command"], monitor_env(env_of(svc)), tmp_path)
    stderr = finish(proc, log)
    assert proc.returncode == 2 and "cannot reach Kafka at 127.0.0.1:1" in stderr, stderr


def test_compose_prometheus_config_passes_promtool():
    r = subprocess.run([tool("promtool"), "check", "config", "prometheus.compose.yml"], cwd=DEPLOY / "prometheus",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    n_rules = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {n_rules} rules found" in r.stdout


def test_compose_prometheus_scrapes_the_monitor_and_alerts_the_alertmanager(monkeypatch):
    svcs = services()
    prom = svcs["prometheus"]
    config_path = flag(prom["command"], "config.file")
    assert host_path(prom, config_path) == DEPLOY / "prometheus" / "prometheus.compose.yml"
    cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.compose.yml").read_text())
    # rule files resolve beside the config file inside the container, to the repository's rules
    rules = [host_path(prom, str(PurePosixPath(config_path).parent / r)) for r in cfg["rule_files"]]
    assert rules == [RULES]
    # the monitor's effective port, and the job name the PoisonMonitorDown rule watches
    port = check_env(monkeypatch, monitor_env(env_of(svcs["monitor"]))).metrics.port
    [job] = cfg["scrape_configs"]
    assert job["static_configs"] == [{"targets": [f"monitor:{port}"]}]
    assert f'up{{job="{job["job_name"]}"}}' in RULES.read_text()
    am_port = int(svcs["alertmanager"]["ports"][0].rsplit(":", 1)[1])  # the container's port
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": [f"alertmanager:{am_port}"]}]


def test_compose_alertmanager_uses_the_tested_config():
    am = services()["alertmanager"]
    assert host_path(am, flag(am["command"], "config.file")) == DEPLOY / "alertmanager" / "alertmanager.yml"


def test_compose_grafana_provisions_the_data_source_and_dashboards():
    svcs = services()
    grafana = svcs["grafana"]
    datasources = host_path(grafana, "/etc/grafana/provisioning/datasources")
    assert datasources == DEPLOY / "grafana" / "provisioning" / "datasources"
    for path in datasources.glob("*.yml"):
        for ds in yaml.safe_load(path.read_text())["datasources"]:
            url = urlsplit(ds["url"])
            assert url.hostname in svcs, f"{path.name}: {ds['url']} is not a compose service"
            listen = [c for c in svcs[url.hostname].get("command", []) if c.startswith("--web.listen-address=")]
            assert url.port == (int(listen[0].rsplit(":", 1)[1]) if listen else 9090)
    providers = host_path(grafana, "/etc/grafana/provisioning/dashboards")
    for path in providers.glob("*.yml"):
        for provider in yaml.safe_load(path.read_text())["providers"]:
            dashboards = host_path(grafana, provider["options"]["path"])
            assert dashboards == DEPLOY / "grafana" / "dashboards" and list(dashboards.glob("*.json"))


def test_docker_compose_validates_the_file():
    """`config` validates the file against the Compose schema and needs no Docker engine."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        compose_cmd = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        compose_cmd = ["docker-compose"]
    else:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (Debian: apt-get install "
                    "docker-compose); the structural checks above still ran")
    r = subprocess.run([*compose_cmd, "-f", "docker-compose.yml", "config", "-q"], cwd=DEPLOY,
                       capture_output=True, text=True, timeout=60, env={**os.environ, "COMPOSE_PROJECT_NAME": "ipm"})
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------------------------------- Kubernetes
def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert set(k8s_docs()) == {"Namespace", "ConfigMap", "Deployment", "Service", "ServiceMonitor", "PrometheusRule"}
    assert kustomization["namespace"] == k8s_docs()["Namespace"]["metadata"]["name"]
    [image] = kustomization["images"]
    assert container()["image"].split(":")[0] == image["name"]


def test_k8s_settings_file_and_env_load_with_settings(monkeypatch, tmp_path):
    settings = check_env(monkeypatch, monitor_env(k8s_env()), config_file=settings_file(tmp_path))
    raw = yaml.safe_load(settings_file(tmp_path).read_text())
    for section, values in raw.items():  # the file's values are taken (none is overridden by the env here)
        for name, value in (values.items() if isinstance(values, dict) else [(None, values)]):
            option = f"{section}.{name}" if name else section
            assert value_of(settings, option) == value, option
    assert settings.metrics.host == "0.0.0.0"


def test_k8s_settings_file_rejects_a_misspelt_option(monkeypatch, tmp_path):
    path = settings_file(tmp_path)
    path.write_text(path.read_text().replace("group_id:", "groupid:"))
    isolate(monkeypatch, {}, path)
    with pytest.raises(ValidationError, match="groupid"):
        Settings()


def test_k8s_args_parse_and_the_settings_file_is_mounted_where_they_say(monkeypatch, tmp_path):
    c, deployment = container(), k8s_docs()["Deployment"]
    args = c["args"]
    assert args[0] == "run" and "--config" in args
    mounted = PurePosixPath(args[args.index("--config") + 1])
    [cm_name] = [v["configMap"]["name"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    cm = k8s_docs()["ConfigMap"]
    assert cm["metadata"]["name"] == cm_name and mounted.name in cm["data"]
    [mount] = [m for m in c["volumeMounts"] if m["mountPath"] == str(mounted.parent)]
    assert mount["readOnly"] and any(v["name"] == mount["name"] and "configMap" in v
                                     for v in deployment["spec"]["template"]["spec"]["volumes"])
    run = parse_command(monkeypatch, k8s_args(tmp_path), monitor_env(k8s_env()))
    assert isinstance(run, cli.RunCommand) and run.duration is None
    assert run.kafka.group_id == "poison-monitor" and run.kafka.client_id == "poison-monitor-7d9f-x2x4q"


def test_k8s_command_starts_for_real(tmp_path):
    proc, log = start_against_no_broker(k8s_args(tmp_path), monitor_env(k8s_env()), tmp_path)
    stderr = finish(proc, log)
    assert proc.returncode == 2 and "cannot reach Kafka at 127.0.0.1:1" in stderr, stderr


def test_k8s_probes_hit_healthz_and_readyz_on_the_metrics_port(monkeypatch, tmp_path):
    c = container()
    port = check_env(monkeypatch, monitor_env(k8s_env()), config_file=settings_file(tmp_path)).metrics.port
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": port}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = c[probe]
        assert p["httpGet"]["path"] == path, probe
        target = p["httpGet"]["port"]
        assert ports.get(target, target) == port, probe
        assert p.get("httpGet", {}).get("scheme", "HTTP") == "HTTP"
        assert p["initialDelaySeconds"] > 0 and p["periodSeconds"] > 0 and p["timeoutSeconds"] < p["periodSeconds"]
    # a liveness probe must not kill a pod that is merely slow: give it longer than the readiness one
    live, ready = c["livenessProbe"], c["readinessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= ready["periodSeconds"] * ready["failureThreshold"]


def _quantity(q: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if str(q).endswith(suffix):
            return float(str(q)[:-len(suffix)]) * factor
    return float(q)


def test_k8s_pod_is_non_root_and_bounded():
    c, pod = container(), k8s_docs()["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid() != 0
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    if sc.get("readOnlyRootFilesystem"):
        assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), "a read-only root needs a writable /tmp"
    for resource in ("cpu", "memory"):
        request, limit = c["resources"]["requests"][resource], c["resources"]["limits"][resource]
        assert 0 < _quantity(request) <= _quantity(limit), resource


def test_k8s_service_and_servicemonitor_select_the_monitor():
    docs = k8s_docs()
    deployment, service, monitor = docs["Deployment"], docs["Service"], docs["ServiceMonitor"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["name"] == "metrics" and port["targetPort"] in {p["name"] for p in container()["ports"]}
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert all(e.get("path", "/metrics") == "/metrics" for e in monitor["spec"]["endpoints"])
    # the operator names the job after the Service: the PoisonMonitorDown rule watches that job
    assert "jobLabel" not in monitor["spec"]
    assert f'up{{job="{service["metadata"]["name"]}"}}' in RULES.read_text()


def test_k8s_prometheusrule_is_the_tested_rules_file():
    rule = k8s_docs()["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == yaml.safe_load(RULES.read_text()), (
        "deploy/kubernetes/prometheusrule.yaml differs from deploy/prometheus/rules/poison-monitor.rules.yml: "
        'regenerate it: python -c "import tests.deploy.test_containers as t; t.write_prometheusrule()"')
    assert yaml.safe_load(render_prometheusrule()) == rule  # the generator reproduces it


def test_kubectl_kustomize_renders_the_namespaced_objects():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed: the manifests were checked one by one above, not rendered")
    r = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rendered = {d["kind"]: d for d in yaml.safe_load_all(r.stdout)}
    assert set(rendered) == set(k8s_docs())
    namespace = rendered["Namespace"]["metadata"]["name"]
    for kind, doc in rendered.items():
        if kind != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, kind
    [image] = yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"]
    [c] = rendered["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert c["image"] == f"{image['newName']}:{image['newTag']}"
    assert rendered["ConfigMap"]["data"] == k8s_docs()["ConfigMap"]["data"]
    assert rendered["PrometheusRule"]["spec"] == yaml.safe_load(RULES.read_text()), (
        "kustomize changed a rule while rendering it (a folded `>-` expression?): regenerate "
        "deploy/kubernetes/prometheusrule.yaml (see its header)")
