"""The tamper-evident log (CONTRACT 8) on the real broker and ClickHouse engine: the store
sinks a generated log, signs heads, serves RFC 9162 proofs that verify (and fail for a
wrong leaf or size), re-derives the same heads after a rebuild's reset, and `truce audit`
passes on the real entries and fails on a rewritten, a deleted and a reordered one."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import Phase, find
from hypothesis import settings as hsettings
from typer.testing import CliRunner

from core.clickhouse import dsn_database, with_database
from core.kafka import admin_client, durable_producer, ensure_topics
from core.merkle import leaf_hash, verify_consistency, verify_inclusion
from core.settings import Settings
from schemas import TopicNames, group_names, topic_names
from services import cli
from services.rebuild import _delete_groups, _reset_clickhouse
from services.store.app import create_app
from services.store.database import Database
from services.store.state import StoreState
from tests.conftest import isolated_settings
from tests.support.ingest import Ingest, violation
from tests.support.pipeline import run
from tests.support.raw_log import DESIGNATED, raw_logs
from tests.support.services import running_module, service_env
from tests.support.store_seed import store_keys, wait_stored
from truce_audit import client as audit_client
from truce_audit.audit import check_consistency, verify_log
from truce_audit.cli import main as audit_main
from truce_audit.heads import AuditFailure, check_head, public_key

pytestmark = pytest.mark.integration

KINDS = {"violation", "delivery", "access_request", "designation", "verification"}


def _rich(log: list[dict[str, Any]]) -> bool:
    kinds = {r["report"]["kind"] for r in log}
    orgs = {r["org"] for r in log}
    return len(log) >= 40 and kinds == KINDS and "intruder" in orgs


LOG: list[dict[str, Any]] = find(
    raw_logs(),
    _rich,
    settings=hsettings(database=None, derandomize=True, max_examples=2000, phases=[Phase.generate]),
)
"""One generated log with every kind and a foreign revision: the first such draw of a
derandomized run (the same on every run; not shrunk, which takes minutes)."""


@dataclass
class Running:
    client: TestClient
    keys: dict[str, str]
    settings: Settings
    store: StoreState
    names: TopicNames

    def get(self, path: str, who: str = "monitor", **params: Any) -> Any:
        answer = self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {self.keys[who]}"}
        )
        return answer

    def fetch(self, who: str = "monitor") -> Callable[[str, dict[str, Any]], Any]:
        """The auditor's transport over the in-process app."""

        def fetch(path: str, query: dict[str, Any]) -> Any:
            answer = self.get(path, who, **query)
            if answer.status_code != 200:
                raise AuditFailure(f"GET {path} answered {answer.status_code}: {answer.text}")
            return answer.json()

        return fetch


def publish_log(
    bootstrap: str, names: TopicNames, log: list[dict[str, Any]], *, stream: bool = True
) -> list[bytes]:
    """The log's records to the reports topic (keyed by report id, as ingest does) and,
    with ``stream``, the stream's outputs for it to the events and metrics topics."""
    sinks = run(log if stream else [], DESIGNATED)
    producer = durable_producer(bootstrap)
    values = []
    try:
        for record in log:
            value = orjson.dumps(record)
            values.append(value)
            producer.send(names.reports, key=record["report"]["report_id"].encode(), value=value)
        for event in sinks.events.values():
            producer.send(names.events, key=str(event["report_id"]).encode(),
                          value=orjson.dumps(event))  # fmt: skip
        for i, metric in enumerate(sinks.metrics.values()):
            producer.send(names.metrics, key=f"m{i}".encode(), value=orjson.dumps(metric))
        producer.flush(timeout=15)
    finally:
        producer.close()
    return values


@contextmanager
def store_on(settings: Settings) -> Iterator[tuple[TestClient, StoreState]]:
    database = Database(settings.clickhouse_url)
    store = StoreState(settings, database=database)
    with TestClient(create_app(settings, store=store)) as client:
        wait_stored(settings.bootstrap_servers, settings.topic_prefix)
        yield client, store


