"""The intake's spool on a real directory: order, reopening, torn writes, its bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventpipe.errors import CommandError
from ingest_gateway.intake import spool as intake_spool
from ingest_gateway.intake.spool import IntakeSpool, SpooledRecord, SpoolEntry, SpoolFull


def entry(n: int, size: int = 100) -> SpoolEntry:
    record = SpooledRecord(
        topic="events", key=b"k%d" % n, value=b"%d:" % n + b"x" * size, headers=[], events=1
    )
    return SpoolEntry(records=[record])


def numbers(entries: list[SpoolEntry]) -> list[int]:
    return [int(e.records[0].value.split(b":")[0]) for e in entries]


async def drain(spool: IntakeSpool, max_bytes: int = 1000) -> list[int]:
    """Take and release everything, a round of about ``max_bytes`` at a time."""
    taken_numbers: list[int] = []
    while not spool.empty:
        taken = await spool.take(max_bytes)
        taken_numbers += numbers(taken.entries)
        await spool.release(taken)
    return taken_numbers


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    # A few entries a segment, so that the tests cross segment boundaries.
    monkeypatch.setattr(intake_spool, "SEGMENT_BYTES", 500)


@pytest.mark.usefixtures("small_segments")
async def test_entries_come_out_in_order_across_segments_and_a_reopen(tmp_path: Path) -> None:
    spool = IntakeSpool(tmp_path, max_bytes=10**6)
    spool.open()
    for n in range(10):
        await spool.append(entry(n))
    first = await spool.take(300)
    await spool.release(first)
    spool.close()

    reopened = IntakeSpool(tmp_path, max_bytes=10**6)
    reopened.open()
    for n in range(10, 15):
        await reopened.append(entry(n))
    rest = await drain(reopened)
    reopened.close()

    assert numbers(first.entries) + rest == list(range(15))
    # Spent segments are gone: what is left is at most the one being written.
    assert len(list(tmp_path.glob("*.segment"))) <= 1


async def test_a_torn_write_at_the_end_is_cut_off_and_what_was_whole_survives(
    tmp_path: Path,
) -> None:
    spool = IntakeSpool(tmp_path, max_bytes=10**6)
    spool.open()
    for n in range(3):
        await spool.append(entry(n))
    spool.close()
    [segment] = tmp_path.glob("*.segment")
    whole = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(b"\x50\x00\x00\x00\x01\x02")  # a frame's head and a little of its body

    reopened = IntakeSpool(tmp_path, max_bytes=10**6)
    reopened.open()
    assert segment.stat().st_size == whole
    await reopened.append(entry(3))
    assert await drain(reopened) == [0, 1, 2, 3]
    reopened.close()


async def test_a_full_spool_refuses_until_something_is_sent(tmp_path: Path) -> None:
    spool = IntakeSpool(tmp_path, max_bytes=300)  # two entries of about 130 bytes
    spool.open()
    await spool.append(entry(0))
    await spool.append(entry(1))
    with pytest.raises(SpoolFull):
        await spool.append(entry(2))
    assert spool.full
    await spool.release(await spool.take(1))
    assert not spool.full
    await spool.append(entry(2))
    assert await drain(spool) == [1, 2]
    spool.close()


def test_two_intakes_cannot_share_a_spool(tmp_path: Path) -> None:
    first = IntakeSpool(tmp_path, max_bytes=1000)
    first.open()
    try:
        with pytest.raises(CommandError, match="another intake uses the spool"):
            IntakeSpool(tmp_path, max_bytes=1000).open()
    finally:
        first.close()
