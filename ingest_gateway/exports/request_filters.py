"""The filters and ordering of ``GET /api/requests``, as CVAT's ``RequestViewSet`` takes them.

Simple filters (``status``, ``project_id``, ``task_id``, ``job_id``, ``action``, ``target``,
``subresource``, ``format``, ``org``, ``org_id``) compare one field of a request with the value
given; an empty value filters nothing (CVAT's web client sends ``org=`` in the sandbox). An events
export has action ``export`` and target ``events``; CVAT records no project, task, job,
organization, subresource or format for it, so a value for any of those matches none.
``filter`` is CVAT's JSON Logic over the same fields; ``sort`` orders by ``created_date``,
``status`` or ``action`` (``-`` first for descending; newest first without one).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.datastructures import QueryParams

from eventpipe.export_records import ExportStatus
from ingest_gateway.errors import ApiError
from ingest_gateway.exports.request_answer import EVENTS, EXPORT, STATES
from ingest_gateway.params import parse_id, single

Value = str | int | None

# Fields an events export has no value for: a filter on them matches nothing but "none".
EMPTY_TEXT_FIELDS: Final = ("subresource", "format", "org")
ID_FIELDS: Final = ("project_id", "task_id", "job_id", "org_id")
_TEXT_FIELDS: Final = ("status", "action", "target", *EMPTY_TEXT_FIELDS)
FILTER_FIELDS: Final = (*_TEXT_FIELDS, *ID_FIELDS)
SORT_FIELDS: Final = ("created_date", "status", "action")
_DEFAULT_SORT: Final = "-created_date"

_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# How many arguments each operator takes; None: any number.
_ARITY: Final[dict[str, int | None]] = {
    **dict.fromkeys(_COMPARISONS, 2),
    "in": 2,
    "!": 1,
    "and": None,
    "or": None,
}


def fields_of(status: ExportStatus) -> dict[str, Value]:
    """The filterable fields of an events export, as CVAT derives them from its rq_id and meta."""
    return {
        "status": STATES[status.state],
        "action": EXPORT,
        "target": EVENTS,
        **dict.fromkeys((*EMPTY_TEXT_FIELDS, *ID_FIELDS)),
    }


@dataclass(frozen=True)
class RequestFilter:
    simple: Mapping[str, Value]
    logic: object = None

    def matches(self, status: ExportStatus) -> bool:
        fields = fields_of(status)
        if any(fields[name] != value for name, value in self.simple.items()):
            return False
        return self.logic is None or bool(_evaluate(self.logic, fields))


def request_filter(params: QueryParams) -> RequestFilter:
    """The filter the query asks for, or a 400 naming the parameter at fault."""
    simple: dict[str, Value] = {}
    for name in FILTER_FIELDS:
        raw = single(params, name)
        if raw:
            simple[name] = parse_id(raw, name) if name in ID_FIELDS else raw
    wanted = simple.get("status")
    if wanted is not None and wanted not in STATES.values():
        raise ApiError(
            400, f"status={wanted!r} is not one of {', '.join(STATES.values())}", field="status"
        )
    raw_logic = single(params, "filter")
    logic = None
    if raw_logic:
        try:
            logic = orjson.loads(raw_logic)
        except orjson.JSONDecodeError:
            raise ApiError(400, "filter is not JSON (CVAT's JSON Logic)", field="filter") from None
        _check_logic(logic)
    return RequestFilter(simple, logic)


def ordered(statuses: list[ExportStatus], params: QueryParams) -> list[ExportStatus]:
    """``statuses`` in the order ``sort`` asks for, newest first by default."""
    keys = [key.strip() for key in (single(params, "sort") or _DEFAULT_SORT).split(",")]
    result = list(statuses)
    # Stable sorts from the last key to the first give the first key precedence.
    for key in reversed([k for k in keys if k]):
        name = key.removeprefix("-")
        if name not in SORT_FIELDS:
            raise ApiError(
                400, f"sort by {name!r}: use one of {', '.join(SORT_FIELDS)}", field="sort"
            )
        result.sort(key=lambda status: _sort_value(status, name), reverse=key.startswith("-"))
    return result


def _sort_value(status: ExportStatus, name: str) -> str:
    if name == "created_date":
        return status.created_at.isoformat()
    return str(fields_of(status)[name])


def _check_logic(rule: object) -> None:
    """A 400 for anything but the JSON Logic CVAT's filter takes over these fields."""
    if not isinstance(rule, dict) or len(rule) != 1:
        raise ApiError(400, "filter: each rule is one operator and its arguments", field="filter")
    [(op, args)] = rule.items()
    if op == "var":
        if args not in FILTER_FIELDS:
            raise ApiError(
                400, f"filter: {args!r} is not one of {', '.join(FILTER_FIELDS)}", field="filter"
            )
        return
    if op not in _ARITY or not isinstance(args, list):
        raise ApiError(400, f"filter: unsupported operator {op!r}", field="filter")
    arity = _ARITY[op]
    if arity is not None and len(args) != arity:
        raise ApiError(400, f"filter: {op!r} takes {arity} arguments", field="filter")
    for arg in args:
        if isinstance(arg, dict):
            _check_logic(arg)


def _evaluate(rule: object, fields: Mapping[str, Value]) -> object:
    if not isinstance(rule, dict):
        return rule
    [(op, args)] = rule.items()
    if op == "var":
        return fields[args]
    values = [_evaluate(arg, fields) for arg in args]
    if op == "and":
        return all(values)
    if op == "or":
        return any(values)
    if op == "!":
        return not values[0]
    left, right = values
    if op == "in":
        if isinstance(right, str):
            return isinstance(left, str) and left in right
        return isinstance(right, list) and left in right
    if op in ("==", "!="):
        return _COMPARISONS[op](left, right)
    # Ordering compares a text or a number with one of its kind only (lists of mixed items do not
    # order); a null field is never less or more.
    return type(left) is type(right) and type(left) in (str, int) and _COMPARISONS[op](left, right)
