"""The caller's address recorded on its events: Django REST framework's rule, as CVAT runs it."""

from __future__ import annotations

import pytest

from ingest_gateway.events.caller_address import caller_address


@pytest.mark.parametrize(
    ("forwarded_for", "peer", "num_proxies", "expected"),
    [
        # No proxy counted: the connection's peer, whatever the header claims.
        ("198.51.100.7", "10.0.0.2", 0, "10.0.0.2"),
        (None, "10.0.0.2", 0, "10.0.0.2"),
        # One proxy (CVAT's compose: Traefik) appended the address it saw: the last entry.
        ("203.0.113.9, 198.51.100.7", "10.0.0.2", 1, "198.51.100.7"),
        # Two proxies: the second entry from the right; what the client made up comes before.
        ("spoofed, 203.0.113.9 ,10.0.0.3", "10.0.0.2", 2, "203.0.113.9"),
        # Fewer entries than proxies: the leftmost.
        ("203.0.113.9", "10.0.0.2", 3, "203.0.113.9"),
        # Proxies counted but no header: the peer.
        (None, "10.0.0.2", 1, "10.0.0.2"),
        # An empty result is no address: CVAT then leaves remote_addr out.
        ("", "10.0.0.2", 1, None),
        (None, None, 0, None),
    ],
)
def test_address_is_drf_get_ident_with_cvat_num_proxies(
    forwarded_for: str | None, peer: str | None, num_proxies: int, expected: str | None
) -> None:
    assert caller_address(forwarded_for, peer, num_proxies) == expected
