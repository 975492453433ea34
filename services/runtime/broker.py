"""The real Apache Kafka broker, fetched from Maven Central and run by the project (no Docker).

Jars are copied once by ``mvn dependency:copy-dependencies`` into a cache outside
git; the log directory under ``TRUCE_HOME`` is formatted once with
``kafka.tools.StorageTool``; the broker then runs as ``java -cp 'libs/*' kafka.Kafka``.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
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


def _java(settings: Settings) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java is not on PATH", hint="install a Java 17+ runtime")
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    return [
        java,
        f"-Xmx{settings.kafka_heap}",
        f"-Xms{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={settings.logs_dir}",
        f"-Dlog4j2.configurationFile={settings.deploy_dir / 'kafka' / 'log4j2.yaml'}",
        "-cp",
        f"{settings.kafka_libs_dir}/*",
    ]


def format_storage(settings: Settings, properties: Path) -> None:
    """Format the KRaft log directory the first time only."""
    if (settings.kafka_data_dir / "meta.properties").exists():
        return
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    # "--cluster-id=" form: a random id may start with "-", which argparse would misread
    cmd = [
        *_java(settings), "kafka.tools.StorageTool", "format", f"--cluster-id={cid}",
        f"--config={properties}",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(
            f"formatting the Kafka log directory failed: {result.stdout}{result.stderr}".strip(),
            hint=f"remove {settings.kafka_data_dir} if it holds a broken format",
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
    return [*_java(settings), "kafka.Kafka", str(properties)]


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
