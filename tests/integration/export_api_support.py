"""Drive both export flows over HTTP the way CVAT's clients do: start, poll, download.

The deprecated flow polls ``GET /api/events`` with a ``query_id``; the current one starts with
``POST /api/events/export`` and polls ``GET /api/requests/{rq_id}``."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import EmbeddedBroker, free_port
from tests.conftest import isolated_settings

ALICE = httpx.BasicAuth("alice", "alice-pw")
BOB = httpx.BasicAuth("bob", "bob-pw")
EVENTS = "/api/events"
EXPORT = "/api/events/export"
REQUESTS = "/api/requests"


def pipeline_settings(data_dir: Path, broker: EmbeddedBroker, **overrides: Any) -> Settings:
    """Isolated settings with a free gateway port, for ``LocalPipeline.run``."""
    return isolated_settings(data_dir, broker, http_port=free_port(), **overrides)


def event(scope: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"scope": scope, "timestamp": at.isoformat(), **fields}


def post_events(
    url: str, auth: httpx.Auth, events: list[dict[str, Any]], org: str | None = None
) -> None:
    """Post ``events`` sent now, so the clock-skew correction keeps their timestamps."""
    headers = {"X-Organization": org} if org else {}
    body = {"events": events, "timestamp": datetime.now(UTC).isoformat()}
    answer = httpx.post(f"{url}{EVENTS}", json=body, auth=auth, headers=headers)
    assert answer.status_code == 201, answer.text


class ExportClient:
    def __init__(self, url: str, auth: httpx.Auth) -> None:
        self.url = url
        self.auth = auth

    def get(self, *, org: str | None = None, **params: Any) -> httpx.Response:
        """``GET /api/events`` with ``params``, in the organization ``org`` (a slug) if given."""
        headers = {"X-Organization": org} if org else {}
        return httpx.get(
            f"{self.url}{EVENTS}", params=params, auth=self.auth, headers=headers, timeout=30
        )

    def start(self, *, org: str | None = None, **params: Any) -> uuid.UUID:
        answer = self.get(org=org, **params)
        assert answer.status_code == 202, answer.text
        return uuid.UUID(answer.json()["query_id"])

    def wait_until_ended(self, query_id: uuid.UUID, timeout: float = 60) -> httpx.Response:
        """The first poll that is not a 202 (queued or running)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.get(query_id=str(query_id))
            if answer.status_code != 202:
                return answer
            assert answer.json()["status"] in ("queued", "running"), answer.text
            assert time.monotonic() < deadline, f"export {query_id} did not end in {timeout}s"
            time.sleep(0.1)

    def download(self, query_id: uuid.UUID, **params: Any) -> httpx.Response:
        return self.get(query_id=str(query_id), action="download", **params)

    def export_rows(self, *, org: str | None = None, **params: Any) -> list[dict[str, str]]:
        """Start an export, wait for it, download it: its CSV rows."""
        query_id = self.start(org=org, **params)
        ended = self.wait_until_ended(query_id)
        assert ended.status_code == 201, ended.text
        return csv_rows(self.download(query_id))

    def post_export(self, *, org: str | None = None, **params: Any) -> httpx.Response:
        """``POST /api/events/export`` with ``params``, in the organization ``org`` if given."""
        headers = {"X-Organization": org} if org else {}
        return httpx.post(
            f"{self.url}{EXPORT}", params=params, auth=self.auth, headers=headers, timeout=30
        )

    def requests(self, path: str = "", method: str = "GET", **params: Any) -> httpx.Response:
        """``/api/requests{path}``, e.g. ``/<rq_id>`` or ``/<rq_id>/cancel`` with POST."""
        return httpx.request(
            method, f"{self.url}{REQUESTS}{path}", params=params, auth=self.auth, timeout=30
        )

    def start_request(self, *, org: str | None = None, **params: Any) -> str:
        answer = self.post_export(org=org, **params)
        assert answer.status_code == 202, answer.text
        rq_id: str = answer.json()["rq_id"]
        return rq_id

    def wait_until_request_ended(self, rq_id: str, timeout: float = 60) -> dict[str, Any]:
        """The request once it is finished or failed."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.requests(f"/{rq_id}")
            assert answer.status_code == 200, answer.text
            request: dict[str, Any] = answer.json()
            if request["status"] in ("finished", "failed"):
                return request
            assert request["status"] in ("queued", "started"), answer.text
            assert time.monotonic() < deadline, f"request {rq_id} did not end in {timeout}s"
            time.sleep(0.1)

    def export_rows_by_request(
        self, *, org: str | None = None, **params: Any
    ) -> list[dict[str, str]]:
        """Start an export through the requests API, wait for it, download its ``result_url``."""
        request = self.wait_until_request_ended(self.start_request(org=org, **params))
        assert request["status"] == "finished", request
        return csv_rows(httpx.get(request["result_url"], auth=self.auth, timeout=30))


def csv_rows(answer: httpx.Response) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text)))
