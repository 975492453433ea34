"""deploy/kubernetes: the core resources validate against the Kubernetes schemas (offline,
kubernetes-validate), every probe reaches /readyz on the container's port, every TRUCE_
variable is a real setting, and the Strimzi example keeps replication 3 / min ISR 2."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from core.settings import Settings
from services.alerter.config import load_config

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES = "1.30.0"
STRIMZI = "kafka.strimzi.io/v1beta2"


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


DOCS = _documents()


def _named(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _workloads() -> list[dict[str, Any]]:
    return [d for d in DOCS if d["kind"] in ("Deployment", "StatefulSet")]


@pytest.mark.parametrize(
    "doc", [d for d in DOCS if d["apiVersion"] != STRIMZI], ids=lambda d: d["kind"] + "/" +
    d["metadata"]["name"],
)  # fmt: skip
def test_core_resources_validate_against_the_kubernetes_schemas(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_four_services_are_there() -> None:
    kinds = Counter((d["kind"], d["metadata"]["name"]) for d in DOCS)
    for wanted in [
        ("Deployment", "truce-ingest"), ("HorizontalPodAutoscaler", "truce-ingest"),
        ("StatefulSet", "truce-streams"), ("Deployment", "truce-store"),
        ("Deployment", "truce-alerter"), ("Secret", "truce-clickhouse"),
    ]:  # fmt: skip
        assert kinds[wanted] == 1, wanted
    hpa = _named("HorizontalPodAutoscaler", "truce-ingest")["spec"]["scaleTargetRef"]
    assert (hpa["kind"], hpa["name"]) == ("Deployment", "truce-ingest")


def test_probes_resources_and_commands_of_every_container() -> None:
    for workload in _workloads():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            probe = container["readinessProbe"]["httpGet"]
            assert probe["path"] == "/readyz"
            assert probe["port"] in ports
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert {"requests", "limits"} <= set(container["resources"])
            python, flag, module = container["command"]
            assert (python, flag) == ("python", "-m")
            assert importlib.util.find_spec(module) is not None, module
            # the port the process listens on is the one the probe asks
            port_env = [e for e in container["env"] if e["name"].endswith("_PORT")]
            assert [int(e["value"]) for e in port_env] == list(ports.values())


def test_every_truce_variable_is_a_setting_and_gives_replication_three() -> None:
    config = _named("ConfigMap", "truce-config")["data"]
    for workload in _workloads():
        [container] = workload["spec"]["template"]["spec"]["containers"]
        env = {**config}
        for item in container["env"]:
            env[item["name"]] = item.get("value", "from-a-secret")
        fields = {f"TRUCE_{name.upper()}" for name in Settings.model_fields}
        assert set(env) <= fields, set(env) - fields
        values = {name.removeprefix("TRUCE_").lower(): value for name, value in env.items()}
        settings = Settings(**values)
        assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
        assert settings.kafka_security_protocol == "SASL_SSL"
        assert settings.bind_host == "0.0.0.0"


def test_stream_workers_keep_rocksdb_on_their_own_volume() -> None:
    streams = _named("StatefulSet", "truce-streams")["spec"]
    [claim] = streams["volumeClaimTemplates"]
    [container] = streams["template"]["spec"]["containers"]
    home = _named("ConfigMap", "truce-config")["data"]["TRUCE_HOME"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == home  # TRUCE_HOME/streams is the state


def test_the_store_reads_the_clickhouse_dsn_from_the_secret() -> None:
    [container] = _named("Deployment", "truce-store")["spec"]["template"]["spec"]["containers"]
    [dsn] = [e for e in container["env"] if e["name"] == "TRUCE_CLICKHOUSE_DSN"]
    assert dsn["valueFrom"]["secretKeyRef"] == {"name": "truce-clickhouse", "key": "dsn"}
    assert "dsn" in _named("Secret", "truce-clickhouse")["stringData"]


def test_the_alerter_routing_config_map_is_a_valid_routing_config(tmp_path: Path) -> None:
    routing = tmp_path / "alerter.yaml"
    routing.write_text(_named("ConfigMap", "truce-alerter")["data"]["alerter.yaml"])
    assert load_config(routing).receivers


def test_strimzi_cluster_and_topics_have_replication_three_min_isr_two() -> None:
    kafka = _named("Kafka", "truce-kafka")
    assert kafka["apiVersion"] == STRIMZI
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["unclean.leader.election.enable"] is False
    [listener] = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True
    assert listener["authentication"]["type"] == "scram-sha-512"
    bootstrap = _named("ConfigMap", "truce-config")["data"]["TRUCE_KAFKA_BOOTSTRAP"]
    assert bootstrap == f"truce-kafka-bootstrap:{listener['port']}"  # Strimzi's service name
    pool = _named("KafkaNodePool", "dual-role")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "truce-kafka"
    assert pool["spec"]["replicas"] == 3
    topics = [d for d in DOCS if d["kind"] == "KafkaTopic"]
    assert topics
    for topic in topics:
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    user = _named("KafkaUser", "truce")
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    assert _named("ConfigMap", "truce-config")["data"]["TRUCE_KAFKA_SASL_USERNAME"] == "truce"


def test_the_validation_catches_a_misspelt_field() -> None:
    ingest = _named("Deployment", "truce-ingest")
    misspelt = {**ingest, "spec": {**ingest["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES, strict=True)
