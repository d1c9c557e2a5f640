"""Offsets are committed only past exports that ended, whatever order they end in."""

from __future__ import annotations

from exporter.offsets import OffsetTracker


def test_an_offset_waits_for_every_earlier_export_of_its_partition() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.started("p0", offset)
    tracker.started("p1", 5)

    tracker.ended("p0", 12)
    tracker.ended("p1", 5)
    assert tracker.committable() == {"p1": 6}
    assert tracker.in_flight == 2

    tracker.ended("p0", 10)
    assert tracker.committable() == {"p0": 11}
    tracker.ended("p0", 11)
    assert tracker.committable() == {"p0": 13}
    assert tracker.committable() == {}
    assert tracker.in_flight == 0


def test_forgotten_partitions_are_never_committed() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.started("p0", 1)
    tracker.forget(["p0"])
    tracker.ended("p0", 1)
    assert tracker.committable() == {}
