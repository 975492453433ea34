"""`truce verify`: the stream's weekly metrics against a SQL recount from the raw log (the
store's copy of every record of the reports topic, classified again without the stream),
through the running query service or, when none runs, ClickHouse directly."""

from __future__ import annotations

from typing import Any

import httpx

from core.errors import TruceError
from core.keys import KeyStore, Role, write_private
from core.settings import Settings

OPERATOR_KEY_NAME = "operator-cli"


def operator_key(settings: Settings) -> str:
    """An admin key for local CLI verbs, created once and kept under TRUCE_HOME (0600)."""
    path = settings.run_dir / "operator.key"
    if path.exists():
        return path.read_text().strip()
    secret = KeyStore(settings).create(OPERATOR_KEY_NAME, Role.ADMIN)
    write_private(path, secret + "\n")
    return secret


def _service_answers(settings: Settings) -> bool:
    try:
        return httpx.get(f"{settings.query_url}/readyz", timeout=3).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def reconcile(settings: Settings, week: str | None) -> dict[str, Any]:
    """``{"weeks", "ok", "differences", "misclassified", "misclassified_total"}`` as
    GET /v1/verify answers it."""
    if _service_answers(settings):
        params = {"week": week} if week else {}
        headers = {"Authorization": f"Bearer {operator_key(settings)}"}
        response = httpx.get(
            f"{settings.query_url}/v1/verify", params=params, headers=headers, timeout=120
        )
        if response.status_code != 200:
            detail = response.json().get("detail", response.text)
            raise TruceError(f"verification failed: {detail}", hint="check the week format")
        result: dict[str, Any] = response.json()
        return result
    from services.store import recompute
    from services.store.database import Database

    db = Database(settings.clickhouse_url)
    try:
        db.migrate()
        return recompute.verify(db, week or None)
    finally:
        db.close()
