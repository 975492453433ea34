"""Sending one notification over one channel; every failure is a ``DeliveryFailed``
that says whether trying again can help."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
from email.message import EmailMessage
from typing import Any

import httpx
import orjson
import structlog

from core.settings import Settings
from services.alerter.config import EmailReceiver, LogReceiver, SlackReceiver, WebhookReceiver
from services.alerter.notification import Notification
from services.alerter.wording import area_name, description, rule_text

log = structlog.get_logger("alerter.channels")

AnyReceiver = WebhookReceiver | SlackReceiver | EmailReceiver | LogReceiver
SIGNATURE_HEADER = "X-Truce-Signature"


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, status: int = 0, retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the receiver's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _title(notification: Notification) -> str:
    first = notification.items[0].alert
    places = sorted({area_name(i.alert.area) for i in notification.items if i.alert.area})
    where = ", ".join(places) or "Syria"
    count = len(notification.items)
    more = f" (+{count - 1} more)" if count > 1 else ""
    return f"[Truce {notification.status.upper()}] {rule_text(first.rule).event} in {where}{more}"


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], limit_s: float
) -> int:
    try:
        response = await client.post(url, content=body, headers=headers, timeout=limit_s)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:500]) from exc
    if response.is_success:
        return response.status_code
    retryable = response.status_code >= 500 or response.status_code in (408, 409, 425, 429)
    raise DeliveryFailed(
        f"HTTP {response.status_code}: {response.text[:200]}",
        status=response.status_code,
        retryable=retryable,
    )


def slack_body(notification: Notification, base_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (notifications, fallback) and blocks."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _title(notification)[:150]}}
    ]
    for item in notification.items:
        alert = item.alert
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{item.msg_type}* · *{alert.severity}* · `{alert.fingerprint}`\n"
                    + description(alert, base_url)[:2800],
                },
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"idempotency key `{notification.key}`"}],
        }
    )
    return {"text": _title(notification), "blocks": blocks}


def _email(notification: Notification, receiver: EmailReceiver, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = _title(notification)
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(receiver.to)
    message["Message-ID"] = f"<{notification.key}@truce.alerts>"
    message["X-Truce-Idempotency-Key"] = notification.key
    base_url = settings.query_reach_url
    text = "\n\n".join(
        f"{item.msg_type}: {description(item.alert, base_url)}" for item in notification.items
    )
    message.set_content(text)
    return message


def _smtp_send(message: EmailMessage, settings: Settings, timeout: float) -> None:
    if not settings.smtp_host:
        raise DeliveryFailed("no SMTP server configured (TRUCE_SMTP_HOST)", retryable=False)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(
            f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:500],
            status=exc.smtp_code,
            retryable=exc.smtp_code < 500,
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"SMTP: {type(exc).__name__}: {exc}"[:500]) from exc


async def send(
    receiver: AnyReceiver,
    notification: Notification,
    attempt: int,
    client: httpx.AsyncClient,
    settings: Settings,
) -> int:
    """Deliver once; returns the HTTP status / SMTP code (0 for the log channel)."""
    timeout = receiver.timeout.total_seconds()
    if isinstance(receiver, WebhookReceiver):
        base_url = settings.query_reach_url
        body = orjson.dumps(
            notification.alertmanager_payload(base_url)
            if receiver.format == "alertmanager"
            else notification.payload(base_url)
        )
        headers = {
            **receiver.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": notification.key,
            "X-Truce-Delivery-Attempt": str(attempt),
            SIGNATURE_HEADER: signature(receiver.secret.get_secret_value(), body),
        }
        return await _post(client, str(receiver.url), body, headers, timeout)
    if isinstance(receiver, SlackReceiver):
        body = orjson.dumps(slack_body(notification, settings.query_reach_url))
        headers = {"Content-Type": "application/json"}
        return await _post(client, str(receiver.url), body, headers, timeout)
    if isinstance(receiver, EmailReceiver):
        message = _email(notification, receiver, settings)
        await asyncio.to_thread(_smtp_send, message, settings, timeout)
        return 250
    log.info(
        "alert notification",
        receiver=receiver.name,
        idempotency_key=notification.key,
        title=_title(notification),
        alerts=[
            {"msg_type": i.msg_type, "fingerprint": i.alert.fingerprint, "summary": i.alert.summary}
            for i in notification.items
        ],
    )
    return 0
