"""The real Apache Kafka broker, fetched from Maven Central and run by the project (no Docker).

Jars are copied once by ``mvn dependency:copy-dependencies`` into a cache outside
git; the log directory under ``TRUCE_HOME`` is formatted once with
``kafka.tools.StorageTool``; the broker then runs as ``java -cp 'libs/*' kafka.Kafka``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from core.errors import BrokerError
from core.kafka import cluster_answers
from core.settings import Settings

_COMPLETE = ".complete"


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file, for error messages."""
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def ensure_jars(settings: Settings) -> Path:
    """Fetch the broker jars once into the shared cache; later calls reuse them."""
    libs = settings.kafka_libs_dir
    if (libs / _COMPLETE).exists():
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (libs / _COMPLETE).exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("Maven (mvn) is not on PATH", hint="install Maven 3.8+ and Java 17")
        staging = libs.parent / f"libs.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        pom = settings.deploy_dir / "kafka" / "pom.xml"
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
            f"-Dkafka.version={settings.kafka_version}",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise BrokerError(
                f"could not fetch Kafka {settings.kafka_version} jars with Maven\n{tail}",
                hint="check that Maven Central is reachable and TRUCE_KAFKA_VERSION exists",
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        (libs / _COMPLETE).write_text(settings.kafka_version + "\n")
    return libs


def render_properties(settings: Settings) -> Path:
    """Write server.properties for this home from the template and the settings."""
    template = Template((settings.deploy_dir / "kafka" / "server.properties.template").read_text())
    settings.kafka_data_dir.mkdir(parents=True, exist_ok=True)
    target = settings.home / "run" / "kafka-server.properties"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        template.substitute(
            host=settings.bind_host,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            log_dir=settings.kafka_data_dir,
            partitions=settings.kafka_partitions,
        )
    )
    return target


