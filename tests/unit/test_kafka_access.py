"""The TRUCE_KAFKA_ security settings become the same credentials for each client library."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from core.kafka_access import KafkaAccess, access_of, kafka_access
from core.settings import load_settings


def test_plaintext_is_the_default_and_a_bare_string_means_it(tmp_path: Path) -> None:
    access = kafka_access(load_settings(home=tmp_path, kafka_bootstrap="a:1,b:2"))
    assert access.kafka_python() == {"bootstrap_servers": ["a:1", "b:2"],
                                     "security_protocol": "PLAINTEXT",
                                     "reconnect_backoff_max_ms": 1_000}  # fmt: skip
    assert access.faust_broker() == ["kafka://a:1", "kafka://b:2"]
    assert access.faust_credentials() is None
    assert access_of("a:1") == KafkaAccess(bootstrap="a:1")


def test_sasl_plaintext_gives_every_library_the_same_user(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path, kafka_bootstrap="a:1", kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256", kafka_sasl_username="u",
        kafka_sasl_password="secret",
    )  # fmt: skip
    access = kafka_access(settings)
    assert "secret" not in repr(access)
    expected = {"sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "u",
                "sasl_plain_password": "secret", "security_protocol": "SASL_PLAINTEXT"}  # fmt: skip
    assert expected.items() <= access.kafka_python().items()
    assert expected.items() <= access.aiokafka().items()
    assert "ssl_context" not in access.aiokafka()
    credentials = access.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("u", "secret")
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    assert credentials.mechanism.value == "SCRAM-SHA-256"


def test_ssl_without_sasl_uses_a_context_and_no_user(tmp_path: Path) -> None:
    access = kafka_access(load_settings(
        home=tmp_path, kafka_bootstrap="a:1", kafka_security_protocol="SSL",
        kafka_ssl_check_hostname=False,
    ))  # fmt: skip
    assert "sasl_mechanism" not in access.kafka_python()
    assert access.kafka_python()["ssl_check_hostname"] is False
    context = access.aiokafka()["ssl_context"]
    assert context.check_hostname is False
    credentials = access.faust_credentials()
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"


def test_an_unknown_protocol_or_mechanism_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="security_protocol"):
        load_settings(home=tmp_path, kafka_security_protocol="TLS")
    with pytest.raises(ValueError, match="sasl_mechanism"):
        load_settings(home=tmp_path, kafka_sasl_mechanism="GSSAPI")
