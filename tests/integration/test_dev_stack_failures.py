"""``eventpipe dev`` when it cannot start: the user learns what failed and what to do."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from eventpipe.errors import CommandError
from eventpipe.settings import Settings
from eventpipe_cli import dev_stack
from eventpipe_cli.embedded_broker import free_port
from eventpipe_cli.supervisor import ChildSpec


def test_a_child_dying_during_startup_names_it_shows_its_output_and_stops_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def children(worker_settings: Settings, gateway_settings: Settings) -> list[ChildSpec]:
        worker, _ = original(worker_settings, gateway_settings)
        failing = "print('cannot open the identity store'); raise SystemExit(3)"
        return [worker, ChildSpec("gateway", [sys.executable, "-c", failing], worker.env)]

    original = dev_stack._children
    monkeypatch.setattr(dev_stack, "_children", children)
    settings = Settings(data_dir=tmp_path / "data", http_port=free_port())

    with pytest.raises(CommandError, match=r"the gateway could not start .* `eventpipe dev` again"):
        dev_stack.run_dev_stack(settings)

    out = capsys.readouterr().out
    assert "gateway exited with code 3 while starting; its last output:" in out
    assert "dev     |   cannot open the identity store" in out
    assert "worker stopped" in out
    assert "is ready" not in out


def test_a_taken_port_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(data_dir=tmp_path / "data", http_port=port)

        with pytest.raises(CommandError, match=rf"127\.0\.0\.1:{port} .*--port"):
            dev_stack.run_dev_stack(settings)

    assert "starting" not in capsys.readouterr().out
