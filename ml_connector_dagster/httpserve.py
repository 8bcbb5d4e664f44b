"""Run an ASGI app with uvicorn in a background thread: for the CLI's stand-ins, the demo and tests.

`port=0` picks a free loopback port; the handle's `url` says which. `stop()` shuts down gracefully
(in-flight requests finish) and waits for the thread.
"""

from __future__ import annotations

import socket

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class ServerHandle:
    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int
    scheme: str = "http"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def kill(self) -> None:
        """Stop at once, dropping in-flight requests (for crash tests)."""
        self.server.force_exit = True
        self.server.should_exit = True
        self.thread.join(10)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, *, ssl_certfile: str | None = None,
                    ssl_keyfile: str | None = None, log_level: str = "warning", startup_timeout: float = 15.0) -> ServerHandle:
    """Start `app` and return once it accepts connections."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, ssl_certfile=ssl_certfile,
                            ssl_keyfile=ssl_keyfile, lifespan="off", timeout_graceful_shutdown=5, backlog=2048)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn-{host}")
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{sock.getsockname()[1]} did not start")
        time.sleep(0.01)
    return ServerHandle(server, thread, host, sock.getsockname()[1], "https" if ssl_certfile else "http")


def run_forever(app: Any, host: str, port: int, *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                log_level: str = "info") -> None:
    """Serve in the foreground until Ctrl-C (for `ml-connector receiver` / `agent`)."""
    uvicorn.run(app, host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=5)


__all__ = ["ServerHandle", "serve_in_thread", "run_forever", "free_port"]
