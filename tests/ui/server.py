"""The app under a real uvicorn, in a thread: start, stop (dropping every socket), restart."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import uvicorn

from pipeline.config import Settings
from ui.app import create_app

OPERATOR_TOKEN = "t0ken-" + uuid.uuid4().hex
"""The operator token of ``operator_server`` (tests/ui/conftest.py)."""
OPERATOR_AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._failure = None
        self._thread = threading.Thread(
            target=self._run, args=(self._server,), daemon=True, name="ui-server"
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the UI server did not start") from self._failure
            time.sleep(0.02)

    def _run(self, server: uvicorn.Server) -> None:
        # Kept for stop() to raise in the test that stopped the server: left to the thread, a
        # failure while the loop closes (a socket left open fails uvloop's close with EBUSY)
        # surfaced only as pytest's unhandled-thread-exception warning, in whichever test's
        # teardown happened to be running.
        try:
            server.run()
        except BaseException as exc:
            self._failure = exc

    def stop(self) -> None:
        """Shut down: uvicorn closes every WebSocket (1012) and stops listening.

        Raises if the server did not end (a restart on the same port would then find it taken)
        or ended with an error."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(15)
        if thread.is_alive():
            raise RuntimeError(f"the UI server on port {self.port} did not stop within 15 s")
        if self._failure is not None:
            raise RuntimeError("the UI server failed while it ran or shut down") from self._failure
