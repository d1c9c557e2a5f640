"""Exports when the object store goes away, and a gateway stopped with SIGTERM mid-burst.

Real processes: ``eventpipe gateway`` and ``eventpipe worker --role all`` (LocalPipeline) on the
session's broker, the embedded ClickHouse and the filesystem object store.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from eventpipe_cli.embedded_broker import EmbeddedBroker
from eventpipe_cli.testing.pipeline import LocalPipeline, wait_until_committed
from tests.integration.delivery_support import (
    Poster,
    add_exporter_admin,
    add_posters,
    assert_exactly_once,
    eventually,
    unwritable,
    wait_for_log,
)
from tests.integration.export_api_support import ExportClient, csv_rows, pipeline_settings
from tests.integration.gateway_support import decode_message, topic_records

pytestmark = pytest.mark.slow

BURST_REQUESTS = 2000


async def test_an_export_outlives_an_object_store_outage(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The fault: the filesystem store refuses new files (its staging directory made immutable)
    from after the gateway queued the export until after the exporter failed to write to it.
    The worker is frozen (SIGSTOP) while the export is started, so no exporter takes it before
    the store fails."""
    settings = pipeline_settings(tmp_path / "data", broker)
    auditor = add_exporter_admin(settings)
    log = tmp_path / "pipeline.log"
    with LocalPipeline.run(settings, log) as pipeline:
        poster = Poster(pipeline.url, add_posters(settings))
        await poster.post(30)
        await wait_until_committed(settings, messages=30)
        exports = ExportClient(pipeline.url, auditor)

        pipeline.worker.send_signal(signal.SIGSTOP)
        query_id = exports.start()
        with unwritable(settings.data_dir / "exports" / ".partial"):
            pipeline.worker.send_signal(signal.SIGCONT)
            await wait_for_log(log, "did not reach its end", pipeline.worker, timeout=30)
            waiting = exports.get(query_id=str(query_id))
            assert (waiting.status_code, waiting.json()["status"]) == (202, "queued")
        ended = exports.wait_until_ended(query_id, timeout=30)
        assert ended.status_code == 201, ended.text
        exported = csv_rows(exports.download(query_id))
    assert poster.tally.answers == {"201": 30}, poster.tally
    assert_exactly_once([row["obj_name"] for row in exported], poster.tally.acknowledged)


async def test_sigterm_on_the_gateway_mid_burst_answers_everyone_and_loses_no_201(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """``eventpipe gateway`` gets SIGTERM while 32 clients post: it stops accepting, finishes
    the requests it took and flushes its producer. Every request ends (no client waits out its
    timeout), and each one answered 201 is in Kafka, once."""
    settings = pipeline_settings(tmp_path / "data", broker)
    log = tmp_path / "pipeline.log"
    with LocalPipeline.run(settings, log, "processor") as pipeline:
        poster = Poster(pipeline.url, add_posters(settings), concurrency=32, timeout=20)
        burst = asyncio.create_task(poster.post(BURST_REQUESTS))
        await eventually(lambda: len(poster.tally.by_request) >= 100, "100 answers", timeout=30)
        pipeline.gateway.send_signal(signal.SIGTERM)
        await burst
        # uvicorn shuts down, then re-raises the signal it caught: the exit status says SIGTERM.
        assert pipeline.gateway.wait(30) == -signal.SIGTERM
        assert "Application shutdown complete" in log.read_text()
        records = await topic_records(settings, expected=poster.tally.answers["201"])

    # Besides 201s: connections refused once it stopped listening, and keep-alive connections
    # it closed as a request was arriving on them, unread (the Kafka check below shows they were
    # not taken). No timeouts, no other status.
    unanswered = {"ConnectError", "ReadError", "RemoteProtocolError"}
    assert set(poster.tally.answers) <= {"201", *unanswered}, poster.tally
    assert poster.tally.answers["201"] < BURST_REQUESTS, "the burst ended before the SIGTERM"
    in_kafka = [e.obj_name for r in records for e in decode_message(r).events if e.obj_name]
    assert_exactly_once(in_kafka, poster.tally.acknowledged)
    print(f"{poster.tally}; {len(in_kafka)} events in Kafka")
