"""OpenAPI documents a client generator can use, and their viewers served from the repo.

Every operation lists the statuses it can answer; errors are RFC 9457 problems under
``application/problem+json``; an operation that needs a key says so with the bearer
scheme. Swagger UI and ReDoc are vendored under core/static/vendor (from npm's
swagger-ui-dist and redoc), so ``/docs`` and ``/redoc`` work offline and under a CSP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from core.http import PROBLEM_JSON, TITLES

VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
ASSETS = "/docs/static"
BEARER = "bearer"


class ProblemItem(BaseModel):
    """One offending input: for a batch, the report's ``index`` (null: the batch itself)
    and the ``status`` it alone would get."""

    model_config = ConfigDict(extra="allow")

    index: int | None = None
    status: int | None = None
    loc: list[str | int] = Field(default_factory=list)
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it.")
    errors: list[ProblemItem] | None = None


_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    429: {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}},
    503: {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}},
}
_WHEN = {
    400: "The body is not valid JSON, or an object repeats a key.",
    401: "No key, or an unknown or revoked one.",
    403: "The key's role may not do this.",
    404: "Nothing by that name is visible to this key.",
    409: "A revision was already received with other content.",
    413: "The body is over the size limit.",
    415: "The body is not declared as JSON.",
    422: "An input is invalid; ``errors`` names each.",
    429: "Too many requests for this key.",
    503: "A dependency is unavailable; retry after ``Retry-After``.",
}


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _WHEN.get(status, TITLES.get(status, "Error")),
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: each status it can answer with a problem."""
    return {status: _problem_response(status) for status in statuses}


AUTHENTICATED = (401, 429)
"""What every operation with a key can answer (the token is spent when the key is known)."""


def _document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `truce keys create`; its role decides what it may do.",
        }
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:  # FastAPI's own 422 is application/json; ours is a problem
                responses["422"] = _problem_response(422)
            if "401" in responses:
                operation["security"] = [{BEARER: []}]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """The app's OpenAPI document as described above, and /docs and /redoc from the repo."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=url,
            title=f"{app.title}: Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=url,
            title=f"{app.title}: ReDoc",
            redoc_js_url=f"{ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url="data:,",
            with_google_fonts=False,
        )

    app.mount(ASSETS, StaticFiles(directory=VENDOR), name="docs-static")
