"""Who may export which events: CVAT's rules as one table and one function.

The table maps (is the caller an admin, where the request runs) to the filters forced onto every
export. A forced filter pins a column to the caller's own value; a request parameter that names
another value for it is refused (403 naming the parameter), any other parameter only narrows the
result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import msgspec

from eventpipe.contracts import EventFilter
from eventpipe.identity import ORG_ROLES, OrgRole

ORG = "org_id"
USER = "user_id"

# Where a request runs: the personal sandbox, an org the caller has a role in, or an org the caller
# is not a member of (only admins get past authentication there).
SANDBOX: Final = "sandbox"
NON_MEMBER: Final = "non-member"
Context = OrgRole | Literal["sandbox", "non-member"]

# (admin, context) -> columns pinned to the caller's own values. A missing key is refused.
FORCED_FILTERS: Final[dict[tuple[bool, Context], frozenset[str]]] = {
    (True, SANDBOX): frozenset(),
    (False, SANDBOX): frozenset({USER}),
    (True, NON_MEMBER): frozenset({ORG}),
    **{(True, role): frozenset({ORG}) for role in ORG_ROLES},
    (False, "owner"): frozenset({ORG}),
    (False, "maintainer"): frozenset({ORG}),
    (False, "supervisor"): frozenset({ORG, USER}),
    (False, "worker"): frozenset({ORG, USER}),
}


@dataclass(frozen=True)
class ExportCaller:
    user_id: int
    is_admin: bool
    # The org context of the request; None for the personal sandbox.
    org_id: int | None
    # The caller's role in that org; None for an admin who is not a member.
    org_role: OrgRole | None


class ForbiddenFilter(Exception):
    def __init__(self, parameter: str) -> None:
        super().__init__(f"you may not export events with this {parameter}")
        self.parameter = parameter


def context_of(caller: ExportCaller) -> Context:
    if caller.org_id is None:
        return SANDBOX
    return caller.org_role or NON_MEMBER


def forced_columns(caller: ExportCaller) -> frozenset[str]:
    forced = FORCED_FILTERS.get((caller.is_admin, context_of(caller)))
    if forced is None:
        raise ForbiddenFilter(ORG)
    return forced


def authorize_export(caller: ExportCaller, requested: EventFilter) -> EventFilter:
    """The filter an export runs with: the request narrowed by what the caller is forced to."""
    own = {ORG: caller.org_id, USER: caller.user_id}
    result = requested
    for column in forced_columns(caller):
        asked = getattr(requested, column)
        if asked is not None and asked != own[column]:
            raise ForbiddenFilter(column)
        result = msgspec.structs.replace(result, **{column: own[column]})
    return result