def java_argv(settings: Settings, logs_dir: Path | None = None) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java is not on PATH", hint="install a Java 17+ runtime")
    logs = logs_dir or settings.logs_dir
    logs.mkdir(parents=True, exist_ok=True)
    return [
        java,
        f"-Xmx{settings.kafka_heap}",
        f"-Xms{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs}",
        f"-Dlog4j2.configurationFile={settings.deploy_dir / 'kafka' / 'log4j2.yaml'}",
        "-cp",
        f"{settings.kafka_libs_dir}/*",
    ]


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def format_storage(
    settings: Settings,
    properties: Path,
    data_dir: Path | None = None,
    cluster_id: str | None = None,
    extra: Sequence[str] = (),
) -> None:
    """Format the KRaft log directory the first time only (``extra``: more StorageTool
    arguments, e.g. ``--add-scram`` users)."""
    data_dir = data_dir or settings.kafka_data_dir
    if (data_dir / "meta.properties").exists():
        return
    cid = cluster_id or new_cluster_id()
    # "--cluster-id=" form: a random id may start with "-", which argparse would misread
    cmd = [
        *java_argv(settings), "kafka.tools.StorageTool", "format", f"--cluster-id={cid}",
        f"--config={properties}", *extra,
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(
            f"formatting the Kafka log directory failed: {result.stdout}{result.stderr}".strip(),
            hint=f"remove {data_dir} if it holds a broken format",
        )


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (so our broker can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def prepare(settings: Settings) -> list[str]:
    """Everything before the first start: jars, properties, format. Returns the broker argv."""
    if settings.kafka_brokers > 1:  # its log directory is not this home's (cluster_nodes)
        raise BrokerError(
            f"this home runs a local cluster of {settings.kafka_brokers} brokers, not one",
            hint="start it with `truce up` (or start_cluster); TRUCE_KAFKA_BROKERS=1 is "
            "another cluster",
        )
    for port in (settings.kafka_port, settings.kafka_controller_port):
        if not port_free(settings.bind_host, port):
            raise BrokerError(
                f"cannot start Kafka: port {settings.bind_host}:{port} is already in use",
                hint="stop what listens there or set TRUCE_KAFKA_PORT"
                " / TRUCE_KAFKA_CONTROLLER_PORT",
            )
    ensure_jars(settings)
    properties = render_properties(settings)
    format_storage(settings, properties)
    return [*java_argv(settings), "kafka.Kafka", str(properties)]


def stdout_log(settings: Settings) -> Path:
    return settings.logs_dir / "kafka.out"


def server_log(settings: Settings) -> Path:
    return settings.logs_dir / "kafka-server.log"


def wait_ready(settings: Settings, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Block until a metadata request succeeds; raise with the log tail if the broker dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(
                f"Kafka broker exited with code {process.returncode} during start-up\n"
                + log_tail(server_log(settings))
                + "\n"
                + log_tail(stdout_log(settings), 10),
                hint=f"see {server_log(settings)}",
            )
        if cluster_answers(settings.bootstrap_servers, timeout_ms=2_000):
            return
        time.sleep(0.5)
    raise BrokerError(
        f"Kafka broker did not answer a metadata request within {timeout_s:.0f}s\n"
        + log_tail(server_log(settings)),
        hint="raise TRUCE_KAFKA_START_TIMEOUT_S or read the broker log",
    )


def start(settings: Settings) -> subprocess.Popen[bytes]:
    """Start the broker and return once it answers; stop it again if it does not."""
    argv = prepare(settings)
    out = open(stdout_log(settings), "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        argv,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    try:
        wait_ready(settings, process, settings.kafka_start_timeout_s)
    except BaseException:
        stop(process.pid)
        raise
    return process


def stop(pid: int, timeout_s: float = 60.0) -> None:
    """Controlled shutdown (SIGTERM flushes and closes logs); SIGKILL only past the timeout."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            waited = 0
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        if waited == pid:
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


# -- a local multi-broker cluster (TRUCE_KAFKA_BROKERS > 1) -------------------------------

CONTROLLER_ID = 0


@dataclass(frozen=True)
class Node:
    """One JVM of the local cluster: the KRaft controller (id 0) or broker ``node_id``."""

    node_id: int
    name: str
    port: int  # the client port of a broker, the controller port of the controller
    data_dir: Path
    logs_dir: Path
    properties: Path
    host: str  # TRUCE_BIND_HOST

    @property
    def is_controller(self) -> bool:
        return self.node_id == CONTROLLER_ID

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def cluster_nodes(settings: Settings) -> list[Node]:
    """The controller, then brokers 1..N: the start order (they stop in reverse)."""
    root = settings.kafka_data_dir
    run = settings.run_dir

    def node(node_id: int, name: str, port: int) -> Node:
        return Node(
            node_id, name, port, root / name, settings.logs_dir / name,
            run / f"{name}.properties", settings.bind_host,
        )  # fmt: skip

    nodes = [node(CONTROLLER_ID, "kafka-controller", settings.kafka_controller_port)]
    for n in range(1, settings.kafka_brokers + 1):
        nodes.append(node(n, f"kafka-{n}", settings.kafka_broker_port(n)))
    return nodes


def _render_node(settings: Settings, node: Node) -> None:
    kind = "controller" if node.is_controller else "broker"
    template = Template(
        (settings.deploy_dir / "kafka" / f"cluster-{kind}.properties.template").read_text()
    )
    node.data_dir.mkdir(parents=True, exist_ok=True)
    node.properties.parent.mkdir(parents=True, exist_ok=True)
    node.properties.write_text(
        template.substitute(
            node_id=node.node_id,
            voters=f"{CONTROLLER_ID}@{settings.bind_host}:{settings.kafka_controller_port}",
            host=settings.bind_host,
            port=node.port,
            controller_port=settings.kafka_controller_port,
            log_dir=node.data_dir,
            partitions=settings.kafka_partitions,
            replication=settings.replication_factor,
            min_insync=settings.min_insync_replicas,
        )
    )


def prepare_cluster(settings: Settings) -> dict[str, list[str]]:
    """Jars, properties and one format (one cluster id) for every node; each node's argv."""
    nodes = cluster_nodes(settings)
    for node in nodes:
        if not port_free(settings.bind_host, node.port):
            raise BrokerError(
                f"cannot start Kafka {node.name}: port {node.address} is already in use",
                hint="stop what listens there or set TRUCE_KAFKA_PORT"
                " / TRUCE_KAFKA_CONTROLLER_PORT (brokers take TRUCE_KAFKA_PORT + n - 1)",
            )
    ensure_jars(settings)
    id_file = settings.kafka_data_dir / "cluster.id"
    settings.kafka_data_dir.mkdir(parents=True, exist_ok=True)
    if not id_file.exists():
        id_file.write_text(new_cluster_id())
    cluster_id = id_file.read_text().strip()
    argv: dict[str, list[str]] = {}
    for node in nodes:
        _render_node(settings, node)
        format_storage(settings, node.properties, node.data_dir, cluster_id)
        argv[node.name] = [*java_argv(settings, node.logs_dir), "kafka.Kafka", str(node.properties)]
    return argv


def node_ready(settings: Settings, node: Node) -> bool:
    """A broker answers a metadata request; the controller accepts connections."""
    if not node.is_controller:
        return cluster_answers(node.address, timeout_ms=2_000)
    try:
        with socket.create_connection((settings.bind_host, node.port), timeout=2):
            return True
    except OSError:
        return False


@dataclass
class LocalCluster:
    """A running local cluster (tests and `truce rebuild`; `truce up` supervises the
    nodes one by one): kill and restart single brokers, stop all in order."""

    settings: Settings
    argv: dict[str, list[str]]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def nodes(self) -> dict[str, Node]:
        return {node.name: node for node in cluster_nodes(self.settings)}

    def broker(self, node_id: int) -> Node:
        return next(n for n in self.nodes.values() if n.node_id == node_id)

    def start_node(self, name: str) -> None:
        node = self.nodes[name]
        node.logs_dir.mkdir(parents=True, exist_ok=True)
        out = open(node.logs_dir / "kafka.out", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            self.argv[name], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        out.close()
        self.processes[name] = process
        deadline = time.monotonic() + self.settings.kafka_start_timeout_s
        while not node_ready(self.settings, node):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BrokerError(
                    f"Kafka {name} did not start\n" + log_tail(node.logs_dir / "kafka-server.log"),
                    hint=f"see {node.logs_dir}",
                )
            time.sleep(0.3)

    def kill(self, name: str) -> None:
        """SIGKILL one node (a crash: nothing flushed, no controlled shutdown)."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def stop(self) -> None:
        """Brokers first (the controller still answers their controlled shutdown), then
        the controller."""
        for name in reversed(list(self.argv)):
            process = self.processes.pop(name, None)
            if process is not None:
                stop(process.pid)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[None]:
    """This home's local Kafka, one broker or the cluster, for the block (`truce rebuild`)."""
    if settings.kafka_brokers > 1:
        cluster = start_cluster(settings)
        try:
            yield
        finally:
            cluster.stop()
        return
    process = start(settings)
    try:
        yield
    finally:
        stop(process.pid)


def start_cluster(settings: Settings) -> LocalCluster:
    """Start the controller and every broker; return once each broker answers."""
    cluster = LocalCluster(settings, prepare_cluster(settings))
    for name in cluster.argv:
        cluster.start_node(name)
    return cluster
