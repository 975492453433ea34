"""The CLI verbs' one way to call the query service: a POST whose failure to connect is
one clear error with what to do about it."""

from __future__ import annotations

from typing import Any

import httpx

from core.errors import TruceError


def post(query_url: str, path: str, timeout_s: float, **request: Any) -> httpx.Response:
    try:
        return httpx.post(f"{query_url}{path}", timeout=timeout_s, **request)
    except httpx.HTTPError as exc:
        raise TruceError(
            f"the query service at {query_url} did not answer: {exc}",
            hint="`truce status` shows whether the stack runs; `truce up` starts it",
        ) from exc
