"""HTTP plumbing shared by our FastAPI services: RFC 9457 problems and key authentication."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    BrokerError,
    ClickHouseError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TruceError,
    Unavailable,
)
from core.keys import ApiKey, KeyStore, Role
from core.limits import Limiter, retry_after

log = structlog.get_logger("http")

PROBLEM_JSON = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(TruceError):
    """An HTTP-level refusal (401, 413, 415, 429, ...) raised by the HTTP plumbing itself;
    domain code raises the errors of core/errors.py, mapped in :data:`HTTP_STATUS`."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


HTTP_STATUS: dict[type[TruceError], int] = {
    Forbidden: 403,
    Conflict: 409,
    InvalidInput: 422,
    NotFound: 404,
    Unavailable: 503,
    BrokerError: 503,
    ClickHouseError: 503,
}
"""The one place our domain errors become HTTP statuses (the most specific class wins);
any other error of ours is a 500 whose detail is not shown."""


def as_problem(exc: TruceError) -> Problem:
    """``exc`` as the problem the services answer with."""
    if isinstance(exc, Problem):
        return exc
    status = next((HTTP_STATUS[c] for c in type(exc).__mro__ if c in HTTP_STATUS), 500)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidInput) and exc.errors:
        extra["errors"] = exc.errors
    if exc.hint:
        extra["hint"] = exc.hint
    headers = {}
    if status == 503:
        wait = exc.retry_after_s if isinstance(exc, Unavailable) else 5
        headers["Retry-After"] = str(wait)
    if status == 500:
        return Problem(500, "internal error; the service log has the details")
    return Problem(status, exc.message, headers=headers, **extra)


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://truce.invalid/problems/{status}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def validation_errors(errors: Iterable[Any], index: int | None = None) -> list[dict[str, Any]]:
    """Pydantic errors as ``{"index", "loc", "msg"}`` items (CONTRACT section 2)."""
    items = []
    for error in errors:
        loc = [p for p in error.get("loc", ()) if p not in ("body",)]
        item: dict[str, Any] = {"loc": loc, "msg": error.get("msg", "invalid")}
        if index is not None:
            item = {"index": index, **item}
        items.append(item)
    return items


def install_problem_handlers(app: FastAPI) -> None:
    """Every error of the app, ours or the framework's, becomes problem+json."""

    @app.exception_handler(TruceError)
    async def _problem(_request: Request, exc: TruceError) -> JSONResponse:
        if not isinstance(exc, Problem) and as_problem(exc).status == 500:
            log.error("unexpected error", error=str(exc)[:300], exc_info=exc)
        problem = as_problem(exc)
        return problem_response(problem.status, problem.detail, problem.headers, **problem.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422, "the request parameters are invalid", errors=validation_errors(exc.errors())
        )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="truce"'},
        )
    return token.strip()


def basic_password(request: Request) -> str:
    """The password of HTTP Basic auth (RFC 7617), which is the API key for OpenRosa
    clients (CONTRACT 10); the user name is not checked."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        _, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        colon = password = ""
    if scheme.lower() != "basic" or not colon or not password.strip():
        raise Problem(
            401,
            "log in with your partner key as the password (any user name)",
            headers={"WWW-Authenticate": BASIC_CHALLENGE},
        )
    return password.strip()


BASIC_CHALLENGE = 'Basic realm="truce", charset="UTF-8"'


def require_roles(
    store: Callable[[], KeyStore],
    *roles: Role,
    limiter: Limiter | None = None,
    token: Callable[[Request], str] = bearer_token,
    challenge: str = 'Bearer realm="truce", error="invalid_token"',
) -> Callable[[Request], ApiKey]:
    """A FastAPI dependency: the caller's key, if its role is one of ``roles`` (admin always).

    With a ``limiter`` the key spends a token here, before the handler reads the body,
    so a key's refused requests count against it too (429 with ``Retry-After``).
    ``token`` reads the key from the request, ``challenge`` is the 401's WWW-Authenticate."""
    allowed = {*roles, Role.ADMIN}

    def dependency(request: Request) -> ApiKey:
        key = store().authenticate(token(request))
        if key is None:
            raise Problem(
                401, "unknown or revoked API key", headers={"WWW-Authenticate": challenge}
            )
        wait = limiter.acquire(key.name) if limiter is not None else 0.0
        if wait:
            raise Problem(
                429,
                "too many requests for this key; wait before retrying",
                headers={"Retry-After": retry_after(wait)},
            )
        if key.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Problem(403, f"role {key.role.value!r} may not do this (needs one of: {names})")
        request.state.api_key = key
        return key

    return dependency


def url_origin(url: str) -> str:
    """The origin (scheme://host[:port]) of a service URL, as browsers compare them: the
    dashboard (query service) and the ingest API are two origins."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
