"""One error root (core/errors.py) mapped to HTTP in one place (core/http.py): domain code
raises errors a user can act on, the services answer them as RFC 9457 problems."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.errors import (
    BrokerError,
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TruceError,
    Unavailable,
)
from core.http import Problem, install_problem_handlers


def _answer(error: TruceError) -> tuple[int, dict[str, str], dict[str, object]]:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/x")
    def fail() -> None:
        raise error

    response = TestClient(app).get("/x")
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.status_code, dict(response.headers), response.json()


@pytest.mark.parametrize(
    ("error", "status"),
    [(InvalidInput("bad week", errors=[{"loc": ["query", "week"], "msg": "m"}]), 422),
     (Forbidden("not yours", errors=[{"index": 0, "msg": "m"}]), 403),
     (Conflict("changed", errors=[{"index": 0, "msg": "m"}]), 409),
     (NotFound("no such report"), 404),
     (Problem(429, "slow down", headers={"Retry-After": "3"}), 429)],
)  # fmt: skip
def test_domain_errors_are_problems_with_their_status(error: TruceError, status: int) -> None:
    code, _, body = _answer(error)
    assert code == status
    assert body["status"] == status
    assert body["detail"] == error.message
    if isinstance(error, InvalidInput):
        assert body["errors"] == error.errors


def test_unavailable_dependencies_are_503_with_retry_after() -> None:
    for error in (Unavailable("kafka is down", retry_after_s=7), BrokerError("no broker")):
        code, headers, _ = _answer(error)
        assert code == 503
        assert int(headers["retry-after"]) >= 1


def test_a_hint_reaches_the_client() -> None:
    _, _, body = _answer(InvalidInput("week 0001-W01 holds no reports", hint="try 2016-W09"))
    assert body["hint"] == "try 2016-W09"


def test_other_errors_of_ours_are_500_without_their_detail() -> None:
    code, _, body = _answer(ConfigError("the pepper file /secret/path is unreadable"))
    assert code == 500
    assert "/secret/path" not in str(body)
