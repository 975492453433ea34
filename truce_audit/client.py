"""The few HTTP reads an audit makes (urllib; any transport with the same shape works)."""

from __future__ import annotations

import base64
import json
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from truce_audit.heads import AuditFailure

Fetch = Callable[[str, dict[str, Any]], Any]
"""``fetch(path, query) -> parsed JSON``; raises :class:`AuditFailure` on an error answer."""


def http_fetch(url: str, api_key: str, timeout_s: float = 60.0) -> Fetch:
    base = url.rstrip("/")

    def fetch(path: str, query: dict[str, Any]) -> Any:
        target = f"{base}{path}"
        if query:
            target += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(  # noqa: S310 - the auditor's chosen URL
            target, headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            raise AuditFailure(
                f"GET {path} answered {exc.code}: {detail}",
                hint="check --url and that the key's role may read the log (monitor, taskforce)",
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise AuditFailure(f"cannot reach {base}: {exc}", hint="check --url") from None

    return fetch


def entries(fetch: Fetch, tree_size: int) -> Iterator[tuple[int, bytes]]:
    """Every entry ``[0, tree_size)`` as (index, bytes), page by page; the next page is
    fetched in a thread while the caller works on this one."""
    pages: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch_all() -> None:
        start = 0
        try:
            while start < tree_size and not stop.is_set():
                page = fetch("/v1/log/entries", {"start": start, "end": tree_size})
                if not page["entries"]:
                    raise AuditFailure(f"the log answered no entries from {start}")
                pages.put(page)
                start = int(page["end"])
            pages.put(None)
        except BaseException as exc:  # handed to the reader, raised there
            pages.put(exc)

    worker = threading.Thread(target=fetch_all, name="audit-fetch", daemon=True)
    worker.start()
    try:
        while True:
            page = pages.get()
            if page is None:
                return
            if isinstance(page, BaseException):
                raise page
            for item in page["entries"]:
                yield int(item["index"]), base64.b64decode(item["leaf_input"])
    finally:
        stop.set()
        while worker.is_alive():  # let a blocked put() finish
            try:
                pages.get_nowait()
            except queue.Empty:
                worker.join(0.05)
