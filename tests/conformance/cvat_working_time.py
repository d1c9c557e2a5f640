"""CVAT's own test cases of its working-time algorithm, read from its source at run time.

``cvat/apps/events/tests/test_events.py`` (``WorkingTimeTestCase``) builds events, feeds them to
``compute_working_time_per_ids`` one request at a time (each event with the previous one, unless
the earlier event still lasts) and asserts the milliseconds each request yields. Its class needs
Django to import, so the class is compiled from the file's syntax tree alone, with the names it
reads supplied here: CVAT's constants (``const.py``, which imports nothing of Django) and CVAT's
``is_contained`` and ``get_end_timestamp`` (compiled from ``utils.py``, whose imports need it).
Only two things are replaced: ``_deserialize`` keeps the events as posted (their times read as
CVAT reads them) instead of running CVAT's serializer, and ``compute_working_time_per_ids``
records each request instead of computing. Each test method then runs unchanged, and its
assertions are collected as (request, expected milliseconds) for eventpipe to answer.
"""

from __future__ import annotations

import ast
import unittest
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tests.conformance.cvat_source import cvat_file, load_module

TESTS = "cvat/apps/events/tests/test_events.py"
UTILS = "cvat/apps/events/utils.py"
CONST = "cvat/apps/events/const.py"
CASE_CLASS = "WorkingTimeTestCase"
# What CVAT's algorithm needs besides its constants.
UTILS_FUNCTIONS = ("get_end_timestamp", "is_contained")


@dataclass
class Request:
    """One request CVAT's test computes working time for: its events and ``previous_event``,
    as posted (timestamps as ISO-8601 text, naive ones meaning UTC as CVAT reads them)."""

    events: list[dict[str, Any]]
    previous_event: dict[str, Any] | None


@dataclass(frozen=True)
class Pending:
    """The working time of ``requests[number]``, not known yet: what the recording stand-in of
    ``compute_working_time_per_ids`` hands CVAT's test instead of a duration."""

    number: int

    def __floordiv__(self, resolution: object) -> Pending:
        return self


@dataclass
class Case:
    name: str
    requests: list[Request] = field(default_factory=list)
    # (request number, milliseconds CVAT expects it to yield)
    expected: list[tuple[int, float]] = field(default_factory=list)


def parsed(relative: str) -> ast.Module:
    return ast.parse(cvat_file(relative).read_text(), filename=relative)


def _compiled(relative: str, nodes: list[ast.stmt], namespace: dict[str, Any]) -> None:
    module = ast.Module(body=nodes, type_ignores=[])
    exec(compile(module, str(cvat_file(relative)), "exec"), namespace)


def cvat_constants() -> dict[str, Any]:
    """The constants of CVAT's ``const.py`` (scopes, durations), by name."""
    const = load_module(CONST, "cvat_events_const")
    return {name: value for name, value in vars(const).items() if name.isupper()}


def _namespace() -> dict[str, Any]:
    constants = cvat_constants()
    utils = [
        node
        for node in parsed(UTILS).body
        if isinstance(node, ast.FunctionDef) and node.name in UTILS_FUNCTIONS
    ]
    assert {node.name for node in utils} == set(UTILS_FUNCTIONS), f"{UTILS} changed"
    namespace = {"datetime": __import__("datetime"), **constants}
    _compiled(UTILS, list(utils), namespace)
    return {
        **namespace,
        "datetime": datetime,
        "timedelta": timedelta,
        "timezone": timezone,
        "unittest": unittest,
    }


def _as_utc(event: dict[str, Any]) -> dict[str, Any]:
    moment = datetime.fromisoformat(event["timestamp"])
    return {**event, "timestamp": moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment}


def _as_posted(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "timestamp": event["timestamp"].isoformat()}


def cvat_cases() -> list[Case]:
    """Every ``test_*`` method of CVAT's ``WorkingTimeTestCase``, run against the recorder."""
    namespace = _namespace()
    case_class = next(
        node
        for node in parsed(TESTS).body
        if isinstance(node, ast.ClassDef) and node.name == CASE_CLASS
    )
    recording: list[Request] = []

    def compute_working_time_per_ids(data: dict[str, Any]) -> dict[Any, Any]:
        previous = data["previous_event"]
        recording.append(
            Request(
                [_as_posted(event) for event in data["events"]],
                None if previous is None else _as_posted(previous),
            )
        )
        return {"ids": {"value": Pending(len(recording) - 1)}}

    namespace["compute_working_time_per_ids"] = compute_working_time_per_ids
    _compiled(TESTS, [case_class], namespace)
    cvat_case: type[unittest.TestCase] = namespace[CASE_CLASS]
    cases: list[Case] = []

    class Recorder(cvat_case):  # type: ignore[misc, valid-type]
        def _deserialize(
            self, events: list[dict[str, Any]], previous_event: dict[str, Any] | None = None
        ) -> dict[str, Any]:
            return {
                "events": [_as_utc(event) for event in events],
                "previous_event": None if previous_event is None else _as_utc(previous_event),
            }

        def assertEqual(self, first: object, second: object, msg: object = None) -> None:
            assert isinstance(first, Pending), f"CVAT's {self._testMethodName} changed shape"
            assert isinstance(second, int | float)
            cases[-1].expected.append((first.number, second))

    for name in sorted(vars(cvat_case)):
        if name.startswith("test_"):
            recording.clear()
            cases.append(Case(name))
            getattr(Recorder(name), name)()
            cases[-1].requests = list(recording)
    assert cases, f"no test cases found in {TESTS}"
    return cases


def recorded(ms: float) -> list[int]:
    """The working-time events CVAT records for a request that yields ``ms``: one, or none for a
    total of zero."""
    return [int(ms)] if ms else []
