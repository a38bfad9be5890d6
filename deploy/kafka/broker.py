#!/usr/bin/env python3
"""A real single-node KRaft Apache Kafka broker for development and tests.

Stdlib only. The broker is assembled from Maven Central jars (see pom.xml),
cached once outside the work tree, and run with the machine's Java 17+.

Library::

    with Broker("/tmp/kafka") as broker:
        print(broker.bootstrap_servers, broker.startup_seconds)

CLI::

    python deploy/kafka/broker.py fetch
    python deploy/kafka/broker.py start --dir DIR [--port 9092]
    python deploy/kafka/broker.py status --dir DIR
    python deploy/kafka/broker.py stop --dir DIR
"""
from __future__ import annotations

import argparse
import base64
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

KAFKA_VERSION = "4.3.1"
HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.properties"
LIBS_ENV = "POISON_MONITOR_KAFKA_LIBS"
MARKER = ".complete"


class BrokerError(RuntimeError):
    """A broker or jar-fetch failure, with a message fit for one line of CLI output."""


def default_libs_dir() -> Path:
    """``$POISON_MONITOR_KAFKA_LIBS``, else ``${XDG_CACHE_HOME:-~/.cache}/iot-poison-monitor/kafka-VERSION/libs``."""
    if os.environ.get(LIBS_ENV):
        return Path(os.environ[LIBS_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "iot-poison-monitor" / f"kafka-{KAFKA_VERSION}" / "libs"


def ensure_jars(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the directory of broker jars, fetching them with Maven unless already complete.

    A marker file is written after a complete copy; a directory without it is
    fetched (again). A file lock keeps concurrent callers from fetching twice.
    """
    libs = Path(cache_dir) if cache_dir else default_libs_dir()
    if (libs / MARKER).exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError(f"mvn not found on PATH: install Maven, or point {LIBS_ENV} at fetched jars")
    libs.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / f".{libs.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (libs / MARKER).exists():
            return libs
        cmd = [mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
               "-DincludeScope=runtime", f"-DoutputDirectory={libs}"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode or not any(libs.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"jar fetch failed ({' '.join(cmd)}):\n{_tail(proc.stdout)}")
        (libs / MARKER).write_text(f"kafka {KAFKA_VERSION}\n")
    return libs


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (sockets held open together so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cluster_id() -> str:
    """22-char URL-safe base64 of 16 random bytes, without '-' (StorageTool would read it as an option)."""
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if "-" not in cid:
            return cid


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> list[tuple[int, str, int]]:
    """Send a raw Kafka Metadata v4 request (no topics); return the (node_id, host, port) of each broker."""
    client = b"broker.py"
    request = struct.pack(">hhih", 3, 4, 1, len(client)) + client + struct.pack(">i?", 0, False)
    with socket.create_connection((host, port), timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        data = _recv(sock, struct.unpack(">i", _recv(sock, 4))[0])
    _, _, count = struct.unpack_from(">iii", data)  # correlation id, throttle ms, broker count
    off, brokers = 12, []
    for _ in range(count):
        node, hlen = struct.unpack_from(">ih", data, off)
        bhost = data[off + 6:off + 6 + hlen].decode()
        bport, rlen = struct.unpack_from(">ih", data, off + 6 + hlen)
        off += 6 + hlen + 6 + max(rlen, 0)
        brokers.append((node, bhost, bport))
    return brokers


try:  # resolved here, not in the forked child (dlopen after fork can deadlock)
    _prctl = ctypes.CDLL(None).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM the broker when the process (thread) that started it exits (Linux)."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Broker:
    """A single-node KRaft broker+controller on 127.0.0.1 whose config, data and log live in ``workdir``.

    Ports default to free ones, or to those of an existing ``workdir/server.properties``
    (so a stopped workdir restarts with its data). ``libs`` defaults to :func:`ensure_jars`.
    """

    def __init__(self, workdir, port: int | None = None, controller_port: int | None = None,
                 libs=None, heap: str = "512m"):
        self.workdir = Path(workdir).resolve()
        self.config_file = self.workdir / "server.properties"
        self.log_file = self.workdir / "broker.log"
        self.pid_file = self.workdir / "broker.pid"
        self.data_dir = self.workdir / "data"
        old = self._read_config()
        ports = iter(_free_ports(2))
        self.port = port or int(old.get("port") or next(ports))
        self.controller_port = controller_port or int(old.get("controller_port") or next(ports))
        self.libs = Path(libs) if libs else None
        self.heap = heap
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None  # start() wall time: format + JVM start + ready

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"Broker({str(self.workdir)!r}, bootstrap_servers={self.bootstrap_servers!r}, pid={self.pid})"

    def __enter__(self) -> "Broker":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- state ---------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """PID of this workdir's running broker (started here or found via broker.pid), else None."""
        if self.process is not None:
            return self.process.pid if self.process.poll() is None else None
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if str(self.config_file).encode() in cmdline else None  # guards against pid reuse

    @property
    def running(self) -> bool:
        return self.pid is not None

    def ready(self) -> bool:
        """True if a Metadata request to the broker lists this broker."""
        try:
            return any(p == self.port for _, _, p in metadata_brokers("127.0.0.1", self.port))
        except (OSError, struct.error):
            return False

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of broker.log, headed by its last error/root-cause line."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no broker.log)"
        causes = [ln for ln in text.splitlines() if ln.startswith("Caused by:") or " ERROR " in ln]
        return (f"{causes[-1]}\n" if causes else "") + _tail(text, lines)

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float = 120, detach: bool = False) -> "Broker":
        """Format storage if new, launch the broker and wait until it answers metadata requests.

        ``detach=True`` lets the broker outlive this process (CLI); otherwise it is
        sent SIGTERM when the starting thread exits. Raises BrokerError with the tail
        of broker.log if the broker dies or is not ready within ``timeout`` seconds.
        """
        if self.running:
            raise BrokerError(f"a broker is already running in {self.workdir} (pid {self.pid})")
        java = shutil.which("java")
        if not java:
            raise BrokerError("java not found on PATH: the Kafka broker needs a Java 17+ runtime "
                              "(e.g. apt-get install openjdk-17-jre-headless)")
        libs = ensure_jars(self.libs)
        t0 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        classpath = [f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", f"{libs}/*"]  # JVM expands '*'
        if not (self.data_dir / "meta.properties").exists():
            fmt = subprocess.run(
                [java, *classpath, "kafka.tools.StorageTool", "format", "--standalone",
                 "--cluster-id", _cluster_id(), "--config", str(self.config_file)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if fmt.returncode:
                raise BrokerError(f"formatting {self.data_dir} failed:\n{_tail(fmt.stdout)}")
        with open(self.log_file, "wb") as log:  # a fresh log per start
            self.process = subprocess.Popen(
                [java, f"-Xmx{self.heap}", "-Djava.awt.headless=true", *classpath,
                 "kafka.Kafka", str(self.config_file)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                start_new_session=True, preexec_fn=None if detach else _die_with_parent)
        self.pid_file.write_text(f"{self.process.pid}\n")
        deadline = t0 + timeout
        while not self.ready():
            if self.process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(f"broker exited with code {self.process.returncode} during start-up: "
                                  f"{self.log_tail()}\n(full log: {self.log_file})")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"broker not ready after {timeout:.0f}s: "
                                  f"{self.log_tail()}\n(full log: {self.log_file})")
            time.sleep(0.2)
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the broker (clean shutdown), SIGKILL it if still alive after ``timeout`` seconds."""
        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
                if not self._wait(pid, timeout):
                    os.kill(pid, signal.SIGKILL)
                    self._wait(pid, 10)
            except ProcessLookupError:
                pass
        self.pid_file.unlink(missing_ok=True)

    def _wait(self, pid: int, timeout: float) -> bool:
        if self.process is not None:
            try:
                self.process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False

    # -- config --------------------------------------------------------------
    def _read_config(self) -> dict:
        try:
            text = self.config_file.read_text()
        except OSError:
            return {}
        props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
        ports = [addr.rsplit(":", 1)[1] for addr in props.get("listeners", "").split(",") if ":" in addr]
        return dict(zip(("port", "controller_port"), ports))

    def _write_config(self) -> None:
        p, c = self.port, self.controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{c}",
            "listeners": f"PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": self.data_dir,
            "num.partitions": 1,
            "default.replication.factor": 1,
            "auto.create.topics.enable": "true",
            # Internal topics default to replication factor 3 / min ISR 2: hangs on one node.
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "share.coordinator.state.topic.num.partitions": 1,
            # Test speed-ups and small-heap safety.
            "group.initial.rebalance.delay.ms": 0,
            "log.cleaner.dedupe.buffer.size": 2097152,
        }
        self.config_file.write_text("# Written by deploy/kafka/broker.py\n"
                                    + "".join(f"{k}={v}\n" for k, v in props.items()))


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; errors are one line on stderr and exit code 1."""
    parser = argparse.ArgumentParser(prog="broker.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="fetch the broker jars into the cache")
    start = sub.add_parser("start", help="start a detached broker, print its bootstrap address when ready")
    start.add_argument("--port", type=int)
    start.add_argument("--controller-port", type=int)
    start.add_argument("--heap", default="512m")
    start.add_argument("--timeout", type=float, default=120)
    stop = sub.add_parser("stop", help="stop the broker")
    status = sub.add_parser("status", help="show whether the broker runs and is ready (exit 3 if not running)")
    for p in (start, stop, status):
        p.add_argument("--dir", required=True, type=Path, help="broker working directory")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            t0 = time.monotonic()
            libs = ensure_jars()
            print(f"{libs} ({time.monotonic() - t0:.1f}s)")
        elif args.command == "start":
            broker = Broker(args.dir, args.port, args.controller_port, heap=args.heap)
            broker.start(timeout=args.timeout, detach=True)
            print(broker.bootstrap_servers)
        elif args.command == "stop":
            broker = Broker(args.dir)
            was_running = broker.running
            broker.stop()
            print("stopped" if was_running else "not running")
        else:
            broker = Broker(args.dir)
            if not broker.running:
                print("not running")
                return 3
            state = "ready" if broker.ready() else "not ready"
            print(f"running pid={broker.pid} bootstrap={broker.bootstrap_servers} {state}")
        return 0
    except BrokerError as exc:
        print(f"broker.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
