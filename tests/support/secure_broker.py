"""A real broker with SASL_SSL and SSL (client certificates) listeners for the security
tests: certificates made here with ``cryptography``, SCRAM users created by Kafka's own
StorageTool (``format --add-scram``), PLAIN users in the listener's JAAS config."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.kafka import cluster_answers
from core.settings import Settings
from services.runtime import broker

KEYSTORE_PASSWORD = "keystore-secret"
USERS = {  # user -> (mechanism, password)
    "truce": ("SCRAM-SHA-512", "scram-512-secret"),
    "truce256": ("SCRAM-SHA-256", "scram-256-secret"),
}
PLAIN_USER = ("plainuser", "plain-secret")
CLIENT_KEY_PASSWORD = "client-key-secret"


@dataclass(frozen=True)
class SecureBroker:
    host: str
    plaintext_port: int
    sasl_ssl_port: int
    ssl_port: int
    ca: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA the broker's certificate is not signed by

    @property
    def sasl_ssl(self) -> str:
        return f"{self.host}:{self.sasl_ssl_port}"

    @property
    def ssl(self) -> str:
        return f"{self.host}:{self.ssl_port}"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: rsa.RSAPrivateKey, ca: x509.Certificate, common: str, host: str, usage: object
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)  # type: ignore[list-item]
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_certificates(directory: Path, host: str) -> dict[str, Path]:
    """A CA, the broker's PKCS12 keystore, a client certificate with an encrypted key, and
    an unrelated CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _ca("truce-test-ca")
    broker_key, broker_cert = _leaf(ca_key, ca, "kafka", host, ExtendedKeyUsageOID.SERVER_AUTH)
    client_key, client_cert = _leaf(ca_key, ca, "truce-client", host,
                                    ExtendedKeyUsageOID.CLIENT_AUTH)  # fmt: skip
    _, other = _ca("some-other-ca")
    paths = {
        "ca": directory / "ca.pem",
        "keystore": directory / "broker.p12",
        "client_cert": directory / "client.pem",
        "client_key": directory / "client.key",
        "other_ca": directory / "other-ca.pem",
    }
    paths["ca"].write_bytes(_pem(ca))
    paths["other_ca"].write_bytes(_pem(other))
    paths["client_cert"].write_bytes(_pem(client_cert))
    paths["client_key"].write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(CLIENT_KEY_PASSWORD.encode()),
        )
    )
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(KEYSTORE_PASSWORD.encode())
    )
    paths["keystore"].write_bytes(
        pkcs12.serialize_key_and_certificates(b"kafka", broker_key, broker_cert, [ca], encryption)
    )
    return paths


def _secure_properties(settings: Settings, sasl_port: int, ssl_port: int, certs: dict[str, Path]
                       ) -> Path:  # fmt: skip
    host, port, cport = settings.bind_host, settings.kafka_port, settings.kafka_controller_port
    base = broker.render_properties(settings)
    lines = [
        line
        for line in base.read_text().splitlines()
        if not line.startswith(("listeners=", "advertised.listeners=", "listener.security"))
    ]
    jaas = "org.apache.kafka.common.security"
    plain_user, plain_password = PLAIN_USER
    lines += [
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport},"
        f"SASL_SSL://{host}:{sasl_port},SSL://{host}:{ssl_port}",
        f"advertised.listeners=PLAINTEXT://{host}:{port},SASL_SSL://{host}:{sasl_port},"
        f"SSL://{host}:{ssl_port}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "SASL_SSL:SASL_SSL,SSL:SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}.scram.ScramLoginModule"
        " required;",
        f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={jaas}.scram.ScramLoginModule"
        " required;",
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={jaas}.plain.PlainLoginModule required"
        f' user_{plain_user}="{plain_password}";',
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.location={certs['keystore']}",
        f"ssl.keystore.password={KEYSTORE_PASSWORD}",
        f"ssl.key.password={KEYSTORE_PASSWORD}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={certs['ca']}",
        "listener.name.ssl.ssl.client.auth=required",
    ]
    target = settings.run_dir / "kafka-secure.properties"
    target.write_text("\n".join(lines) + "\n")
    return target


@contextmanager
def secure_broker(settings: Settings, sasl_port: int, ssl_port: int) -> Iterator[SecureBroker]:
    """Run the broker of ``settings`` with the extra secured listeners until the end."""
    certs = make_certificates(settings.home / "certs", settings.bind_host)
    broker.ensure_jars(settings)
    properties = _secure_properties(settings, sasl_port, ssl_port, certs)
    scram = [
        f"--add-scram={mechanism}=[name={user},password={password}]"
        for user, (mechanism, password) in USERS.items()
    ]
    broker.format_storage(settings, properties, extra=scram)
    log = broker.stdout_log(settings)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*broker.java_argv(settings), "kafka.Kafka", str(properties)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        broker.wait_ready(settings, process, settings.kafka_start_timeout_s)
        assert cluster_answers(settings.bootstrap_servers)
        yield SecureBroker(
            settings.bind_host, settings.kafka_port, sasl_port, ssl_port, certs["ca"],
            certs["client_cert"], certs["client_key"], certs["other_ca"],
        )  # fmt: skip
    finally:
        broker.stop(process.pid)
