"""Working time per CVAT's rules; every expected value is worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import orjson

from eventpipe.contracts import ClientEventsRequest, Event, Identity
from eventpipe.working_time import working_time_events
from tests.messages import ingest_message

T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
SHORT_GAP = timedelta(seconds=100) - timedelta(milliseconds=1)  # the longest gap that counts
LONG_GAP = timedelta(seconds=100)  # the shortest gap that does not
IDENTITY = Identity(
    user_id=7, user_name="ann", user_email="ann@example.com", org_id=3, org_slug="lab"
)


def instant(at: timedelta, job_id: int | None = 1) -> Event:
    # A duration on an instant scope must be ignored.
    return Event(scope="click:element", timestamp=T0 + at, duration=123, job_id=job_id, task_id=2)


def frame(at: timedelta, duration: timedelta, job_id: int | None = 1) -> Event:
    ms = duration // timedelta(milliseconds=1)
    return Event(scope="change:frame", timestamp=T0 + at, duration=ms, job_id=job_id, task_id=2)


def totals(events: list[Event], previous: Event | None = None) -> dict[int | None, int]:
    """Working time in ms per job id."""
    message = ingest_message(IDENTITY, events, received_at=T0, previous_event=previous)
    return {e.job_id: e.duration or 0 for e in working_time_events(message)}


S = timedelta(seconds=1)


def test_instant_events_count_short_gaps_only() -> None:
    events = [instant(0 * S), instant(10 * S), instant(10 * S + LONG_GAP), instant(115 * S)]
    # 10 s gap + (100 s gap not counted) + 5 s gap
    assert totals(events) == {1: 15_000}


def test_longest_short_gap_counts_to_the_millisecond() -> None:
    assert totals([instant(0 * S), instant(SHORT_GAP)]) == {1: 99_999}


def test_single_event_without_previous_event_has_no_working_time() -> None:
    assert totals([instant(0 * S)]) == {}


def test_frame_event_counts_its_duration() -> None:
    assert totals([frame(0 * S, 10 * S)]) == {1: 10_000}


def test_event_contained_in_a_frame_event_adds_nothing() -> None:
    # The frame event covers 0..10 s; an instant at 3 s and a frame event 2..5 s lie inside it.
    assert totals([frame(0 * S, 10 * S), instant(3 * S), frame(2 * S, 3 * S)]) == {1: 10_000}


def test_overlapping_frame_events_count_the_union() -> None:
    # 0..10 s and 5..15 s cover 15 s.
    assert totals([frame(0 * S, 10 * S), frame(5 * S, 10 * S)]) == {1: 15_000}


def test_frame_events_separated_by_a_short_gap() -> None:
    # 10 s + 99.999 s gap + 1 s
    assert totals([frame(0 * S, 10 * S), frame(10 * S + SHORT_GAP, S)]) == {1: 110_999}


def test_frame_events_separated_by_a_long_gap() -> None:
    # 10 s + (100 s gap not counted) + 1 s
    assert totals([frame(0 * S, 10 * S), frame(10 * S + LONG_GAP, S)]) == {1: 11_000}


def test_gap_after_an_instant_previous_event() -> None:
    assert totals([instant(20 * S)], previous=instant(0 * S)) == {1: 20_000}


def test_event_contained_in_the_previous_frame_event() -> None:
    assert totals([instant(5 * S)], previous=frame(0 * S, 10 * S)) == {}


def test_frame_event_overlapping_the_previous_frame_event() -> None:
    # The previous event is already counted (it ended the last request): only 10..15 s is new.
    assert totals([frame(5 * S, 10 * S)], previous=frame(0 * S, 10 * S)) == {1: 5_000}


def test_short_and_long_gaps_after_the_previous_frame_event() -> None:
    previous = frame(0 * S, 10 * S)
    assert totals([instant(10 * S + SHORT_GAP)], previous=previous) == {1: 99_999}
    assert totals([instant(10 * S + LONG_GAP)], previous=previous) == {}
    assert totals([frame(10 * S + LONG_GAP, 2 * S)], previous=previous) == {1: 2_000}


def test_time_goes_to_the_job_of_the_event_before_the_gap() -> None:
    message = ingest_message(
        IDENTITY,
        received_at=T0,
        user_agent="Mozilla/5.0 (X11; Linux) Gecko/20100101 Firefox/146.0 é",
        previous_event=instant(0 * S, job_id=1),
        events=[
            instant(1 * S, job_id=1),  # 1 s  -> job 1 (opens its bucket at 1 s)
            instant(3 * S, job_id=2),  # 2 s  -> job 1
            instant(6 * S, job_id=2),  # 3 s  -> job 2 (opens its bucket at 6 s)
            instant(10 * S, job_id=1),  # 4 s -> job 2
        ],
    )
    derived = working_time_events(message)
    assert [(e.job_id, e.duration, e.timestamp) for e in derived] == [
        (1, 3_000, T0 + 1 * S),
        (2, 7_000, T0 + 6 * S),
    ]
    first = derived[0]
    assert first.scope == "send:working_time"
    assert first.source == "server"
    assert first.count == 1
    assert first.task_id == 2
    assert first.project_id is None
    # As CVAT's server records it: Django REST framework's compact JSON, Unicode as is.
    agent = "Mozilla/5.0 (X11; Linux) Gecko/20100101 Firefox/146.0 é"
    assert first.payload == (
        f'{{"working_time":3000,"request":{{"id":"{message.request_id}","user_agent":"{agent}"}}}}'
    )
    assert (first.user_id, first.user_name, first.user_email) == (7, "ann", "ann@example.com")
    assert (first.org_id, first.org_slug) == (3, "lab")
    assert first.obj_name is first.obj_id is first.obj_val is None


def test_without_user_agent_or_email_they_are_null() -> None:
    nobody = Identity(user_id=7, user_name="ann", user_email="")
    message = ingest_message(nobody, [instant(0 * S), instant(S)], received_at=T0)
    [derived] = working_time_events(message)
    assert orjson.loads(derived.payload or "") == {
        "working_time": 1000,
        "request": {"id": str(message.request_id), "user_agent": None},
    }
    assert derived.user_email is None


def test_user_activity_events_count_like_any_other() -> None:
    # The web client sends user:activity while the user works without other events: the gaps
    # it splits stay under 100 s and count.
    def activity(at: timedelta) -> Event:
        return Event(scope="user:activity", timestamp=T0 + at, job_id=1, task_id=2)

    events = [instant(0 * S), activity(60 * S), activity(120 * S), instant(180 * S)]
    assert totals(events) == {1: 180_000}
    assert totals([instant(0 * S), instant(180 * S)]) == {}


def test_buckets_with_zero_time_are_omitted() -> None:
    previous = instant(0 * S, job_id=1)
    # The 200 s gap is idle: job 1's bucket stays at zero; job 2 gets the 5 s that follow.
    events = [instant(200 * S, job_id=2), instant(205 * S, job_id=2)]
    assert totals(events, previous=previous) == {2: 5_000}


def test_sub_millisecond_gaps_are_summed_before_truncating() -> None:
    half = timedelta(microseconds=600)
    # 0.6 ms + 0.6 ms = 1.2 ms -> 1 ms (each alone would truncate to 0)
    assert totals([instant(0 * S), instant(half), instant(2 * half)]) == {1: 1}


def test_a_bucket_under_a_millisecond_is_recorded_as_zero() -> None:
    # CVAT records any bucket whose time is not zero; its resolution writes 0.6 ms as 0 ms.
    message = ingest_message(
        IDENTITY, [instant(0 * S), instant(timedelta(microseconds=600))], received_at=T0
    )
    [derived] = working_time_events(message)
    assert (derived.duration, orjson.loads(derived.payload or "")["working_time"]) == (0, 0)


def test_ids_left_out_and_null_ids_are_one_bucket() -> None:
    # The gateway derives the working time from the events as it decoded them, where an id the
    # client left out is msgspec's UNSET; the previous event's missing ids are None.
    body = orjson.dumps(
        {
            "events": [
                {"scope": "click:element", "timestamp": "2026-01-01T00:00:10Z"},
                {"scope": "click:element", "timestamp": "2026-01-01T00:00:30Z"},
            ],
            "previous_event": {"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z"},
            "timestamp": "2026-01-01T00:00:30Z",
        }
    )
    decoded = msgspec.json.decode(body, type=ClientEventsRequest)
    message = ingest_message(
        Identity(user_id=1, user_name="ann"),
        decoded.events,
        received_at=T0,
        previous_event=decoded.previous_event,
    )
    [derived] = working_time_events(message)
    assert (derived.duration, derived.job_id, derived.task_id) == (30_000, None, None)
