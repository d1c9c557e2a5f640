"""Serve the intake beside the gateway: its own uvicorn server on its own port.

With one gateway process the intake runs in a thread of it, and shares its metrics registry.
With several (uvicorn ``workers``), it runs in a process of its own started like them, so that it
keeps its metrics in the files they share and the gateway's metrics listener counts its events
too.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import uvicorn

from eventpipe.errors import CommandError
from eventpipe.settings import Settings
from ingest_gateway.http_protocol import uvicorn_options
from ingest_gateway.intake.app import check_intake_settings, create_intake_app

START_TIMEOUT_SECONDS: Final = 30.0
STOP_TIMEOUT_SECONDS: Final = 30.0
_POLL_SECONDS: Final = 0.05


@contextmanager
def intake_running(settings: Settings, *, own_process: bool = False) -> Iterator[None]:
    """Serve the intake while the block runs, when ``settings.intake_port`` is set."""
    if not settings.intake_port:
        yield
        return
    check_intake_settings(settings)
    with _in_process(settings) if own_process else _in_thread(settings):
        yield


def serve_intake(settings: Settings) -> None:
    """Serve the intake in the foreground until SIGTERM or SIGINT."""
    uvicorn.run(create_intake_app(settings), **_uvicorn_options(settings))


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return uvicorn_options(settings, settings.intake_host, settings.intake_port)


@contextmanager
def _in_thread(settings: Settings) -> Iterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(create_intake_app(settings), **_uvicorn_options(settings))
    )

    def serve() -> None:
        # uvicorn exits when it cannot listen, after logging why; the caller reports it.
        with contextlib.suppress(SystemExit):
            server.run()

    thread = threading.Thread(target=serve, name="intake", daemon=True)
    thread.start()
    try:
        _wait_started(lambda: server.started, thread.is_alive, settings)
        yield
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)


@contextmanager
def _in_process(settings: Settings) -> Iterator[None]:
    # Spawned, as uvicorn starts its workers: a fresh interpreter that inherits the environment.
    process = multiprocessing.get_context("spawn").Process(
        target=serve_intake, args=(settings,), name="eventpipe-intake", daemon=True
    )
    process.start()
    try:
        _wait_started(lambda: _accepts(settings), process.is_alive, settings)
        yield
    finally:
        process.terminate()  # SIGTERM: uvicorn finishes what it answers and stops the producer
        process.join(STOP_TIMEOUT_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()


def _accepts(settings: Settings) -> bool:
    # A wildcard listen address is not somewhere to connect to; its loopback is.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
        settings.intake_host, settings.intake_host
    )
    try:
        with socket.create_connection((host, settings.intake_port), timeout=1):
            return True
    except OSError:
        return False


def _wait_started(
    started: Callable[[], bool], alive: Callable[[], bool], settings: Settings
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not started():
        if not alive() or time.monotonic() > deadline:
            raise CommandError(
                f"the intake could not listen on {settings.intake_host}:{settings.intake_port} "
                "(see the log above)"
            )
        time.sleep(_POLL_SECONDS)
