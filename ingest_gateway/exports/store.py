"""The gateway's handle on the export object store, opened in the background.

Opening an S3 store talks to the endpoint (it creates the bucket if missing). Doing that before
serving would keep the gateway, and with it event ingest, down whenever the store is: instead
the store is opened with retries while the gateway already serves, and export requests answer
503 until it is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from eventpipe.backoff import Backoff, retry_until_done
from eventpipe.settings import Settings
from eventpipe.stores import ObjectStore, open_store
from ingest_gateway.producer import unavailable

log = logging.getLogger(__name__)

OPEN_BACKOFF: Final = Backoff(initial=1.0, maximum=30.0)


class ExportStoreHandle:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: ObjectStore | None = None
        self._opening: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._opening = asyncio.create_task(self._open_until_done())

    async def stop(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opening

    def get(self) -> ObjectStore:
        """The open store, or a 503 while it cannot be reached."""
        if self._store is None:
            raise unavailable("the export store is not reachable yet; retry shortly")
        return self._store

    async def _open_until_done(self) -> None:
        def failed(attempt: int, delay: float, exc: Exception) -> None:
            # Any failure to reach or set up the store is retried.
            log.warning("cannot open the export store, retrying in %.0f s: %s", delay, exc)

        self._store = await retry_until_done(
            lambda: asyncio.to_thread(open_store, self._settings), OPEN_BACKOFF, failed
        )
