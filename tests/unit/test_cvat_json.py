"""The payload forms CVAT stores, compared with what CVAT's own code computes on the same input:
``json.dumps(json.loads(text))`` for a client's payload, Django REST framework's JSONRenderer
settings for a server's."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventpipe.cvat_json import client_payload, server_payload

# Any string, lone surrogates included (hypothesis leaves them out unless asked).
any_text = st.text(st.characters(exclude_categories=()))

# Every value JSON text can hold as Python reads it: any string, any int, any float (NaN and the
# infinities too), nested.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=20,
)


def as_cvat_stores(text: str) -> str | type[Exception]:
    """What CVAT's serializer does (after its field trimmed the text): the stored text, or the
    kind of error."""
    try:
        return json.dumps(json.loads(text.strip()))
    except (ValueError, RecursionError) as exc:
        return type(exc)


def as_eventpipe_stores(text: str) -> str | type[Exception]:
    try:
        return client_payload(text)[0]
    except (ValueError, RecursionError) as exc:
        return type(exc)


@given(json_values, st.sampled_from([None, (",", ":"), (" , ", " : ")]), st.booleans())
def test_client_payload_is_json_dumps_of_json_loads(
    value: object, separators: tuple[str, str] | None, ascii_only: bool
) -> None:
    # The same document as clients may write it: compact or not, escaped or not, with blanks.
    text = f" \n\u00a0{json.dumps(value, separators=separators, ensure_ascii=ascii_only)}\t "
    assert as_eventpipe_stores(text) == as_cvat_stores(text)


@given(st.text(alphabet=' \t\n\r\u00a0{}[]":,.-+0123456789eEaflnrstuNIy\\', max_size=30))
def test_text_that_is_not_json_is_refused_as_cvat_refuses_it(text: str) -> None:
    stored = as_eventpipe_stores(text)
    expected = as_cvat_stores(text)
    assert stored == expected or (isinstance(stored, type) and isinstance(expected, type))


def test_a_lone_surrogate_as_sent_is_kept_as_python_keeps_it() -> None:
    # Python's parser takes a lone surrogate character in the text (a client in Python can send
    # one); msgspec, reading UTF-8, cannot.
    text = '{"name": "a\ud800b"}'
    assert as_eventpipe_stores(text) == as_cvat_stores(text) == '{"name": "a\\ud800b"}'


def test_the_parsed_value_comes_back_for_the_shape_limits() -> None:
    stored, value = client_payload('{"a": [1, {"b": NaN}]}')
    assert stored == '{"a": [1, {"b": NaN}]}'
    assert isinstance(value, dict) and math.isnan(value["a"][1]["b"])


def test_deep_nesting_is_a_recursion_error_as_in_python() -> None:
    with pytest.raises(RecursionError):
        client_payload("[" * 100_000 + "]" * 100_000)


def test_server_payload_is_drf_json_renderer() -> None:
    # Compact, Unicode as is, U+2028/U+2029 escaped for JavaScript.
    value = {"working_time": 5, "request": {"id": "x", "user_agent": "é\u2028\u2029\n"}}
    assert server_payload(value) == (
        '{"working_time":5,"request":{"id":"x","user_agent":"é\\u2028\\u2029\\n"}}'
    )
