"""Which organization a request names, and what acting in one means: CVAT's selection rules
(``X-Organization: <slug>``, ``?org=<slug>`` or ``?org_id=<int>``; none of them is the caller's
personal sandbox). Who resolves a selection: :mod:`ingest_gateway.identity.org_context` from the
identity store or a JWT, :mod:`ingest_gateway.identity.cvat_provider` from CVAT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from eventpipe.identity import Org, OrgRole
from ingest_gateway.errors import ApiError
from ingest_gateway.operations import query_parameter
from ingest_gateway.params import ID_SCHEMA, SLUG_SCHEMA, parse_id, parse_slug


@dataclass(frozen=True, slots=True)
class OrgSelector:
    """The organization a request names, and the parameter that named it (for error messages)."""

    source: str
    slug: str | None = None
    org_id: int | None = None

    def describe(self) -> str:
        return repr(self.slug) if self.slug is not None else f"with id {self.org_id}"

    def not_a_member(self) -> ApiError:
        """The 403 of a caller who is no member of the organization this names."""
        return ApiError(
            403, f"you are not a member of organization {self.describe()}", field=self.source
        )

    def does_not_exist(self) -> ApiError:
        """CVAT's 404 for an organization that does not exist, whoever asks."""
        return ApiError(404, f"organization {self.describe()} does not exist", field=self.source)


@dataclass(frozen=True, slots=True)
class OrgContext:
    """``org`` None is the personal sandbox; ``role`` None is an admin acting in a foreign org."""

    org: Org | None = None
    role: OrgRole | None = None


SANDBOX = OrgContext()


def parse_org_selector(
    header: str | None, org: str | None, org_id: str | None
) -> OrgSelector | None:
    """The selector the three request parameters describe, None for the sandbox, or a 400.

    Which parameters are present is judged before their values, as CVAT does: ``org_id=``
    beside ``org`` is refused even though each alone would mean the sandbox.
    """
    if org_id is not None and (org is not None or header is not None):
        raise ApiError(
            400,
            "use either org_id or the org slug (org / X-Organization), not both",
            field="org_id",
        )
    if org is not None and header is not None and org != header:
        raise ApiError(
            400, f"org={org!r} disagrees with X-Organization: {header!r}; send one", field="org"
        )
    slug = parse_slug(org, "org") or parse_slug(header, "X-Organization")
    if slug is not None:
        return OrgSelector("org" if org else "X-Organization", slug=slug)
    selected_id = parse_id(org_id, "org_id")
    return None if selected_id is None else OrgSelector("org_id", org_id=selected_id)


# CVAT's rules for naming the organization, which a schema's parameters cannot express alone:
# org_id beside org or X-Organization is a 400 (even when one is empty), so is an org that
# disagrees with X-Organization; an empty or absent selector means the personal sandbox.
_ORG_RULES: Final = (
    "Not together with org_id (400); an empty value or none means the personal sandbox."
)
# The parameters parse_org_selector reads, as every operation acting in an organization takes them.
ORG_PARAMETERS: Final = [
    {
        "name": "X-Organization",
        "in": "header",
        "required": False,
        "schema": SLUG_SCHEMA,
        "description": f"the organization slug to act in. {_ORG_RULES}",
    },
    query_parameter(
        "org",
        SLUG_SCHEMA,
        "the organization slug (instead of X-Organization; if both are sent they must be "
        f"equal, else 400). {_ORG_RULES}",
    ),
    query_parameter(
        "org_id",
        ID_SCHEMA,
        "the organization id; not together with org or X-Organization, even an empty one (400)",
    ),
]
