"""The command line: ``poison-monitor demo | simulate | run | replay | options``.

Every option is a field of one settings object (`monitor.config.Settings` plus
the command's own), read from ``--config FILE`` (TOML or YAML), then the
environment (``POISON_MONITOR_...``), then the command line; ``--help`` lists
them all. A bad option stops the program at start with its name.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, CliApp, CliPositionalArg, CliSubCommand, SettingsError

from monitor import config
from monitor.config import Settings

log = logging.getLogger("monitor")


class CliError(Exception):
    """A usage or start-up error: printed as one line, exit code 2."""


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
                        force=True)
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _metrics_server(settings: Settings, metrics, health=None, ready=None):
    if not settings.metrics.enabled:
        return None
    from monitor.metrics import MetricsServer

    try:
        server = MetricsServer(metrics, settings.metrics.host, settings.metrics.port, health=health, ready=ready)
    except OSError as exc:
        raise CliError(f"option metrics.port: cannot listen on {settings.metrics.host}:{settings.metrics.port}: {exc}")
    log.info("serving metrics on %s", server.url)
    return server


def _signals(stop) -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop())


class _ScenarioOptions(Settings):
    scenario: str = Field("demo", description="a preset name (clean, demo, mixed) or a scenario file (YAML, TOML, JSON)")
    groups: int | None = Field(None, ge=1, description="number of device groups (default: the scenario's)")
    devices: int | None = Field(None, ge=1, description="devices per group (default: the scenario's)")
    seed: int = Field(0, description="random seed: the same seed gives the same fleet and attacks")
    samples: int | None = Field(None, ge=1, description="samples per device (default: the scenario's, or duration x rate)")
    duration: float | None = Field(None, gt=0, description="stop after this many wall-clock seconds")
    rate: float = Field(0.0, ge=0, description="samples per device per wall-clock second (0: as fast as possible)")

    def simulator(self):
        from simulators import FleetSimulator, PRESETS, Scenario, preset

        overrides = {k: v for k, v in (("groups", self.groups), ("devices_per_group", self.devices)) if v is not None}
        if self.samples is not None:
            overrides["samples"] = self.samples
        elif self.duration is not None and self.rate > 0:
            overrides["samples"] = int(self.duration * self.rate) + 1
        try:
            if self.scenario in PRESETS:
                scenario = preset(self.scenario, **overrides)
            else:
                path = Path(self.scenario)
                if not path.is_file():
                    raise CliError(f"option scenario: {self.scenario!r} is neither a preset ({', '.join(PRESETS)}) nor a file")
                scenario = Scenario.model_validate({**_load_document(path), **overrides})
        except ValidationError as exc:
            raise CliError(f"option scenario: {_first_error(exc)}") from None
        return FleetSimulator(scenario, seed=self.seed)


def _load_document(path: Path) -> dict:
    import json
    import tomllib

    import yaml

    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        return yaml.safe_load(text) or {}
    if path.suffix.lower() == ".toml":
        return tomllib.loads(text)
    return json.loads(text)


class DemoCommand(_ScenarioOptions):
    """Simulator and monitor in one process (no broker): a live view of the fleet and its alerts, and /metrics."""

    rate: float = Field(20.0, ge=0, description="samples per device per wall-clock second (0: as fast as possible)")
    live: bool = Field(True, description="show the live terminal view (else log alerts)")
    alerts_out: Path | None = Field(None, description="also write the alerts to this JSON Lines file")

    def cli_cmd(self) -> None:
        from monitor.demo import run_demo

        if self.state.path is not None:  # the simulated fleet starts afresh each time: nothing to restore into
            raise CliError("option state.path: demo keeps its state in memory; checkpoints are for run and replay")
        run_demo(self)


class SimulateCommand(_ScenarioOptions):
    """Run the fake-sensor fleet: readings to Kafka (or --out FILE), ground truth to --labels."""

    out: Path | None = Field(None, description="write readings to this JSON Lines file instead of Kafka")
    labels: Path | None = Field(None, description="write the ground truth (who lies, how, from when) to this JSON file")
    gateway_batches: bool = Field(False, description="send each tick of a group as one JSON array message")

    def cli_cmd(self) -> None:
        from monitor.feed import feed
        from simulators import write_labels

        _setup_logging(self.log_level)
        sim = self.simulator()
        stopped = threading.Event()
        _signals(stopped.set)
        if self.labels:
            write_labels(self.labels, sim.labels())
        if self.out:
            with self.out.open("wb") as fh:
                n = feed(sim, lambda key, value: fh.write(value + b"\n"), rate=self.rate, duration=self.duration,
                         gateway_batches=self.gateway_batches, stop=stopped.is_set)
            print(f"{n} readings -> {self.out}")
        else:
            from monitor.ingest.kafka import BrokerUnavailable, ReadingProducer

            try:
                producer = ReadingProducer(self.kafka)
            except BrokerUnavailable as exc:
                raise CliError(str(exc)) from None
            n = feed(sim, lambda key, value: producer.send(value, key), rate=self.rate, duration=self.duration,
                     gateway_batches=self.gateway_batches, stop=stopped.is_set)
            producer.flush()
            producer.close()
            print(f"{n} readings -> kafka {self.kafka.bootstrap_servers} topic {self.kafka.topic}")
        if self.labels:
            print(f"labels -> {self.labels}")


class RunCommand(Settings):
    """The service: consume readings from Kafka, produce alerts and dead letters, serve /metrics."""

    duration: float | None = Field(None, gt=0, description="stop after this many seconds (default: run until signalled)")
    idle_flush_seconds: float = Field(0.0, ge=0, description="close all open windows after the input has been idle this long (0: never)")

    def cli_cmd(self) -> None:
        from monitor.ingest.kafka import BrokerUnavailable, KafkaSink, KafkaSource
        from monitor.metrics import Metrics
        from monitor.service import Service

        _setup_logging(self.log_level)
        metrics = Metrics.from_settings(self.metrics)
        state: dict = {}
        server = _metrics_server(
            self, metrics,
            health=lambda: state["service"].health() if "service" in state else (True, {"phase": "connecting"}),
            ready=lambda: (state["service"].readiness(self.metrics.ready_max_lag) if "service" in state else
                           (False, {"phase": "starting", "restored": False, "partitions": None, "lag": None,
                                    "max_lag": self.metrics.ready_max_lag,
                                    "waiting_for": ["restore", "connection to Kafka"]})))
        try:
            held, restored = _checkpoint_at_start(self, self.kafka.topic)  # before Kafka: a bad file fails at once
        except CliError:
            if server:
                server.close()
            raise
        stopped = threading.Event()
        _signals(stopped.set)
        metrics.broker_up.set(0)
        try:
            source = KafkaSource(self.kafka, stop=stopped.is_set)
            sink = KafkaSink(self.kafka, stop=stopped.is_set)
        except BrokerUnavailable as exc:
            if server:
                server.close()
            raise CliError(str(exc)) from None
        metrics.broker_up.set(1)
        service = Service(self.detection, source, sink, metrics, idle_flush_seconds=self.idle_flush_seconds,
                          poll_timeout_s=self.kafka.poll_timeout_ms / 1000, top_k=self.metrics.top_k,
                          state_path=self.state.path, checkpoint_every_s=self.state.every_seconds,
                          source_info={"topic": self.kafka.topic, "group_id": self.kafka.group_id})
        state.update(service=service)
        _signals(service.stop)
        try:
            service.restore(restored)
        except BrokerUnavailable as exc:
            source.close()
            sink.close()
            if server:
                server.close()
            raise CliError(str(exc)) from None
        log.info("consuming %s from %s as group %s", self.kafka.topic, self.kafka.bootstrap_servers, self.kafka.group_id)
        try:
            totals = service.run(self.duration)
        finally:
            source.close()
            sink.close()
            if server:
                server.close()
            if held is not None:
                held.close()
        log.info("stopped: %d messages, %d readings, %d dead letters, %d alerts", totals.messages, totals.readings,
                 totals.dead_letters, totals.alerts)


def _checkpoint_at_start(settings: Settings, topic: str | None):
    """Lock ``state.path`` and restore it if it exists (or move it aside with ``state.discard``).

    Returns (the held lock or None, the restored checkpoint or None); a bad file is a `CliError`."""
    from monitor import checkpoint

    path = settings.state.path
    if path is None:
        return None, None
    try:
        held = checkpoint.lock(path)
    except checkpoint.CheckpointError as exc:
        raise CliError(f"option state.path: {exc}") from None
    try:
        if settings.state.discard:
            aside = checkpoint.discard(path)
            if aside is not None:
                log.warning("state.discard: moved the checkpoint %s aside to %s; starting fresh", path, aside)
            return held, None
        if not path.exists():
            log.info("no checkpoint at %s yet: starting fresh", path)
            return held, None
        restored = checkpoint.restore(path, settings.detection, topic)
    except checkpoint.CheckpointError as exc:
        held.close()
        raise CliError(f"{exc}. To start fresh instead, pass --state.discard (the file is moved aside to "
                       f"{path.name}.discarded) or remove the file") from None
    except OSError as exc:
        held.close()
        raise CliError(f"option state.path: {path}: {exc.strerror or exc}") from None
    if restored.changed:
        log.info("detection settings changed since the checkpoint: %s", "; ".join(restored.changed))
    return held, restored


class ReplayCommand(Settings):
    """Run the same pipeline over a recorded JSON Lines file of readings (in file order), writing alerts."""

    readings: CliPositionalArg[Path] = Field(description="JSON Lines file: one reading object or array per line")
    alerts_out: Path = Field(description="write the alerts here (JSON Lines)")
    dead_letters_out: Path | None = Field(None, description="write unusable lines here (JSON Lines, with reasons)")
    window_seconds: float | None = Field(None, gt=0, description="window length (default: inferred from the data)")
    batch_size: int = Field(5000, ge=1, description="lines per micro-batch")

    @model_validator(mode="after")
    def _file_exists(self) -> "ReplayCommand":
        if not self.readings.is_file():
            raise ValueError(f"readings file {str(self.readings)!r} does not exist")
        return self

    def cli_cmd(self) -> None:
        from monitor.ingest.files import FileSink, FileSource
        from monitor.service import Service

        _setup_logging(self.log_level)
        detection = self.detection
        if self.window_seconds is not None:
            detection = detection.model_copy(update={"window_seconds": self.window_seconds})
        held, restored = _checkpoint_at_start(self.model_copy(update={"detection": detection}), None)
        source = FileSource(self.readings, batch_size=self.batch_size)
        sink = FileSink(self.alerts_out, self.dead_letters_out)
        service = Service(detection, source, sink, state_path=self.state.path,
                          checkpoint_every_s=self.state.every_seconds, source_info={"file": str(self.readings)})
        service.restore(restored)
        try:
            totals = service.run()
        finally:
            source.close()
            sink.close()
            if held is not None:
                held.close()
        print(f"{totals.readings} readings, {totals.dead_letters} dead letters, {totals.late} late, "
              f"{totals.alerts} alerts -> {self.alerts_out}")


class EvaluateCommand(Settings):
    """Score the monitor and the baselines on scenarios (and the Beijing replay) against the ground truth."""

    scenarios: list[str] = Field(["scenarios/reporting"],
                                 description="scenario files, directories of them, or preset names (comma separated)")
    seeds: list[int] = Field([1001, 1002], description="seeds each scenario runs with (comma separated)")
    baselines: list[str] | None = Field(None, description="device baselines to score beside the monitor (default: all)")
    sweep: bool = Field(True, description="also sweep colluding fraction x offset for consensus bias")
    sweep_seeds: list[int] = Field([2001], description="seeds of each sweep cell")
    beijing: str | None = Field("auto", description="Beijing air-quality CSV to replay with injected attacks ('auto': ../shared beside the project, 'none': skip)")
    beijing_attacks: str = Field("scenarios/beijing-attacks.yaml", description="attacks injected into the Beijing replay")
    real_csv: Path | None = Field(None, description="another recorded fleet to replay: a CSV with columns device_id, group, ts, value")
    real_attacks: Path | None = Field(None, description="attacks (a scenario file's attack list) injected into --real-csv")
    out: Path = Field(Path("docs/scoreboard"), description="directory for results.json, SCOREBOARD.md and plots")

    def cli_cmd(self) -> None:
        from monitor.evaluation.cli import run_evaluation

        _setup_logging(self.log_level)
        run_evaluation(self)


class OptionsCommand(Settings):
    """List every setting: its flag, environment variable, effective value, default and description."""

    def cli_cmd(self) -> None:
        for row in config.describe(Settings):
            value = self
            for part in row["option"].split("."):
                value = getattr(value, part)
            env = config.ENV_PREFIX + row["option"].upper().replace(".", "__")
            print(f"--{row['option'].replace('_', '-')} = {value!r}   (env {env}, default {row['default']!r})\n"
                  f"    {row['description']}")


class App(BaseSettings, cli_prog_name="poison-monitor", cli_kebab_case=True, cli_implicit_flags=True,
          cli_use_class_docs_for_groups=True):
    """iot-poison-monitor: find lying and colluding IoT sensors while their data flows.

    Every command takes --config FILE (TOML or YAML) with the same settings as its flags.
    """

    demo: CliSubCommand[DemoCommand]
    simulate: CliSubCommand[SimulateCommand]
    run: CliSubCommand[RunCommand]
    replay: CliSubCommand[ReplayCommand]
    evaluate: CliSubCommand[EvaluateCommand]
    options: CliSubCommand[OptionsCommand]

    def cli_cmd(self) -> None:
        CliApp.run_subcommand(self)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"] if p not in App.model_fields)
    return f"{loc}: {err['msg']}" if loc else err["msg"]


def _take_config(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" or arg.startswith("--config="):
            value = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else None)
            i += 1 if "=" in arg else 2
            if not value:
                raise CliError("option --config: needs a file path")
            path = Path(value)
            if not path.is_file():
                raise CliError(f"option --config: file {value!r} does not exist")
            config.CONFIG_FILE = path
            out += ["--config", value]
            continue
        out.append(arg)
        i += 1
    return out


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _take_config(args)
        if not args:
            args = ["--help"]
        CliApp.run(App, cli_args=args)
    except CliError as exc:
        print(f"poison-monitor: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except ValidationError as exc:
        n = exc.error_count()
        more = f" (and {n - 1} more)" if n > 1 else ""
        print(f"poison-monitor: error: option {_first_error(exc)}{more}", file=sys.stderr)
        raise SystemExit(2) from None
    except SettingsError as exc:
        print(f"poison-monitor: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
