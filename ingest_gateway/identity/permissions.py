"""Who may do what with events and export requests: CVAT 2.73's rules, for every identity source.

The rules are CVAT's OPA policies, read as one set whoever vouches for the caller (CVAT, the
local store, a JWT): ``cvat/apps/events/rules/events.rego`` with its table of cases
``events.csv``, ``cvat/apps/redis_handler/rules/requests.rego``,
``cvat/apps/access_tokens/rules/access_token_plugin.events.rego`` and the privilege and role
orders of ``cvat/apps/iam/rules/utils.rego`` and ``organizations.rego``:

- posting events (``send:events``): anyone, but not with a CVAT access token;
- exporting (``dump:events``): an admin, or a caller with at least the worker privilege who, in an
  organization, is a member of it;
- the filter forced onto every export: :func:`forced_columns`. A forced filter pins a column to
  the caller's own value; a request parameter naming another value for it is a 403 naming the
  parameter, any other parameter only narrows the result;
- a request (view, cancel, download its file): an admin, or its owner; a read-only access token
  cannot cancel.

Refusals are 403 :class:`ApiError`\\ s naming the parameter at fault where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import msgspec

from eventpipe.contracts import EventFilter
from eventpipe.identity import AccessToken, OrgRole, Privilege, User
from ingest_gateway.errors import ApiError
from ingest_gateway.identity.org_selection import SANDBOX as SANDBOX_CONTEXT
from ingest_gateway.identity.org_selection import OrgContext

ORG = "org_id"
USER = "user_id"

# Where a request runs: the personal sandbox, an org the caller has a role in, or an org the caller
# is not a member of (only admins get past the org context there).
SANDBOX: Final = "sandbox"
NON_MEMBER: Final = "non-member"
Context = OrgRole | Literal["sandbox", "non-member"]
# CVAT's roles with the whole organization's events (organizations.has_perm(MAINTAINER)).
_ORG_STAFF: Final[frozenset[OrgRole]] = frozenset({"owner", "maintainer"})

# What a caller may do to an export request (requests.rego's view and delete, events.rego's
# download:exported_file).
RequestAction = Literal["view", "cancel", "download"]


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: int
    privilege: Privilege | None
    # The org context of the request; None for the personal sandbox.
    org_id: int | None = None
    # The caller's role in that org; None for an admin who is not a member.
    org_role: OrgRole | None = None
    access_token: AccessToken | None = None

    @classmethod
    def of(cls, user: User, context: OrgContext = SANDBOX_CONTEXT) -> Caller:
        org_id = None if context.org is None else context.org.id
        return cls(user.id, user.privilege, org_id, context.role, user.access_token)

    @property
    def is_admin(self) -> bool:
        return self.privilege == "admin"

    @property
    def context(self) -> Context:
        if self.org_id is None:
            return SANDBOX
        return self.org_role or NON_MEMBER


def forced_columns(caller: Caller) -> frozenset[str]:
    """The columns events.rego's ``filter`` pins for an export ``caller`` may run."""
    context = caller.context
    if caller.is_admin:
        return frozenset() if context == SANDBOX else frozenset({ORG})
    if context == SANDBOX:
        return frozenset({USER})
    if context in _ORG_STAFF and caller.privilege == "user":
        return frozenset({ORG})
    # An org supervisor or worker; also a worker-privileged member of any role, for whom CVAT's
    # rule yields no filter at all (CVAT then fails with a 500): only their own events here.
    return frozenset({ORG, USER})


def check_send_events(caller: Caller) -> None:
    if caller.access_token is not None:
        raise ApiError(
            403,
            "a CVAT access token may only export events and download the export; post events "
            "with a Token, Basic credentials or a session",
            field="Authorization",
        )


def authorize_export(caller: Caller, requested: EventFilter) -> EventFilter:
    """The filter an export runs with: the request narrowed by what the caller is forced to, or
    a 403 when the caller may not export there at all."""
    if not caller.is_admin:
        if caller.privilege is None:
            raise ApiError(
                403,
                "exporting events needs the worker privilege or higher: the account is in none "
                "of CVAT's groups admin, user, worker",
            )
        if caller.context == NON_MEMBER:
            raise _forbidden(ORG)
    own = {ORG: caller.org_id, USER: caller.user_id}
    result = requested
    for column in forced_columns(caller):
        asked = getattr(requested, column)
        if asked is not None and asked != own[column]:
            raise _forbidden(column)
        result = msgspec.structs.replace(result, **{column: own[column]})
    return result


def check_request_access(caller: Caller, owner_id: int, action: RequestAction) -> None:
    """May ``caller`` do ``action`` to a request of user ``owner_id``? A 403 if not."""
    if action == "cancel" and caller.access_token is not None and caller.access_token.read_only:
        raise ApiError(
            403, "a read-only access token cannot cancel a request", field="Authorization"
        )
    if not caller.is_admin and caller.user_id != owner_id:
        raise ApiError(403, "this request belongs to another user; only they or an admin may")


def _forbidden(parameter: str) -> ApiError:
    return ApiError(403, f"you may not export events with this {parameter}", field=parameter)
