"""Reading a JSON request body: ``415`` unless it says it is JSON, ``413`` past the size
limit (before reading it all), ``400`` when malformed or when an object repeats a key
(which value counts differs between parsers, so neither is guessed)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request

from core.http import Problem

JSON_MEDIA_TYPES = ("application/json",)
"""What a JSON endpoint accepts, also with parameters (``; charset=utf-8``) or as a
``+json`` suffix."""


def is_json_media_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in JSON_MEDIA_TYPES or (
        media.startswith("application/") and media.endswith("+json")
    )


def _no_body(request: Request) -> bool:
    headers = request.headers
    length = headers.get("content-length")
    return length == "0" or (length is None and "transfer-encoding" not in headers)


def check_json_content_type(request: Request) -> None:
    """``415`` for a body that is not declared JSON (a form, text, undeclared); ``400``
    for no body at all, which is a missing body rather than a wrong media type."""
    content_type = request.headers.get("content-type")
    if content_type is None and _no_body(request):
        raise Problem(
            400, "the request has no body; send JSON with 'Content-Type: application/json'"
        )
    if not is_json_media_type(content_type):
        raise Problem(
            415,
            "send the body as JSON with 'Content-Type: application/json'",
            headers={"Accept-Post": "application/json"},
        )


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(f"the key {key[:64]!r} appears twice in one object")
        found[key] = value
    return found


def parse_json(raw: bytes) -> Any:
    """The JSON value of ``raw``, strictly (orjson: UTF-8, no NaN, no lone surrogates) and
    with every object's keys unique; ``400`` otherwise."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"the request body is not valid JSON: {exc}") from None
    try:
        json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise Problem(400, f"the request body is ambiguous JSON: {exc}") from None
    return value


async def read_body(request: Request, limit: int, advice: str = "send smaller batches") -> bytes:
    """The whole body, or ``413`` as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the request body exceeds {limit} bytes; {advice}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the request body exceeds {limit} bytes; {advice}")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    check_json_content_type(request)
    return parse_json(await read_body(request, limit))
