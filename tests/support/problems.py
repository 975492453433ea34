"""Checks of RFC 9457 problem answers shared by the API tests."""

from __future__ import annotations

from typing import Any

from httpx import Response

PROBLEM = "application/problem+json"


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """The response is a problem+json document with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    assert body["title"]
    return body
