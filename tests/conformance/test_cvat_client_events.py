"""CVAT's client events contract, read from its files at run time: the scopes its serializer
allows from clients, and the scope it computes working time from but never stores."""

from __future__ import annotations

import ast

from eventpipe.contracts import CLIENT_SCOPES, USER_ACTIVITY_SCOPE
from tests.conformance.cvat_working_time import cvat_constants, parsed

SERIALIZERS = "cvat/apps/events/serializers.py"
VIEWS = "cvat/apps/events/views.py"


def cvat_allowed_scopes() -> dict[str, set[str]]:
    """``ClientEventsSerializer.ALLOWED_SCOPES`` by source, names resolved from const.py."""
    constants = cvat_constants()
    serializer = next(
        node
        for node in ast.walk(parsed(SERIALIZERS))
        if isinstance(node, ast.ClassDef) and node.name == "ClientEventsSerializer"
    )
    allowed = next(
        node.value
        for node in serializer.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "ALLOWED_SCOPES" for t in node.targets)
    )
    assert isinstance(allowed, ast.Dict)
    allowed_scopes: dict[str, set[str]] = {}
    for key, scopes in zip(allowed.keys, allowed.values, strict=True):
        assert key is not None and isinstance(scopes, ast.Call)
        [elements] = scopes.args
        assert isinstance(elements, ast.Tuple | ast.List)
        allowed_scopes[ast.literal_eval(key)] = {
            str(constants[e.id]) if isinstance(e, ast.Name) else ast.literal_eval(e)
            for e in elements.elts
        }
    return allowed_scopes


def test_client_scopes_are_exactly_cvats() -> None:
    allowed = cvat_allowed_scopes()
    # Events from any other source are refused, here as in CVAT.
    assert set(allowed) == {"client"}
    cvat = allowed["client"]
    assert set(CLIENT_SCOPES) == cvat, (
        f"missing here: {sorted(cvat - CLIENT_SCOPES)}; not CVAT's: {sorted(CLIENT_SCOPES - cvat)}"
    )


def test_the_scopes_not_stored_are_those_cvats_view_skips() -> None:
    # views.py's create: `if event["scope"] == X: continue` before an event is logged.
    constants = cvat_constants()
    create = next(
        node
        for node in ast.walk(parsed(VIEWS))
        if isinstance(node, ast.FunctionDef) and node.name == "create"
    )
    skipped = {
        str(constants[comparator.id])
        for node in ast.walk(create)
        if isinstance(node, ast.If)
        and isinstance(node.body[0], ast.Continue)
        and isinstance(node.test, ast.Compare)
        for comparator in node.test.comparators
        if isinstance(comparator, ast.Name)
    }
    assert skipped == {USER_ACTIVITY_SCOPE}
