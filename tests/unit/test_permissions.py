"""Every (privilege x context x requested filter) combination of the export rules, and the rules
for access tokens and other users' requests."""

from __future__ import annotations

import itertools

import pytest

from eventpipe.contracts import EventFilter
from eventpipe.identity import ORG_ROLES, AccessToken, Privilege
from ingest_gateway.errors import ApiError
from ingest_gateway.identity.permissions import (
    Caller,
    RequestAction,
    authorize_export,
    check_request_access,
    check_send_events,
)

ME, SOMEONE_ELSE = 10, 20
MY_ORG, OTHER_ORG = 1, 2

# context -> (admin, role) pairs; None org = sandbox.
CALLERS = {
    "admin/sandbox": Caller(ME, "admin"),
    "user/sandbox": Caller(ME, "user"),
    "worker/sandbox": Caller(ME, "worker"),
    "admin/org, not a member": Caller(ME, "admin", MY_ORG, None),
    **{
        f"{privilege}/org {role}": Caller(ME, privilege, MY_ORG, role)
        for privilege, role in itertools.product(("admin", "user", "worker"), ORG_ROLES)
    },
}

# What each caller sees with no filters: (org_id, user_id) forced, None = any.
EXPECTED_FORCED = {
    "admin/sandbox": (None, None),
    "user/sandbox": (None, ME),
    "worker/sandbox": (None, ME),
    "admin/org, not a member": (MY_ORG, None),
    "admin/org owner": (MY_ORG, None),
    "admin/org maintainer": (MY_ORG, None),
    "admin/org supervisor": (MY_ORG, None),
    "admin/org worker": (MY_ORG, None),
    "user/org owner": (MY_ORG, None),
    "user/org maintainer": (MY_ORG, None),
    "user/org supervisor": (MY_ORG, ME),
    "user/org worker": (MY_ORG, ME),
    # CVAT's rule gives a worker no filter in an organization (and fails): own events only here.
    **{f"worker/org {role}": (MY_ORG, ME) for role in ORG_ROLES},
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
        with pytest.raises(ApiError) as refused:
            authorize_export(caller, request)
        assert (refused.value.status, refused.value.field) == (403, want)
    else:
        assert authorize_export(caller, request) == want


def test_non_admin_outside_their_orgs_is_refused() -> None:
    with pytest.raises(ApiError, match="org_id"):
        authorize_export(Caller(ME, "user", OTHER_ORG, None), EventFilter())


@pytest.mark.parametrize("org_id", [None, MY_ORG])
def test_no_privilege_may_post_but_not_export(org_id: int | None) -> None:
    caller = Caller(ME, None, org_id, None if org_id is None else "owner")
    check_send_events(caller)
    with pytest.raises(ApiError, match="worker privilege") as refused:
        authorize_export(caller, EventFilter())
    assert refused.value.status == 403


@pytest.mark.parametrize("read_only", [False, True])
def test_an_access_token_exports_and_downloads_but_never_posts(read_only: bool) -> None:
    caller = Caller(ME, "user", access_token=AccessToken(7, read_only))
    with pytest.raises(ApiError) as refused:
        check_send_events(caller)
    assert (refused.value.status, refused.value.field) == (403, "Authorization")
    assert authorize_export(caller, EventFilter()) == EventFilter(user_id=ME)
    check_request_access(caller, ME, "view")
    check_request_access(caller, ME, "download")
    if read_only:
        with pytest.raises(ApiError, match="read-only"):
            check_request_access(caller, ME, "cancel")
    else:
        check_request_access(caller, ME, "cancel")


@pytest.mark.parametrize("action", ["view", "cancel", "download"])
@pytest.mark.parametrize("privilege", ["admin", "user", "worker", None])
def test_only_the_owner_or_an_admin_reaches_a_request(
    action: RequestAction, privilege: Privilege | None
) -> None:
    caller = Caller(ME, privilege)
    check_request_access(caller, ME, action)
    if privilege == "admin":
        check_request_access(caller, SOMEONE_ELSE, action)
    else:
        with pytest.raises(ApiError, match="another user") as refused:
            check_request_access(caller, SOMEONE_ELSE, action)
        assert refused.value.status == 403
