"""The one settings model: every host, port and path comes from here (``TRUCE_`` env vars)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROMETHEUS_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's own switch of its multiprocess mode (read when it is imported):
`truce up` sets it to :attr:`Settings.ingest_metrics_dir` for several ingest processes."""


def _default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "truce"


def _default_deploy_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "deploy"


class Settings(BaseSettings):
    """Frozen runtime configuration; build it with :func:`load_settings`, never at import."""

    model_config = SettingsConfigDict(env_prefix="TRUCE_", frozen=True, extra="ignore")

    home: Path = Field(default=Path(".truce"), description="All local state lives here.")
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Downloaded artefacts (Kafka jars), shared between homes.",
    )
    bind_host: str = Field(default="127.0.0.1", description="Address every local listener binds.")

    kafka_version: str = Field(default="4.2.2", description="Apache Kafka broker version.")
    kafka_port: int = Field(default=9192, description="Broker (PLAINTEXT) port.")
    kafka_controller_port: int = Field(default=9193, description="KRaft controller port.")
    kafka_bootstrap: str = Field(
        default="", description="Bootstrap servers; empty means the local broker."
    )
    kafka_heap: str = Field(default="512m", description="Broker JVM heap (-Xmx/-Xms).")
    kafka_partitions: int = Field(default=4, description="Partitions of each Truce topic.")
    kafka_start_timeout_s: float = Field(default=60.0, description="Wait for the broker this long.")
    kafka_brokers: int = Field(
        default=1,
        ge=1,
        le=9,
        description="Brokers `truce up` runs: 1 is one combined broker+controller; more are "
        "that many brokers (broker n on TRUCE_KAFKA_PORT + n - 1) and one KRaft controller. "
        "With TRUCE_KAFKA_BOOTSTRAP, the size of that cluster (the replication defaults).",
    )
    kafka_replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Replicas of every topic Truce creates; empty means min(brokers, 3).",
    )
    kafka_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of every Truce topic (acks=all waits for this many); "
        "empty means min(replication factor, 2).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How every Kafka client connects."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism (SASL_ protocols only)."
    )
    kafka_sasl_username: str = Field(default="", description="SASL user name.")
    kafka_sasl_password: SecretStr = Field(default=SecretStr(""), description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="CA bundle (PEM) the brokers' certificates are checked against; "
        "empty means the system's.",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="Client certificate (PEM) for TLS client authentication."
    )
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Client key (PEM).")
    kafka_ssl_key_password: SecretStr = Field(
        default=SecretStr(""), description="Password of the client key; empty: unencrypted."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="Check that a broker's certificate names its host."
    )
    topic_prefix: str = Field(default="", description="Prefix of every topic name (tests).")

    clickhouse_dsn: str = Field(
        default="", description="ClickHouse DSN; empty means chdb:///$TRUCE_HOME/clickhouse."
    )

    ingest_port: int = Field(default=8610, description="Ingest API port.")
    ingest_workers: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Ingest processes `truce up` runs, all on TRUCE_INGEST_PORT (SO_REUSEPORT: "
        "the kernel spreads connections over them); they share report-id claims, rate-limit "
        "buckets and metrics through files under TRUCE_HOME/ingest.",
    )
    ingest_worker: int = Field(
        default=0, ge=0, description="Which ingest process this is (`truce up` sets it for each)."
    )
    ingest_probe_port: int = Field(
        default=8660,
        description="With several ingest processes, process n's own health/metrics port is "
        "this + n - 1 (probes must reach each one, not whichever the kernel picks).",
    )
    query_port: int = Field(default=8620, description="Query API / dashboard port.")
    query_public_url: str = Field(
        default="",
        description="The query service's URL as clients reach it (behind a proxy); the "
        "ingest service names it when asked for a read, alerts link to its dashboard. "
        "Empty: http://TRUCE_BIND_HOST:TRUCE_QUERY_PORT.",
    )
    alerter_port: int = Field(default=8630, description="Alerter health/metrics port.")
    streams_port: int = Field(
        default=8640,
        description="Stream worker health/metrics port (worker n of several: this + n - 1).",
    )
    streams_workers: int = Field(
        default=1,
        ge=1,
        description="Stream worker processes `truce up` runs; each takes its share of the "
        "partitions (more than TRUCE_KAFKA_PARTITIONS would idle).",
    )
    streams_worker: int = Field(
        default=0,
        ge=0,
        description="Which stream worker this process is (`truce up` sets it for each): "
        "it names the worker's own state directory.",
    )
    streams_session_timeout_s: float = Field(
        default=6.0,
        ge=6.0,
        le=300.0,
        description="How long a stream worker may miss heartbeats before the group "
        "coordinator gives its partitions to the others: the failover time after a worker "
        "is killed or frozen (the broker's group.min.session.timeout.ms is 6 s).",
    )

    max_body_bytes: int = Field(default=8 * 1024 * 1024, description="Largest request body.")
    rate_limit_per_s: float = Field(default=200.0, description="Requests per second per API key.")
    rate_limit_burst: int = Field(default=400, description="Burst of requests per API key.")
    query_rate_limit_per_s: float = Field(
        default=50.0, gt=0, description="Query API requests per second per API key."
    )
    query_rate_limit_burst: int = Field(
        default=200, ge=1, description="Burst of query API requests per API key."
    )
    sql_max_rows: int = Field(
        default=100_000,
        ge=5_000,
        description="Most rows one query of the SQL endpoint (/clickhouse, `truce sql`) may "
        "return; more is an error (ClickHouse's max_result_rows, result_overflow_mode=throw). "
        "At least 5000: clickhouse-connect reads system.settings (~1900 rows) on connect.",
    )
    sql_timeout_s: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="Longest one query of the SQL endpoint may run (max_execution_time).",
    )
    publish_timeout_s: float = Field(
        default=10.0, description="Kafka must acknowledge a request's reports within this."
    )

    keys_file: Path | None = Field(
        default=None, description="API key hashes; empty means $TRUCE_HOME/keys.json."
    )
    key_pepper: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC secret for key hashes; empty means one generated under TRUCE_HOME.",
    )

    log_head_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often the store signs and publishes a tree head of the tamper-evident "
        "log (only when new reports were stored since the last one).",
    )
    log_signing_key: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM, PKCS8, unencrypted) that signs tree heads; "
        "empty means $TRUCE_HOME/log/signing-key.pem, created 0600 on first use.",
    )
    log_publisher: bool = Field(
        default=True,
        description="Whether this store process signs and publishes tree heads. Exactly one "
        "should (the one holding the key); others only serve the heads they read.",
    )
    edition_schedule: str = Field(
        default="",
        pattern=r"^$|^(?i:mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):[0-5]\d$",
        description="When the store publishes last week's edition of the weekly report by "
        "itself, as 'DAY HH:MM' in UTC (e.g. 'MON 12:00'); empty: never. Only the store "
        "process that signs tree heads (log_publisher) runs it.",
    )

    candidate_window_minutes: int = Field(
        default=120,
        ge=1,
        le=7 * 24 * 60,
        description="Incident candidates: reports of one event occurred at most this many "
        "minutes after the group's earliest one.",
    )
    log_level: str = Field(default="INFO", description="Log level of every process.")
    rules_file: Path | None = Field(
        default=None, description="Spike-rule thresholds (YAML); empty means streams/rules.yaml."
    )
    deploy_dir: Path = Field(
        default_factory=_default_deploy_dir,
        description="The repo's deploy/ folder (Kafka pom, properties, configs).",
    )
    skip_processes: str = Field(
        default="",
        description="Comma-separated processes `truce up` leaves out (`truce rebuild` replays "
        "without ingest and alerter).",
    )
    ready_timeout_s: float = Field(default=120.0, description="`truce up` waits this long.")

    alerter_config: Path | None = Field(
        default=None, description="Alert routing (YAML); empty means deploy/alerter.yaml."
    )
    alerter_max_in_flight: int = Field(
        default=10_000, ge=1, description="Alert records held undelivered before consuming pauses."
    )
    cap_sender: str = Field(
        default="alerts@truce.invalid",
        pattern=r"^[^\s,<&]+$",
        description="The CAP <sender> of the alert feed (no spaces, commas, < or &).",
    )
    smtp_host: str = Field(default="", description="SMTP server for email receivers; empty: none.")
    smtp_port: int = Field(default=25, description="SMTP server port.")
    smtp_starttls: bool = Field(default=False, description="Upgrade SMTP with STARTTLS.")
    smtp_username: str = Field(default="", description="SMTP login; empty means no login.")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP password.")
    smtp_from: str = Field(
        default="truce-alerts@localhost", description="From address of alert emails."
    )
    smtp_timeout_s: float = Field(default=10.0, description="SMTP connect/send timeout.")

    @model_validator(mode="after")
    def _absolute_home(self) -> Settings:
        object.__setattr__(self, "home", self.home.expanduser().resolve())
        object.__setattr__(self, "cache_dir", self.cache_dir.expanduser().resolve())
        object.__setattr__(self, "deploy_dir", self.deploy_dir.expanduser().resolve())
        return self

    def as_env(self) -> dict[str, str]:
        """The ``TRUCE_`` environment that rebuilds these settings in a child process."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"TRUCE_{name.upper()}"] = str(value)
        return env

    @property
    def skipped_processes(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.skip_processes.split(",") if name.strip())

    @property
    def bootstrap_servers(self) -> str:
        nodes = range(1, self.kafka_brokers + 1)
        return self.kafka_bootstrap or ",".join(
            f"{self.bind_host}:{self.kafka_broker_port(n)}" for n in nodes
        )

    def kafka_broker_port(self, node: int) -> int:
        """The client port of local broker ``node`` (1 is the first)."""
        return self.kafka_port + node - 1

    @property
    def replication_factor(self) -> int:
        """Replicas of every Truce topic: as many as there are brokers, up to 3."""
        return self.kafka_replication_factor or min(self.kafka_brokers, 3)

    @property
    def min_insync_replicas(self) -> int:
        """Two copies before acks=all answers, unless there is only one replica."""
        return self.kafka_min_insync_replicas or min(self.replication_factor, 2)

    @property
    def clickhouse_url(self) -> str:
        return self.clickhouse_dsn or f"chdb://{self.home / 'clickhouse'}"

    @property
    def ingest_url(self) -> str:
        return f"http://{self.bind_host}:{self.ingest_port}"

    @property
    def query_url(self) -> str:
        return f"http://{self.bind_host}:{self.query_port}"

    @property
    def query_reach_url(self) -> str:
        """The query service (and dashboard) as people and clients reach it."""
        return self.query_public_url.rstrip("/") or self.query_url

    @property
    def alerter_url(self) -> str:
        return f"http://{self.bind_host}:{self.alerter_port}"

    @property
    def streams_url(self) -> str:
        return self.streams_worker_url(0)

    def streams_worker_port(self, worker: int) -> int:
        """The health/metrics port of stream worker ``worker`` (0 is the first)."""
        return self.streams_port + worker

    def ingest_worker_port(self, worker: int) -> int:
        """The port ingest process ``worker`` (0 is the first) alone listens on, for its
        probes: the shared port itself when there is one process."""
        return self.ingest_port if self.ingest_workers == 1 else self.ingest_probe_port + worker

    def ingest_worker_url(self, worker: int) -> str:
        return f"http://{self.bind_host}:{self.ingest_worker_port(worker)}"

    @property
    def ingest_shared_dir(self) -> Path:
        """What the ingest processes of this home share (claims, rate-limit buckets)."""
        return self.home / "ingest"

    @property
    def ingest_metrics_dir(self) -> Path:
        """prometheus-client's multiprocess directory of the ingest processes."""
        return self.ingest_shared_dir / "metrics"

    def streams_worker_url(self, worker: int) -> str:
        return f"http://{self.bind_host}:{self.streams_worker_port(worker)}"

    @property
    def alerter_config_path(self) -> Path:
        return self.alerter_config or self.deploy_dir / "alerter.yaml"

    @property
    def streams_dir(self) -> Path:
        return self.home / "streams"

    @property
    def streams_worker_dir(self) -> Path:
        """This worker's own RocksDB directory. Not shared: a frozen worker keeps its
        databases locked, and the worker taking over its partitions must not wait for it
        (it restores them from their changelogs instead)."""
        return self.streams_dir / f"worker-{self.streams_worker}"

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.home / "keys.json"

    @property
    def log_signing_key_path(self) -> Path:
        return self.log_signing_key or self.home / "log" / "signing-key.pem"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def failpoints_dir(self) -> Path:
        return self.run_dir / "failpoints"

    @property
    def kafka_data_dir(self) -> Path:
        return self.home / "kafka"

    @property
    def kafka_libs_dir(self) -> Path:
        return self.cache_dir / f"kafka-{self.kafka_version}" / "libs"


def load_settings(**overrides: object) -> Settings:
    """Read the environment now (not at import), optionally overriding fields (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
