"""Thin HTTP handlers of the alerter: the CAP feed, silences, routing status, probes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.body import read_json
from core.errors import ConfigError
from core.http import Problem, validation_errors
from core.keys import ApiKey
from core.openapi import problems
from schemas import AlertLabel, Silence
from services.alerter.cap import ATOM_MEDIA_TYPE, CAP_MEDIA_TYPE, atom_feed, cap_document
from services.alerter.config import Duration
from services.alerter.silences import (
    MAX_SILENCE,
    SilenceError,
    expired_now,
    matching,
    new_silence,
)
from services.alerter.state import AlerterState, monitor_key, operator_key, silencer_key, state
from services.alerter.wording import headline

router = APIRouter()
State = Annotated[AlerterState, Depends(state)]
Monitor = Annotated[ApiKey, Depends(monitor_key)]
Silencer = Annotated[ApiKey, Depends(silencer_key)]
Operator = Annotated[ApiKey, Depends(operator_key)]


class SilenceRequest(BaseModel):
    """``matchers`` (label → exact value) and either ``ends_at`` or a ``duration``."""

    model_config = ConfigDict(extra="forbid")

    matchers: dict[AlertLabel, str] = Field(min_length=1)
    ends_at: datetime | None = None
    duration: Duration | None = None
    comment: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceRequest:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError("give exactly one of ends_at or duration")
        if self.duration is not None and not timedelta(0) < self.duration <= MAX_SILENCE:
            raise ValueError(f"duration must be positive and at most {MAX_SILENCE.days} days")
        if self.ends_at is not None and self.ends_at.tzinfo is None:
            raise ValueError("ends_at needs a UTC offset")
        return self

    def end(self) -> datetime:
        if self.ends_at is not None:
            return self.ends_at
        return datetime.now(UTC) + (self.duration or timedelta(0))


class MatchedAlert(BaseModel):
    fingerprint: str
    headline: str
    severity: str


class SilenceView(Silence):
    """A silence and whether it is ``active``, ``pending`` or ``expired`` now, with the
    firing alerts it mutes (when it is created)."""

    status: str
    mutes: list[MatchedAlert] = []


class ReceiverView(BaseModel):
    name: str
    kind: str


class RoutingView(BaseModel):
    path: str
    error: str | None
    receivers: list[ReceiverView]
    routes: list[dict[str, Any]]


class Reloaded(BaseModel):
    receivers: int
    routes: int


def _silence_view(silence: Silence, now: datetime) -> dict[str, Any]:
    status = (
        "active" if silence.active(now) else "pending" if now < silence.starts_at else "expired"
    )
    return {**silence.model_dump(mode="json"), "status": status}


@router.get(
    "/v1/alerts/cap",
    summary="Alerts as CAP 1.2 documents in an Atom feed",
    response_class=Response,
    responses={
        200: {"content": {ATOM_MEDIA_TYPE: {"schema": {"type": "string"}}}},
        **problems(401, 403, 422),
    },
)
def cap_feed(
    st: State, _key: Monitor, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> Response:
    base = str(request.base_url).rstrip("/")
    messages = st.history.messages()[:limit]
    body = atom_feed(messages, st.settings.cap_sender, base, st.settings.query_reach_url)
    return Response(body, media_type=ATOM_MEDIA_TYPE)


@router.get(
    "/v1/alerts/cap/{identifier}",
    summary="One CAP 1.2 document",
    response_class=Response,
    responses={
        200: {"content": {CAP_MEDIA_TYPE: {"schema": {"type": "string"}}}},
        **problems(401, 403, 404),
    },
)
def cap_one(st: State, _key: Monitor, identifier: str) -> Response:
    message = st.history.message(identifier)
    if message is None:
        raise Problem(404, f"no CAP message {identifier!r}")
    document = cap_document(message, st.settings.cap_sender, st.settings.query_reach_url)
    return Response(document, media_type=CAP_MEDIA_TYPE)


@router.get(
    "/v1/silences",
    summary="Silences, newest first",
    response_model=list[SilenceView],
    responses=problems(401, 403),
)
def silences(st: State, _key: Monitor) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [_silence_view(s, now) for s in st.silences.all()]


SILENCE_BODY_BYTES = 64 * 1024
"""A silence is a few matchers and a comment (at most 2,000 characters)."""


@router.post(
    "/v1/silences",
    status_code=201,
    summary="Mute matching alerts until a time",
    response_model=SilenceView,
    responses=problems(400, 401, 403, 413, 415, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SilenceRequest.model_json_schema()}},
        }
    },
)
async def create_silence(
    st: State,
    key: Silencer,
    request: Request,
    dry_run: Annotated[bool, Query(description="Preview what it mutes; store nothing.")] = False,
) -> dict[str, Any]:
    raw = await read_json(request, SILENCE_BODY_BYTES)  # 415, 413, 400 (repeated keys)
    try:
        body = SilenceRequest.model_validate(raw)
    except ValidationError as exc:
        raise Problem(
            422,
            "the silence is invalid",
            errors=validation_errors(exc.errors(include_url=False)),
        ) from None
    try:
        silence = new_silence(
            {str(k): v for k, v in body.matchers.items()},
            body.end(),
            f"key:{key.name}",
            body.comment,
        )
    except SilenceError as exc:
        raise Problem(422, str(exc), hint=exc.hint) from exc
    if not dry_run:
        await _publish(st, silence)
    muted = matching(silence, st.history.current())
    return {
        **_silence_view(silence, datetime.now(UTC)),
        "mutes": [
            {"fingerprint": a.fingerprint, "headline": headline(a), "severity": a.severity}
            for a in muted
        ],
    }


@router.delete(
    "/v1/silences/{silence_id}",
    summary="Expire a silence now",
    response_model=SilenceView,
    responses=problems(401, 403, 404, 503),
)
async def expire_silence(st: State, _key: Silencer, silence_id: str) -> dict[str, Any]:
    """``silence_id`` may be a unique prefix of the id."""
    try:
        found = st.silences.find(silence_id)
    except SilenceError as exc:
        raise Problem(404, str(exc), hint=exc.hint) from exc
    expired = expired_now(found)
    await _publish(st, expired)
    return _silence_view(expired, datetime.now(UTC))


async def _publish(st: AlerterState, silence: Silence) -> None:
    try:
        await asyncio.to_thread(st.silence_log.publish, silence)
    except Exception as exc:
        raise Problem(
            503, f"the silence could not be stored: {exc}", headers={"Retry-After": "5"}
        ) from exc
    st.silences.apply(silence)


@router.get(
    "/v1/alerter/config",
    summary="The routing in force and the last reload error",
    response_model=RoutingView,
    responses=problems(401, 403),
)
def routing(st: State, _key: Operator) -> dict[str, Any]:
    config = st.config.current(time.monotonic())
    return {
        "path": str(st.config.path),
        "error": st.config.error,
        "receivers": [{"name": r.name, "kind": r.kind} for r in config.receivers],
        "routes": [r.model_dump(mode="json", by_alias=True) for r in config.routes],
    }


@router.post(
    "/v1/alerter/reload",
    summary="Re-read the routing file now",
    response_model=Reloaded,
    responses=problems(401, 403, 422),
)
def reload(st: State, _key: Operator) -> dict[str, Any]:
    try:
        config = st.config.reload()
    except ConfigError as exc:
        raise Problem(422, str(exc)) from exc
    return {"receivers": len(config.receivers), "routes": len(config.routes)}
