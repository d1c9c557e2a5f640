"""Serve the intake beside the gateway: its own uvicorn server on its own port, in a thread.

The thread keeps the intake out of the way of the gateway's worker processes (uvicorn's
``workers``): the intake runs once per ``eventpipe gateway``, in the parent process.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import uvicorn

from eventpipe.errors import CommandError
from eventpipe.logs import logging_config
from eventpipe.settings import Settings
from ingest_gateway.http_protocol import UVICORN_PROTOCOLS
from ingest_gateway.intake import create_intake_app

START_TIMEOUT_SECONDS: Final = 30.0
STOP_TIMEOUT_SECONDS: Final = 30.0


@contextmanager
def intake_running(settings: Settings) -> Iterator[None]:
    """Serve the intake while the block runs, when ``settings.intake_port`` is set."""
    if not settings.intake_port:
        yield
        return
    server = uvicorn.Server(
        uvicorn.Config(
            create_intake_app(settings),
            host=settings.intake_host,
            port=settings.intake_port,
            **UVICORN_PROTOCOLS,
            log_config=logging_config(settings),
            log_level=settings.log_level.lower(),
            access_log=settings.log_level.upper() == "DEBUG",
        )
    )

    def serve() -> None:
        # uvicorn exits when it cannot listen, after logging why; the caller reports it.
        with contextlib.suppress(SystemExit):
            server.run()

    thread = threading.Thread(target=serve, name="intake", daemon=True)
    thread.start()
    try:
        _wait_started(server, thread, settings)
        yield
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)


def _wait_started(server: uvicorn.Server, thread: threading.Thread, settings: Settings) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise CommandError(
                f"the intake could not listen on {settings.intake_host}:{settings.intake_port} "
                "(see the log above)"
            )
        time.sleep(0.05)
