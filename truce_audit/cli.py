"""``python -m truce_audit`` (and `truce audit`): exit 0 when everything checked holds, 1 on
any difference or failure, with one clear line and a hint."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from truce_audit import audit, client
from truce_audit.client import Fetch, http_fetch
from truce_audit.heads import AuditFailure, public_key

DEFAULT_URL = "http://127.0.0.1:8620"


def _common(default_url: str, suppress: bool) -> argparse.ArgumentParser:
    """The connection options, accepted before and after ``receipt``; the subcommand's
    copy has no defaults, or argparse would overwrite what was given before it."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=default(default_url), help=f"query service (default {default_url})"
    )
    common.add_argument(
        "--api-key", default=default(None),
        help="API key (default: $TRUCE_API_KEY, or the local operator's)",
    )  # fmt: skip
    common.add_argument(
        "--key", type=Path, default=default(None),
        help="the log's public key as saved from GET /v1/log/key (JSON); "
        "default: fetch it from the service (trust on first use)",
    )  # fmt: skip
    return common


def _parser(default_url: str) -> argparse.ArgumentParser:
    common = _common(default_url, suppress=False)
    parser = argparse.ArgumentParser(
        prog="truce audit", parents=[common],
        description="Verify the log behind a weekly report and recount its figures.",
    )  # fmt: skip
    parser.add_argument("--week", help="ISO week YYYY-Www")
    parser.add_argument("--edition", type=int, help="the edition to audit (CONTRACT 7)")
    parser.add_argument(
        "--since-head", type=Path, help="an earlier signed head (JSON) that must be a prefix"
    )
    parser.add_argument(
        "--entries", type=Path,
        help="audit a saved copy of the entries (JSON lines of {index, leaf_input}) instead "
        "of fetching them",
    )  # fmt: skip
    parser.add_argument(
        "--save-entries", type=Path, help="also write the fetched entries there (JSON lines)"
    )
    sub = parser.add_subparsers(dest="command")
    receipt = sub.add_parser(
        "receipt",
        parents=[_common(default_url, suppress=True)],
        help="prove a receipt's leaf is in the tree behind a head",
    )
    receipt.add_argument("leaf_hash", help="the receipt's leaf_hash (hex)")
    receipt.add_argument("--week", dest="receipt_week", help="with --edition: that edition's head")
    receipt.add_argument("--edition", dest="receipt_edition", type=int)
    return parser


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AuditFailure(f"cannot read {path}: {exc}") from None


def _saved_entries(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with path.open() as lines:
            for line in lines:
                if line.strip():
                    item = json.loads(line)
                    yield int(item["index"]), base64.b64decode(item["leaf_input"])
    except (OSError, ValueError, KeyError) as exc:
        raise AuditFailure(f"cannot read the entries in {path}: {exc}") from None


def _saving(entries: Iterable[tuple[int, bytes]], path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("w") as out:
        for index, entry in entries:
            out.write(json.dumps({"index": index, "leaf_input": base64.b64encode(entry).decode()}))
            out.write("\n")
            yield index, entry


def run(args: argparse.Namespace, fetch: Fetch) -> audit.Outcome:
    key = public_key(_json_file(args.key)) if args.key else None
    if args.command == "receipt":
        return audit.audit_receipt(
            fetch, args.leaf_hash, week=args.receipt_week, edition=args.receipt_edition, key=key
        )
    if not args.week:
        raise AuditFailure("name the week to audit", hint="truce audit --week 2016-W09 --edition 1")
    since = _json_file(args.since_head) if args.since_head else None
    entries_for: audit.EntriesFor | None = None
    if args.entries:
        saved: Path = args.entries
        entries_for = lambda _size: _saved_entries(saved)  # noqa: E731
    elif args.save_entries:
        target: Path = args.save_entries
        entries_for = lambda size: _saving(client.entries(fetch, size), target)  # noqa: E731
    if args.edition is None:
        return audit.audit_metrics(fetch, args.week, key=key, since=since, entries_for=entries_for)
    return audit.audit_edition(
        fetch, args.week, args.edition, key=key, since=since, entries_for=entries_for
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    default_url: str = DEFAULT_URL,
    default_api_key: str | None = None,
    fetch: Fetch | None = None,
) -> int:
    args = _parser(default_url).parse_args(argv)
    api_key = args.api_key or os.environ.get("TRUCE_API_KEY") or default_api_key or ""
    try:
        outcome = run(args, fetch or http_fetch(args.url, api_key))
    except AuditFailure as exc:
        print(f"audit failed: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    for check in outcome.checks:
        print(f"ok    {check}")
    for line in outcome.not_checked:
        print(f"skip  {line}")
    for line in outcome.differences:
        print(f"DIFF  {line}")
    if outcome.differences:
        print(f"audit failed: {len(outcome.differences)} figure(s) differ", file=sys.stderr)
        return 1
    print(f"audit passed: tree of {outcome.tree_size} leaves, root {outcome.root_hash}")
    return 0
