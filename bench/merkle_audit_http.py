"""The audit with the server in its own process, as in production (issue 18): a process
loads ``--leaves`` synthetic records into embedded chDB, applies signed heads with the
store's log keeper and serves the real log routes with uvicorn; this process audits them
over HTTP with the auditor's own urllib transport (pages prefetched while it folds):
signature, root over every entry, recount of every weekly row.

    .venv/bin/python -m bench.merkle_audit_http [--leaves 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.common import save


def serve(leaves: int, port: int, home: str) -> None:
    """The server process: load, sign heads, serve (no auth: a bench)."""
    import uvicorn
    from fastapi import FastAPI

    from bench.merkle_bench import heads_over, load
    from core.http import install_problem_handlers
    from services.store.database import Database
    from services.store.log.keeper import LogKeeper
    from services.store.log.routes import router

    db = Database(f"chdb://{home}/clickhouse")
    db.migrate()
    ends, _ = load(db, leaves)
    keeper = LogKeeper(db=db, cluster="unused:0", heads_topic="h", reports_topic="r",
                       sink_group="g", signer=None, interval_s=60.0)  # fmt: skip
    heads_over(keeper, ends, 60_000, Path(home))
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)

    @app.get("/bench/key")
    def key() -> dict[str, Any]:
        assert keeper.signer is not None
        return keeper.signer.public().model_dump()

    @app.get("/bench/head")
    def head() -> dict[str, Any]:
        current = keeper.current_head()
        assert current is not None
        return current.public()

    app.state.store = SimpleNamespace(
        log=keeper, settings=SimpleNamespace(log_head_interval_s=60.0),
        auth_any=lambda request: None, auth_reader=lambda request: None,
    )  # fmt: skip
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leaves", type=int, default=200_000)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.leaves, int(args.serve[0]), args.serve[1])
        return
    from truce_audit import client, recount
    from truce_audit.audit import verify_log
    from truce_audit.heads import public_key

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="merkle-http-") as home:
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.merkle_audit_http", "--leaves", str(args.leaves),
             "--serve", str(port), home]
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/bench/head", timeout=2) as answer:
                        head = json.loads(answer.read())
                    break
                except OSError:
                    assert server.poll() is None, "the server exited"
                    time.sleep(1)
            with urllib.request.urlopen(f"{url}/bench/key", timeout=10) as answer:
                key = public_key(json.loads(answer.read()))
            fetch = client.http_fetch(url, "unused")
            started = time.perf_counter()
            fold = recount.Fold()
            verify_log(head, key, client.entries(fetch, int(head["tree_size"])), None, fold)
            count = recount.count(fold, {"isil", "nusra"})
            seconds = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(30)
    print(f"audit of {head['tree_size']:,} entries over HTTP (server in its own process): "
          f"{seconds:.1f} s ({len(count.compliance):,} compliance rows)")  # fmt: skip
    path = save(f"merkle-audit-http-{args.leaves}", {
        "leaves": args.leaves, "audit_s": round(seconds, 1),
        "per_million_s": round(seconds * 1_000_000 / args.leaves, 1),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    })  # fmt: skip
    print(f"saved {path}")


if __name__ == "__main__":
    main()
