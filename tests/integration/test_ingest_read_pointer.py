"""The ingest service asked for a read (CONTRACT 10): a partner posts to the ingest
service and reads from the query service, so the ingest service answers every read it
does not serve with a problem naming the query service's URL for that same request."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from services.ingest.app import create_app
from tests.support.ingest import Ingest
from tests.support.problems import assert_problem

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/reports/v-123", 404),
        ("/v1/metrics/weekly?week=2016-W09&area=madaya", 404),
        ("/v1/changes?after=0.12&limit=5", 404),
        ("/v1/reports?kind=delivery", 405),  # POST /v1/reports is the ingest service's
        ("/dashboard", 404),
    ],
)
def test_a_read_names_the_query_service(ingest: Ingest, path: str, status: int) -> None:
    problem = assert_problem(ingest.get(path, "sarc"), status)
    query_url = ingest.settings.query_url
    assert problem["query_service"] == query_url
    assert problem["see"] == query_url + path
    assert query_url + path in problem["detail"]


def test_the_public_url_setting_is_the_one_named(ingest: Ingest) -> None:
    settings = ingest.settings.model_copy(update={"query_public_url": "https://q.example/"})
    client = TestClient(create_app(settings))  # not started: a 404 needs no broker
    problem = assert_problem(client.get("/v1/alerts?area=madaya"), 404)
    assert problem["see"] == "https://q.example/v1/alerts?area=madaya"


def test_other_methods_keep_a_plain_problem(ingest: Ingest) -> None:
    answer = httpx.delete(ingest.url + "/v1/reports/v-1", timeout=10)
    problem = assert_problem(answer, 404)  # a DELETE is not a read that lives elsewhere
    assert "query_service" not in problem
