"""Who posted a request, as CVAT's server records it on the request's events (``remote_addr``).

CVAT takes the address Django REST framework's throttles identify a caller by
(``BaseThrottle.get_ident``), with ``NUM_PROXIES`` set from ``CVAT_NUM_PROXIES`` plus one for the
nginx inside CVAT's container. With a count of proxies N, DRF trusts the N-th address from the
right of ``X-Forwarded-For`` (the one the outermost trusted proxy appended); with N = 0, or
without the header, it takes the connection's peer. The gateway applies the same rule with
``EVENTPIPE_NUM_PROXIES``, the proxies in front of the gateway itself.

The peer is the address uvicorn reports, as it is in CVAT: uvicorn replaces it with the
``X-Forwarded-For`` address only when the connection comes from one of ``FORWARDED_ALLOW_IPS``
(127.0.0.1 by default).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request

FORWARDED_FOR: Final = "x-forwarded-for"


def joined_header(request: Request, name: str) -> str | None:
    """Every value of header ``name`` joined by commas, as Django reads a repeated header; None
    when it is absent."""
    values = request.headers.getlist(name)
    return ",".join(values) if values else None


def caller_address(forwarded_for: str | None, peer: str | None, num_proxies: int) -> str | None:
    """DRF's ``get_ident`` with ``NUM_PROXIES = num_proxies``; None where CVAT records none (an
    empty result: CVAT leaves ``remote_addr`` out then)."""
    if num_proxies == 0 or forwarded_for is None:
        address = peer
    else:
        hops = forwarded_for.split(",")
        address = hops[-min(num_proxies, len(hops))].strip()
    return address or None


def remote_addr(request: Request, num_proxies: int) -> str | None:
    peer = request.client.host if request.client else None
    return caller_address(joined_header(request, FORWARDED_FOR), peer, num_proxies)
