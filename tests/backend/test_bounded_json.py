"""The bounded JSON decoder and the error redaction: limits hold, ordinary values pass unchanged."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.ipc import bounded_json, wire
from backend.ipc.redact import redact


@pytest.mark.parametrize("text, words", [
    ('{"n": ' + "7" * 5000 + "}", ("integer", "5000")),       # Python's int-digit limit: a plain ValueError
    ("[" * 990 + "]" * 990, ("nesting", "32")),                 # the decoder's recursion: RecursionError
    ("[" * 100_000 + "]" * 100_000, ("nesting",)),
    ('{"a": NaN}', ("NaN",)),
    ('{"a": -Infinity}', ("Infinity",)),
    ('{"a": 1e999}', ("out of range",)),
    ('{"a": 0.' + "1" * 60 + "}", ("number",)),
    ('{"a": ', ("JSON",)),
])
def test_each_hostile_text_is_one_error_naming_the_limit(text, words):
    with pytest.raises(bounded_json.BoundedJSONError) as e:
        bounded_json.loads(text)
    for word in words:
        assert word in str(e.value)
    assert len(str(e.value)) < 300


def test_invalid_utf8_is_an_error():
    with pytest.raises(bounded_json.BoundedJSONError):
        bounded_json.loads(b'{"a": "\xff"}')


def test_the_depth_limit_is_exact():
    assert bounded_json.loads("[" * 32 + "]" * 32) is not None
    with pytest.raises(bounded_json.BoundedJSONError):
        bounded_json.loads("[" * 33 + "]" * 33)
    assert bounded_json.depth({"a": [1, {"b": []}]}) == 4 and bounded_json.depth(5) == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**18, 10**18) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_ordinary_values_decode_as_the_standard_decoder_does(value):
    text = json.dumps(value)
    assert bounded_json.loads(text) == json.loads(text)


def test_a_wire_header_with_a_huge_integer_or_deep_nesting_is_a_wire_error():
    for field in ("1" * 5000, "[" * 990 + "]" * 990):
        head = ('{"v": 1, "type": "ping", "req": ' + field + "}").encode()
        with pytest.raises(wire.WireError) as e:
            wire.decode([head])
        assert e.value.code == "bad_header"


def test_redact_names_store_files_relative_and_hides_other_absolute_paths():
    text = ("cannot read /srv/dstage/store/jobs/ab.json: also '/home/ann/models.json', "
            "C:\\Users\\ann\\key.key_secret; tcp://127.0.0.1:5555 and 3/4 of frame 0012.png")
    out = redact(text, "/srv/dstage/store")
    assert "store/jobs/ab.json" in out and "…/models.json" in out and "…/key.key_secret" in out
    assert "/srv" not in out and "/home" not in out and "ann\\" not in out and "ann/" not in out
    assert "tcp://127.0.0.1:5555" in out and "3/4" in out and "0012.png" in out
