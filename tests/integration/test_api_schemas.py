"""Schemathesis over the OpenAPI documents of the ingest, query and alerter services
(issue 16): requests generated from each schema, sent with a valid key of every role to
the real services (real broker, real ClickHouse engine), must never get a 5xx, and every
answer must be one the document describes (status, media type, headers, body schema).

Derandomized with a fixed number of examples per operation, so CI runs the same cases
every time in about a minute."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.kafka import ensure_topics
from core.keys import KeyStore, Role
from core.settings import Settings
from schemas import topic_names
from tests.conftest import isolated_settings
from tests.support import store_seed as seed
from tests.support.ingest import Ingest
from tests.support.services import running_module, service_env

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 12
"""Generated cases per operation; each is sent once per role."""
CALLS: Counter[str] = Counter()
"""Requests sent and answers by status class, per service (printed at the end, -s)."""

hypothesis_settings = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _run(service: str, schema: Any, keys: dict[str, str]) -> None:
    """Every operation of ``schema``: its generated cases, each sent with every key.
    (Driven from a plain test: schemathesis' pytest plugin does not load under pytest 9.)"""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:

        @hypothesis_settings
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            _send(service, case, keys)

        CALLS[f"{service} operations"] += 1
        check()


def _send(service: str, case: Any, keys: dict[str, str]) -> None:
    for who, key in keys.items():
        response = case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
        CALLS[f"{service} requests"] += 1
        CALLS[f"{service} {response.status_code // 100}xx"] += 1
        assert response.status_code < 500, (who, response.status_code)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"\nschemathesis: {dict(sorted(CALLS.items()))}")


# -- ingest: the session's ingest process --------------------------------------------------
@pytest.fixture(scope="module")
def ingest_schema(ingest: Ingest) -> Any:
    return schemathesis.openapi.from_url(f"{ingest.url}/openapi.json")


def test_ingest_api_conforms(ingest_schema: Any, ingest: Ingest) -> None:
    roles = ("sarc", "monitor", "taskforce", "admin")
    _run("ingest", ingest_schema, {who: ingest.keys[who] for who in roles})


# -- query and alerter: the real processes on the session broker --------------------------
@pytest.fixture(scope="module")
def store(broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("schemathesis-store")
    prefix = f"t{uuid.uuid4().hex[:8]}."
    bootstrap = broker_settings.bootstrap_servers
    config = isolated_settings(
        home,
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        query_rate_limit_per_s=10_000.0,
        query_rate_limit_burst=100_000,
    )
    names = topic_names(prefix)
    ensure_topics(bootstrap, names.all(), partitions=2, compacted=[names.events, names.metrics])
    seed.publish_records(
        bootstrap, names, canonical=seed.CANONICAL, snapshots=seed.SNAPSHOTS, alerts=seed.ALERTS
    )
    keys = seed.store_keys(config)
    with running_module(
        "services.store", service_env(config), f"{config.query_url}/readyz", home / "store.log"
    ):
        yield config.query_url, keys


def test_query_api_conforms(store: Any) -> None:
    url, keys = store
    roles = ("sarc", "monitor", "taskforce", "admin")
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    _run("query", schema, {who: keys[who] for who in roles})


@pytest.fixture(scope="module")
def alerter(broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("schemathesis-alerter")
    config = isolated_settings(
        home,
        kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
    )
    store = KeyStore(config)
    keys = {
        "partner": store.create("p", Role.PARTNER, "sarc"),
        "monitor": store.create("m", Role.MONITOR),
        "taskforce": store.create("t", Role.TASKFORCE),
        "admin": store.create("a", Role.ADMIN),
    }
    with running_module(
        "services.alerter", service_env(config), f"{config.alerter_url}/readyz", home / "a.log"
    ):
        yield config.alerter_url, keys


def test_alerter_api_conforms(alerter: Any) -> None:
    url, keys = alerter
    _run("alerter", schemathesis.openapi.from_url(f"{url}/openapi.json"), keys)


# -- the documents themselves --------------------------------------------------------------
def _documents(ingest: Ingest, store: Any, alerter: Any) -> dict[str, Any]:
    urls = {"ingest": ingest.url, "query": store[0], "alerter": alerter[0]}
    return {name: httpx.get(f"{url}/openapi.json").json() for name, url in urls.items()}


def test_every_operation_documents_auth_and_its_problems(
    ingest: Ingest, store: Any, alerter: Any
) -> None:
    for name, doc in _documents(ingest, store, alerter).items():
        schemes = doc["components"]["securitySchemes"]
        assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
        for path, operations in doc["paths"].items():
            for method, op in operations.items():
                where = f"{name} {method.upper()} {path}"
                assert op["security"] == [{"bearer": []}], where
                errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
                assert {"401"} <= set(errors), where
                for status, response in errors.items():
                    assert list(response["content"]) == ["application/problem+json"], where
                    ref = response["content"]["application/problem+json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Problem", (where, status)
                if method == "get":
                    ok = op["responses"]["200"]["content"]
                    assert any("schema" in media and media["schema"] for media in ok.values()), (
                        where
                    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_are_served_from_the_repo(ingest: Ingest, store: Any, page: str) -> None:
    for base in (ingest.url, store[0]):
        html = httpx.get(base + page).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, html
        assert all(a.startswith(("/docs/static/", "data:")) for a in assets), assets
        for asset in assets:
            if asset.startswith("/"):
                response = httpx.get(base + asset)
                assert response.status_code == 200, asset
                assert len(response.content) > 10_000, asset
