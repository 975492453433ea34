"""Where the Kafka cluster is and how to authenticate to it, as keyword arguments for each
client library: the one place TLS and SASL settings become client configuration, so no
kafka-python, aiokafka or Faust client is built without them."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.settings import Settings

RECONNECT_BACKOFF_MAX_MS = 1_000
"""kafka-python waits up to 30 s between reconnects to a broker that went away (the Java
client, 1 s): after a broker restart ingest's log follower came back half a minute late,
and every resend in doubt waited for it (the soak: 52 s of 503s after a broker SIGKILL)."""


@dataclass(frozen=True)
class KafkaAccess:
    """A cluster's bootstrap servers and the credentials every client presents.

    A bare ``str`` where a :data:`Cluster` is expected means a PLAINTEXT cluster (tests and
    benchmarks on the local broker); the services always pass :func:`kafka_access`."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: SecretStr = field(default_factory=lambda: SecretStr(""))
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr = field(default_factory=lambda: SecretStr(""))
    ssl_check_hostname: bool = True

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def bootstrap_list(self) -> list[str]:
        return [host.strip() for host in self.bootstrap.split(",") if host.strip()]

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's producer, consumer and admin client."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_list,
            "security_protocol": self.security_protocol,
            "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        }
        if self.uses_ssl:
            config["ssl_check_hostname"] = self.ssl_check_hostname
            if self.ssl_cafile is not None:
                config["ssl_cafile"] = str(self.ssl_cafile)
            if self.ssl_certfile is not None:
                config["ssl_certfile"] = str(self.ssl_certfile)
            if self.ssl_keyfile is not None:
                config["ssl_keyfile"] = str(self.ssl_keyfile)
            if self.ssl_key_password.get_secret_value():
                config["ssl_password"] = self.ssl_key_password.get_secret_value()
        if self.uses_sasl:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context aiokafka and Faust take (None without TLS)."""
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile is not None else None
        )
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None:
            context.load_cert_chain(
                str(self.ssl_certfile),
                str(self.ssl_keyfile) if self.ssl_keyfile is not None else None,
                self.ssl_key_password.get_secret_value() or None,
            )
        return context

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_list,
            "security_protocol": self.security_protocol,
        }
        context = self.ssl_context()
        if context is not None:
            config["ssl_context"] = context
        if self.uses_sasl:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return config

    def faust_broker(self) -> list[str]:
        """Faust's ``broker`` setting: one ``kafka://`` URL per bootstrap server."""
        return [f"kafka://{host}" for host in self.bootstrap_list]

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials`` (None for PLAINTEXT). Faust is imported here, not
        at module import, so processes without it (ingest, store) need not load it."""
        import faust

        context = self.ssl_context()
        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value(),
                ssl_context=context,
                mechanism=self.sasl_mechanism,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None


Cluster = KafkaAccess | str
"""A cluster to connect to: its access, or a PLAINTEXT bootstrap string."""


def access_of(cluster: Cluster) -> KafkaAccess:
    return cluster if isinstance(cluster, KafkaAccess) else KafkaAccess(bootstrap=cluster)


def kafka_access(settings: Settings) -> KafkaAccess:
    """The cluster and credentials the ``TRUCE_KAFKA_…`` settings describe."""
    return KafkaAccess(
        bootstrap=settings.bootstrap_servers,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=settings.kafka_sasl_password,
        ssl_cafile=settings.kafka_ssl_cafile,
        ssl_certfile=settings.kafka_ssl_certfile,
        ssl_keyfile=settings.kafka_ssl_keyfile,
        ssl_key_password=settings.kafka_ssl_key_password,
        ssl_check_hostname=settings.kafka_ssl_check_hostname,
    )