@contextmanager
def fresh_store(
    bootstrap: str, clickhouse_root: str, home: Path, log: list[dict[str, Any]]
) -> Iterator[Running]:
    """A store on fresh topics and database after ``log`` (and the stream's outputs for
    it) were published and stored; heads only when asked (publish_now)."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    dsn = with_database(clickhouse_root, f"merkle_{uuid.uuid4().hex[:12]}")
    settings = isolated_settings(
        home, kafka_bootstrap=bootstrap, topic_prefix=prefix, clickhouse_dsn=dsn,
        log_head_interval_s=3600.0,
    )  # fmt: skip
    names = topic_names(prefix)
    ensure_topics(bootstrap, names.all(), partitions=2, compacted=[names.events, names.metrics])
    keys = store_keys(settings)
    publish_log(bootstrap, names, log)
    with store_on(settings) as (client, store):
        yield Running(client, keys, settings, store, names)


@pytest.fixture(scope="module")
def logged(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    home = tmp_path_factory.mktemp("merkle-home")
    with fresh_store(bootstrap, clickhouse_root, home, LOG) as api:
        assert api.store.log.publish_now() is not None
        try:
            yield api
        finally:
            api.store.db.client.command(
                f"DROP DATABASE IF EXISTS `{dsn_database(api.settings.clickhouse_url)}`"
            )


def _key(api: Running) -> bytes:
    return public_key(api.get("/v1/log/key").json())


def test_the_head_is_signed_and_covers_every_record(logged: Running) -> None:
    head = logged.get("/v1/log/head").json()
    assert set(head) == {"tree_size", "root_hash", "timestamp", "signature", "key_id"}
    assert head["tree_size"] == len(LOG)
    key = _key(logged)
    assert check_head(head, key).hex() == head["root_hash"]
    forged = {**head, "tree_size": head["tree_size"] - 1}
    with pytest.raises(AuditFailure, match="does not verify"):
        check_head(forged, key)
    # every role reads the head; the key file is private
    for who in ("sarc", "taskforce", "admin"):
        assert logged.get("/v1/log/head", who).json() == head
    assert logged.settings.log_signing_key_path.stat().st_mode & 0o777 == 0o600


def test_inclusion_proofs_verify_and_fail_for_a_wrong_leaf_or_size(logged: Running) -> None:
    head = logged.get("/v1/log/head").json()
    size, root = head["tree_size"], bytes.fromhex(head["root_hash"])
    page = logged.get("/v1/log/entries", start=0, end=size).json()
    entries = [base64.b64decode(e["leaf_input"]) for e in page["entries"]]
    assert sorted(entries) == sorted(orjson.dumps(r) for r in LOG)  # the exact bytes
    for index in (0, size // 2, size - 1):
        leaf = leaf_hash(entries[index])
        proof = logged.get("/v1/log/proof/inclusion", leaf_hash=leaf.hex(), tree_size=size).json()
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        assert proof["leaf_index"] == index
        assert verify_inclusion(leaf, index, size, path, root)
        assert not verify_inclusion(leaf_hash(b"forged"), index, size, path, root)
        if index < size - 1:  # the proof of another tree size does not lead to this root
            smaller = logged.get(
                "/v1/log/proof/inclusion", leaf_hash=leaf.hex(), tree_size=size - 1
            ).json()
            other = [bytes.fromhex(h) for h in smaller["audit_path"]]
            assert not verify_inclusion(leaf, index, size, other, root)
    unknown = logged.get("/v1/log/proof/inclusion", leaf_hash="ab" * 32, tree_size=size)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    too_big = logged.get("/v1/log/proof/inclusion", leaf_hash="ab" * 32, tree_size=size + 1)
    assert too_big.status_code == 422


def test_a_partner_gets_proofs_of_its_own_leaves_only(logged: Running) -> None:
    size = logged.get("/v1/log/head").json()["tree_size"]
    page = logged.get("/v1/log/entries", start=0, end=size).json()["entries"]
    by_org: dict[str, str] = {}
    for item in page:
        raw = base64.b64decode(item["leaf_input"])
        by_org.setdefault(json.loads(raw)["org"], leaf_hash(raw).hex())
    own = logged.get("/v1/log/proof/inclusion", "sarc", leaf_hash=by_org["sarc"], tree_size=size)
    assert own.status_code == 200
    other = logged.get("/v1/log/proof/inclusion", "sarc", leaf_hash=by_org["wfp"], tree_size=size)
    assert other.status_code == 404
    assert logged.get("/v1/log/entries", "sarc", start=0, end=1).status_code == 403
    # the partner-side check of a receipt, through the auditor
    assert audit_main(["receipt", by_org["sarc"]], fetch=logged.fetch("sarc")) == 0
    assert audit_main(["receipt", by_org["wfp"]], fetch=logged.fetch("sarc")) == 1


def _weeks() -> list[str]:
    from truce_audit.recount import iso_week, utc

    return sorted({iso_week(utc(r["report"]["occurred_at"])) for r in LOG})


def test_the_recount_equals_the_published_weekly_metrics(logged: Running) -> None:
    """With the stream's outputs for the same log stored, `truce audit --week` (no
    edition) recounts every weekly row the store publishes."""
    before = logged.get("/v1/log/head").json()
    for week in _weeks():
        assert audit_main(["--week", week], fetch=logged.fetch()) == 0, week
    assert logged.get("/v1/log/head").json() == before


def _with_edition(api: Running, week: str) -> Callable[[str, dict[str, Any]], Any]:
    """Until the editions branch lands: edition 1 of ``week`` is the current report pinned
    to the current head, as POST /v1/editions will freeze it."""
    inner = api.fetch()

    def fetch(path: str, query: dict[str, Any]) -> Any:
        if path == f"/v1/weekly-report/{week}" and query.get("edition") == 1:
            report = inner(path, {"format": "json"})
            return {**report, "log_head": inner("/v1/log/head", {})}
        return inner(path, query)

    return fetch


def test_audit_of_an_edition_recounts_its_figures(logged: Running, tmp_path: Path) -> None:
    for week in _weeks():
        assert (
            audit_main(["--week", week, "--edition", "1"], fetch=_with_edition(logged, week)) == 0
        )


def _save(api: Running, tmp_path: Path, week: str) -> list[dict[str, Any]]:
    saved = tmp_path / "entries.jsonl"
    argv = ["--week", week, "--edition", "1", "--save-entries", str(saved)]
    assert audit_main(argv, fetch=_with_edition(api, week)) == 0
    return [json.loads(line) for line in saved.read_text().splitlines()]


def _rewrite(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for i, item in enumerate(entries):
        record = json.loads(base64.b64decode(item["leaf_input"]))
        if record["report"]["kind"] == "violation":
            record["report"]["killed"] = record["report"].get("killed", 0) + 10
            forged = base64.b64encode(json.dumps(record).encode()).decode()
            return [*entries[:i], {**item, "leaf_input": forged}, *entries[i + 1 :]]
    raise AssertionError("no violation in the log")


def _delete(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept = entries[:3] + entries[4:]
    return [{**item, "index": i} for i, item in enumerate(kept)]


def _reorder(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    swapped = [entries[1], entries[0], *entries[2:]]
    return [{**item, "index": i} for i, item in enumerate(swapped)]


@pytest.mark.parametrize("tamper", [_rewrite, _delete, _reorder])
def test_audit_detects_a_tampered_copy_of_the_entries(
    logged: Running,
    tmp_path: Path,
    tamper: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    week = _weeks()[0]
    entries = _save(logged, tmp_path, week)
    copy = tmp_path / "tampered.jsonl"
    copy.write_text("".join(json.dumps(e) + "\n" for e in tamper(entries)))
    argv = ["--week", week, "--edition", "1", "--entries", str(copy)]
    capsys.readouterr()
    assert audit_main(argv, fetch=_with_edition(logged, week)) == 1
    err = capsys.readouterr().err
    assert err.startswith("audit failed:")
    assert "entries" in err


def test_a_figure_that_differs_from_the_log_fails_the_audit(logged: Running) -> None:
    week = _weeks()[0]
    inner = _with_edition(logged, week)

    def doctored(path: str, query: dict[str, Any]) -> Any:
        answer = inner(path, query)
        if query.get("edition") == 1:
            answer["access"]["cumulative"]["submitted"] += 1
        return answer

    assert audit_main(["--week", week, "--edition", "1"], fetch=doctored) == 1


def test_consistency_between_heads_and_the_same_heads_after_a_rebuild(
    bootstrap: str, clickhouse_root: str, tmp_path: Path
) -> None:
    """Two heads, an RFC 9162 consistency proof between them; then a rebuild's reset drops
    every ClickHouse table and the sink's offsets (never the reports or heads topics), and
    a new store re-derives and checks the very same heads and tree."""
    with fresh_store(bootstrap, clickhouse_root, tmp_path, LOG[:20]) as api:
        first = api.store.log.publish_now()
        assert first is not None
        assert first.tree_size == 20
        publish_log(bootstrap, api.names, LOG[20:], stream=False)
        wait_stored(bootstrap, api.settings.topic_prefix)
        second = api.store.log.publish_now()
        assert second is not None
        assert second.tree_size == len(LOG)
        assert api.store.log.publish_now() == second  # nothing new: the same head
        proof = api.get("/v1/log/proof/consistency", first=20, second=len(LOG)).json()
        path = [bytes.fromhex(h) for h in proof["consistency_path"]]
        r1, r2 = bytes.fromhex(first.root_hash), bytes.fromhex(second.root_hash)
        assert verify_consistency(20, len(LOG), r1, r2, path)
        assert not verify_consistency(20, len(LOG), r2, r1, path)
        assert not verify_consistency(19, len(LOG), r1, r2, path)
        assert api.get("/v1/log/proof/consistency", first=3, second=2).status_code == 422
        # the auditor checks the earlier head is a prefix (entries and the proof)
        key = _key(api)
        entries = list(audit_client.entries(api.fetch(), second.tree_size))
        outcome = verify_log(second.public(), key, entries, first.public())
        assert "the earlier head is a prefix of this one" in outcome.checks
        check_consistency(api.fetch(), first.public(), second.public())
        forged = {**first.public(), "root_hash": second.root_hash}
        with pytest.raises(AuditFailure):
            verify_log(second.public(), key, entries, forged)
        with pytest.raises(AuditFailure, match="consistency proof"):
            check_consistency(api.fetch(), forged, second.public())
        heads = api.store.log.heads()
        sizes = [h.tree_size for h in heads]  # the empty tree first, unless we were quicker
        assert sizes in ([0, 20, len(LOG)], [20, len(LOG)])
        roots = [api.store.log.tree.root(h.tree_size) for h in heads]
        settings = api.settings
    _reset_clickhouse(settings)
    admin = admin_client(settings.bootstrap_servers, timeout_ms=30_000)
    try:
        _delete_groups(admin, [group_names(settings.topic_prefix).store_sink], 10.0)
    finally:
        admin.close()
    with store_on(settings) as (client, store):
        deadline = time.monotonic() + 60
        while store.log.current_head() != heads[-1]:
            assert time.monotonic() < deadline, "the heads were not re-derived"
            time.sleep(0.2)
        assert store.log.heads() == heads
        assert [store.log.tree.root(h.tree_size) for h in heads] == roots
        answer = client.get(
            "/v1/log/head", headers={"Authorization": f"Bearer {api.keys['monitor']}"}
        )
        assert answer.json() == heads[-1].public()
        assert store.log.skipped == 0
    Database(settings.clickhouse_url).client.command(
        f"DROP DATABASE IF EXISTS `{dsn_database(settings.clickhouse_url)}`"
    )


def test_truce_audit_over_http_against_the_store_process(bootstrap: str, tmp_path: Path) -> None:
    """The store as its own process publishes heads on its own schedule (every second
    here); `truce audit` (the typer verb, the auditor's urllib transport) passes for every
    week, and a partner's receipt verifies; a wrong key fails in one line with a hint.
    The store owns its own chDB under its home (one process per chDB data path)."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    config = isolated_settings(
        tmp_path / "home", kafka_bootstrap=bootstrap, topic_prefix=prefix,
        log_head_interval_s=1.0, query_rate_limit_per_s=10_000.0, query_rate_limit_burst=100_000,
    )  # fmt: skip
    names = topic_names(prefix)
    ensure_topics(bootstrap, names.all(), partitions=2, compacted=[names.events, names.metrics])
    keys = store_keys(config)
    values = publish_log(bootstrap, names, LOG)
    env = service_env(config)
    with running_module(
        "services.store", env, f"{config.query_url}/readyz", tmp_path / "store.log"
    ):
        headers = {"Authorization": f"Bearer {keys['monitor']}"}
        deadline = time.monotonic() + 60
        while httpx.get(f"{config.query_url}/v1/log/head", headers=headers).json().get(
            "tree_size"
        ) != len(LOG):
            assert time.monotonic() < deadline, "no head over the whole log"
            time.sleep(0.3)
        runner = CliRunner()
        base = ["audit", "--url", config.query_url]
        for week in _weeks():
            result = runner.invoke(cli.app, [*base, "--api-key", keys["monitor"], "--week", week],
                                   env=env)  # fmt: skip
            assert result.exit_code == 0, result.output
            assert "audit passed" in result.output
        sarc = next(v for v in values if json.loads(v)["org"] == "sarc")
        receipt = [*base, "--api-key", keys["sarc"], "receipt", leaf_hash(sarc).hex()]
        result = runner.invoke(cli.app, receipt, env=env)
        assert result.exit_code == 0, result.output
        other = tmp_path / "other-key.json"
        other.write_text(json.dumps(another_log_key()))
        argv = [*base, "--api-key", keys["monitor"], "--week", _weeks()[0], "--key", str(other)]
        result = runner.invoke(cli.app, argv, env=env)
        assert result.exit_code == 1
        assert "audit failed: the head was signed by key" in result.output
        assert "hint:" in result.output


