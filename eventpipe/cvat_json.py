"""The two JSON text forms CVAT stores in the ``payload`` column, so that a row reads the same
whether CVAT or eventpipe wrote it.

- A client event's payload is what CVAT's event serializer writes: the client's text, trimmed of
  white space as Django REST framework trims every text field, parsed and written again with
  Python's ``json`` module at its defaults (``", "`` and ``": "`` separators,
  keys in the order sent, non-ASCII escaped, floats as ``repr``, ``NaN`` and ``Infinity`` kept).
  Python's own module does it, so every corner (big integers, duplicate keys, lone surrogates,
  exponents) comes out as CVAT's does.
- An event CVAT's server makes itself (``send:working_time``) carries a payload rendered by Django
  REST framework's ``JSONRenderer``: compact separators, non-ASCII as is, and U+2028 / U+2029
  escaped for JavaScript.
"""

from __future__ import annotations

import json
from _json import encode_basestring_ascii, make_encoder, make_scanner  # json's C parts
from typing import Final

import msgspec

# What the serializer stores for an event sent without a payload: the text of an empty object.
EMPTY_PAYLOAD: Final = "{}"

# json.loads and json.dumps set up their C scanner and encoder anew on every call, which is most
# of their cost on a short payload (2-5 us each on the gateway's hot path). The same scanner and
# encoder, set up once with json.loads's and json.dumps's defaults, give the same text; a test
# compares the two on generated payloads.
# (typeshed types the scanner's settings object as a scanner; CPython reads the decoder's.)
_scan_once: Final = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
# msgspec parses a payload in a quarter of the scanner's time and to the same value (integers of
# any size exact, duplicate keys keeping the last value at the first's place); what it refuses
# (NaN, the infinities, lone surrogates, malformed text) goes to the scanner, which takes it or
# refuses it as CVAT does. tests/unit/test_cvat_json.py compares them on generated payloads.
_parse: Final = msgspec.json.Decoder().decode
# No markers (the circular check): a parsed document cannot be circular.
_encode: Final = make_encoder(
    None, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False, True
)


def client_payload(text: str) -> tuple[str, object]:
    """The payload as CVAT stores it, ``json.dumps(json.loads(text.strip()))``, and the parsed
    value (for limits on its shape).

    Raises :class:`ValueError` (``json.JSONDecodeError`` among them) when ``text`` is not JSON,
    and :class:`RecursionError` when it nests deeper than the interpreter can parse.
    """
    # What the web client sends for an event logged without payload fields (user:activity).
    if text == EMPTY_PAYLOAD:
        return EMPTY_PAYLOAD, {}
    document = text.strip()
    try:
        value = _parse(document)
    except (msgspec.DecodeError, UnicodeEncodeError):
        # UnicodeEncodeError: msgspec reads text as UTF-8, which a lone surrogate is not.
        value = _python_parse(document)
    # json.dumps writes a lone string without the encoder.
    if isinstance(value, str):
        return encode_basestring_ascii(value), value
    return "".join(_encode(value, 0)), value


def _python_parse(document: str) -> object:
    """``json.loads(document)``, with the scanner set up once."""
    try:
        value, end = _scan_once(document, 0)
    except StopIteration as stop:
        raise json.JSONDecodeError("Expecting value", document, stop.value) from None
    if end != len(document):
        raise json.JSONDecodeError("Extra data", document, end)
    return value


_COMPACT: Final = (",", ":")


def server_payload(value: object) -> str:
    """``value`` as Django REST framework's ``JSONRenderer`` writes it (CVAT's settings keep its
    defaults: compact, Unicode as is)."""
    text = json.dumps(value, ensure_ascii=False, separators=_COMPACT)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
