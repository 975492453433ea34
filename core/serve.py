"""Running one of our HTTP services: JSON logs, uvicorn on the configured address."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

import uvicorn
from fastapi import FastAPI

from core.home import private_umask
from core.logging import configure_logging
from core.settings import Settings, load_settings


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound, listening TCP socket. ``reuse_port``: other processes of this user may bind
    the same port and the kernel spreads new connections over them (SO_REUSEPORT); a
    process that binds without it is refused while they listen."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(
    service: str,
    create_app: Callable[[Settings], FastAPI],
    port: Callable[[Settings], int],
    *,
    shared: Callable[[Settings], bool] = lambda settings: False,
    own_ports: Callable[[Settings], Sequence[int]] = lambda settings: (),
) -> None:
    """Build settings now (never at import), then serve until SIGTERM/SIGINT.

    ``shared``: the port is shared with sibling processes (SO_REUSEPORT); ``own_ports``:
    further ports this process alone listens on (its probes)."""
    settings = load_settings()
    private_umask()  # also when run alone, not only under `truce up`
    configure_logging(service, settings.log_level)
    host = settings.bind_host
    sockets = [listening_socket(host, port(settings), reuse_port=shared(settings))]
    sockets += [listening_socket(host, extra) for extra in own_ports(settings)]
    config = uvicorn.Config(
        create_app(settings),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run(sockets=sockets)
