"""A real local HTTP server standing in for a webhook receiver: it records every request
and answers each path as the test says (a status, or holding the answer until released)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None = None
    at: float = field(default_factory=time.monotonic)
    """When the request arrived (monotonic clock)."""

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Behaviour:
    status: int = 200
    hold: threading.Event | None = None
    """While set to an unset event, requests wait for it before answering."""
    hold_first_only: bool = False


@dataclass
class Receiver:
    base_url: str
    calls: list[Call] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def on(self, path: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.path == path]


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    receiver = Receiver(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            call = Call(self.path, {k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(length))  # fmt: skip
            with receiver.lock:
                receiver.calls.append(call)
                held_before = sum(1 for c in receiver.calls if c.path == self.path) > 1
            behaviour = receiver.behaviours.get(self.path, Behaviour())
            if behaviour.hold is not None and not (behaviour.hold_first_only and held_before):
                behaviour.hold.wait(120)
            try:
                self.send_response(behaviour.status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                self.wfile.flush()
            except OSError:
                return  # the client is gone (killed): never answered
            call.answered = behaviour.status

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        for behaviour in receiver.behaviours.values():
            if behaviour.hold is not None:
                behaviour.hold.set()
        server.shutdown()
        server.server_close()
