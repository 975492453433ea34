"""The alerter's silences API on hostile input (issue 16), in-process on the real broker:
a 422 problem that says what to fix, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.keys import KeyStore, Role
from core.settings import Settings
from services.alerter.app import create_app
from tests.conftest import isolated_settings
from tests.support.problems import assert_problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def alerter(
    broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    home = tmp_path_factory.mktemp("alerter-edges")
    settings = isolated_settings(
        home,
        kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
    )
    headers = {"Authorization": f"Bearer {KeyStore(settings).create('tf', Role.TASKFORCE)}"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, headers


@pytest.mark.parametrize(
    "change",
    [{"duration": "100000000h"}, {"duration": 1e300}, {"duration": "1e300s"},
     {"duration": 10**30}, {"duration": "400d"}, {"duration": -5}, {"duration": "0s"},
     {"ends_at": "9999-12-31T23:59:59Z"}, {"ends_at": "2999-01-01T00:00:00+00:00"}],
)  # fmt: skip
def test_a_silence_too_long_or_not_ending_is_422(
    alerter: tuple[TestClient, dict[str, str]], change: dict[str, Any]
) -> None:
    client, headers = alerter
    body = {"matchers": {"area": "daraya"}, **change}
    problem = assert_problem(client.post("/v1/silences", json=body, headers=headers), 422)
    assert problem["detail"]
    assert client.get("/v1/silences", headers=headers).json() == []  # nothing changed


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [(b'{"matchers": {"area": "daraya"}, "duration": "2h"}', "text/plain", 415),
     (b'{"matchers": {"area": "daraya"}, "duration": "2h"}', None, 415),
     (b'{"matchers": {"area": "daraya"}, "duration": "2h", "duration": "1h"}',
      "application/json", 400),
     (b'{"matchers": ', "application/json", 400)],
)  # fmt: skip
def test_a_silence_body_must_be_unambiguous_json(
    alerter: tuple[TestClient, dict[str, str]], raw: bytes, content_type: str | None, status: int
) -> None:
    client, headers = alerter
    sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
    assert_problem(client.post("/v1/silences", content=raw, headers=sent), status)
    assert client.get("/v1/silences", headers=headers).json() == []


def test_a_valid_silence_is_created(alerter: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = alerter
    body = {"matchers": {"area": "madaya"}, "duration": "2h"}
    response = client.post("/v1/silences", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "active"
