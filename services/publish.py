"""`truce publish`: freeze a week's weekly report as its next edition through the query API
(POST /v1/editions, CONTRACT section 7), as a task force member's client would."""

from __future__ import annotations

from typing import Any

from core.errors import TruceError
from services.query_client import post


def publish_edition(query_url: str, key: str, week: str, timeout_s: float = 120) -> dict[str, Any]:
    """The 201 answer ``{"week", "edition", "published_at", "log_head", "sha256"}``."""
    response = post(
        query_url,
        "/v1/editions",
        timeout_s,
        json={"week": week},
        headers={"Authorization": f"Bearer {key}"},
    )
    if response.status_code != 201:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise TruceError(
            f"POST /v1/editions answered {response.status_code}: {detail}",
            hint="publishing needs a taskforce or admin key (--api-key or TRUCE_API_KEY)"
            if response.status_code in (401, 403)
            else "",
        )
    answer: dict[str, Any] = response.json()
    return answer
