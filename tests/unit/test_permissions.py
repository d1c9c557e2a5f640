"""Every (privilege x context x requested filter) combination of the export rules."""

from __future__ import annotations

import itertools

import pytest

from eventpipe.contracts import EventFilter
from eventpipe.identity import ORG_ROLES
from ingest_gateway.permissions import (
    ExportCaller,
    ForbiddenFilter,
    authorize_export,
)

ME, SOMEONE_ELSE = 10, 20
MY_ORG, OTHER_ORG = 1, 2

# context -> (admin, role) pairs; None org = sandbox.
CALLERS = {
    "admin/sandbox": ExportCaller(ME, True, None, None),
    "user/sandbox": ExportCaller(ME, False, None, None),
    "admin/org, not a member": ExportCaller(ME, True, MY_ORG, None),
    **{
        f"{'admin' if admin else 'user'}/org {role}": ExportCaller(ME, admin, MY_ORG, role)
        for admin, role in itertools.product((True, False), ORG_ROLES)
    },
}

# What each caller sees with no filters: (org_id, user_id) forced, None = any.
EXPECTED_FORCED = {
    "admin/sandbox": (None, None),
    "user/sandbox": (None, ME),
    "admin/org, not a member": (MY_ORG, None),
    "admin/org owner": (MY_ORG, None),
    "admin/org maintainer": (MY_ORG, None),
    "admin/org supervisor": (MY_ORG, None),
    "admin/org worker": (MY_ORG, None),
    "user/org owner": (MY_ORG, None),
    "user/org maintainer": (MY_ORG, None),
    "user/org supervisor": (MY_ORG, ME),
    "user/org worker": (MY_ORG, ME),
}

REQUESTS = {
    "nothing": EventFilter(),
    "own user": EventFilter(user_id=ME),
    "other user": EventFilter(user_id=SOMEONE_ELSE),
    "own org": EventFilter(org_id=MY_ORG),
    "other org": EventFilter(org_id=OTHER_ORG),
    "a job": EventFilter(job_id=5, task_id=4, project_id=3),
}


def expected(caller_name: str, request: EventFilter) -> EventFilter | str:
    forced_org, forced_user = EXPECTED_FORCED[caller_name]
    if forced_org is not None and request.org_id not in (None, forced_org):
        return "org_id"
    if forced_user is not None and request.user_id not in (None, forced_user):
        return "user_id"
    return EventFilter(
        org_id=forced_org if forced_org is not None else request.org_id,
        user_id=forced_user if forced_user is not None else request.user_id,
        project_id=request.project_id,
        task_id=request.task_id,
        job_id=request.job_id,
    )


@pytest.mark.parametrize(
    ("caller_name", "request_name"), list(itertools.product(CALLERS, REQUESTS))
)
def test_export_filter(caller_name: str, request_name: str) -> None:
    caller, request = CALLERS[caller_name], REQUESTS[request_name]
    want = expected(caller_name, request)
    if isinstance(want, str):
        with pytest.raises(ForbiddenFilter) as refused:
            authorize_export(caller, request)
        assert refused.value.parameter == want
    else:
        assert authorize_export(caller, request) == want


def test_non_admin_outside_their_orgs_is_refused() -> None:
    with pytest.raises(ForbiddenFilter, match="org_id"):
        authorize_export(ExportCaller(ME, False, OTHER_ORG, None), EventFilter())