def another_log_key() -> dict[str, Any]:
    """A well-formed log key that did not sign the heads."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.store.log.signer import HeadSigner

    return HeadSigner(Ed25519PrivateKey.generate()).public().model_dump()


def test_an_ingest_receipt_is_proved_in_the_tree(ingest: Ingest, clickhouse_root: str) -> None:
    """The receipt in ingest's 202 names the leaf the store puts in its tree: the same
    leaf hash at the same partition and offset, with an inclusion proof to a signed root."""
    reports = [violation(), violation(area="daraya")]
    answer = ingest.post("/v1/reports/batch", "sarc", json={"reports": reports})
    assert answer.status_code == 202, answer.text
    receipts = [r["receipt"] for r in answer.json()["results"]]
    dsn = with_database(clickhouse_root, f"merkle_{uuid.uuid4().hex[:12]}")
    settings = ingest.settings.model_copy(
        update={"clickhouse_dsn": dsn, "log_head_interval_s": 3600.0}
    )
    try:
        with store_on(settings) as (client, store):
            head = store.log.publish_now()
            assert head is not None
            api = Running(client, ingest.keys, settings, store, topic_names(settings.topic_prefix))
            size = head.tree_size
            entries = api.get("/v1/log/entries", start=0, end=size).json()["entries"]
            placed = {(e["partition"], e["offset"]): e["leaf_input"] for e in entries}
            for receipt in receipts:
                value = base64.b64decode(placed[(receipt["partition"], receipt["offset"])])
                assert leaf_hash(value).hex() == receipt["leaf_hash"]
                assert audit_main(["receipt", receipt["leaf_hash"]], fetch=api.fetch("sarc")) == 0
                assert audit_main(["receipt", receipt["leaf_hash"]], fetch=api.fetch("wfp")) == 1
    finally:
        database = Database(dsn)
        database.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(dsn)}`")
        database.close()
