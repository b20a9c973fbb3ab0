"""The wire format on its own: every dtype survives a round trip, and no malformed message gets past
`decode` as anything but a WireError that names the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backend.ipc import wire

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frames_as_bytes(frames: list) -> list[bytes]:
    return [bytes(f) for f in frames]


@pytest.mark.parametrize("dtype", sorted(wire.DTYPES))
def test_every_dtype_round_trips_bit_exact(dtype):
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 256, size=5 * 7 * 3 * np.dtype(dtype).itemsize, dtype=np.uint8)
    array = raw.view(dtype).reshape(5, 7, 3)  # every bit pattern, NaN payloads included
    frames = wire.encode("echo", {"req": 3, "note": "é"}, {"a": array, "b": array[:, :, 0]})
    msg = wire.decode(frames_as_bytes(frames))
    assert msg.type == "echo" and msg.get("req") == 3 and msg.get("note") == "é"
    assert msg.arrays["a"].dtype == np.dtype(dtype) and msg.arrays["a"].shape == (5, 7, 3)
    assert msg.arrays["a"].tobytes() == array.tobytes()
    assert msg.arrays["b"].tobytes() == np.ascontiguousarray(array[:, :, 0]).tobytes()


def test_non_contiguous_arrays_are_sent_in_c_order():
    array = np.arange(4 * 6, dtype=np.uint16).reshape(4, 6)[:, ::2]
    msg = wire.decode(frames_as_bytes(wire.encode("echo", {}, {"x": array})))
    np.testing.assert_array_equal(msg.arrays["x"], array)


def test_arrays_are_views_of_the_received_buffers():
    """The receiver must not copy: its arrays look straight into the message's frames."""
    array = np.arange(1000, dtype=np.float32)
    frames = frames_as_bytes(wire.encode("echo", {}, {"x": array}))
    msg = wire.decode(frames)
    assert not msg.arrays["x"].flags.owndata
    assert np.shares_memory(msg.arrays["x"], np.frombuffer(frames[1], np.uint8))


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0, 4), (2, 2, 0, 1)])
def test_zero_length_arrays(shape):
    array = np.zeros(shape, np.float32)
    frames = wire.encode("echo", {}, {"empty": array})
    assert len(bytes(frames[1])) == 0
    msg = wire.decode(frames_as_bytes(frames))
    assert msg.arrays["empty"].shape == shape and msg.arrays["empty"].dtype == np.float32


def test_scalar_array_has_an_empty_shape():
    msg = wire.decode(frames_as_bytes(wire.encode("echo", {}, {"s": np.array(2.5, np.float32)})))
    assert msg.arrays["s"].shape == () and float(msg.arrays["s"]) == 2.5


def test_encoder_refuses_what_the_decoder_would():
    with pytest.raises(wire.WireError, match="float64"):
        wire.encode("echo", {}, {"x": np.zeros(3)})
    with pytest.raises(wire.WireError, match="unknown message type"):
        wire.encode("launch_missiles", {})


def test_accept_limits_message_types():
    frames = frames_as_bytes(wire.encode("pong", {}))
    with pytest.raises(wire.WireError) as e:
        wire.decode(frames, accept=wire.REQUESTS)
    assert e.value.code == "unknown_type" and "'pong'" in str(e.value)


# -- malformed messages -------------------------------------------------------------------------------
def header(**fields) -> bytes:
    return json.dumps({"v": wire.PROTOCOL_VERSION, "type": "echo", **fields}).encode()


def expect_error(parts: list, code: str, *words: str, **kw) -> wire.WireError:
    with pytest.raises(wire.WireError) as e:
        wire.decode(parts, **kw)
    assert e.value.code == code, f"expected {code}, got {e.value.code}: {e.value}"
    for word in words:
        assert word in str(e.value), f"{word!r} not named in: {e.value}"
    return e.value


# what a sane peer sends: numbers within the decoder's limits (test_bounded_json.py covers the rest)
json_scalars = (st.none() | st.booleans() | st.integers(-10**30, 10**30)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
good_dtypes = st.sampled_from(sorted(wire.DTYPES))
shapes = st.lists(st.integers(0, 6), max_size=wire.MAX_NDIM)


@FUZZ
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=8))
def test_random_frames_are_refused_with_a_wire_error(parts):
    try:
        head = json.loads(parts[0])
        assume(not (isinstance(head, dict) and head.get("v") == wire.PROTOCOL_VERSION))
    except (ValueError, RecursionError):
        pass
    error = expect_error(parts, code_of_random(parts[0]))
    assert str(error)


def code_of_random(head: bytes) -> str:
    try:
        value = json.loads(head)
    except (ValueError, RecursionError):
        return "bad_header"
    return "bad_version" if isinstance(value, dict) else "bad_header"


@FUZZ
@given(json_values.filter(lambda v: not isinstance(v, dict)))
def test_headers_that_are_not_objects(value):
    expect_error([json.dumps(value).encode()], "bad_header", "JSON object")


@FUZZ
@given(st.binary(min_size=1, max_size=200).filter(lambda b: not _is_json(b)))
def test_headers_that_are_not_json(head):
    expect_error([head], "bad_header", "JSON")


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
        return True
    except (ValueError, RecursionError):
        return False


@FUZZ
@given(json_values.filter(lambda v: v != wire.PROTOCOL_VERSION or isinstance(v, bool)))
def test_wrong_protocol_version(version):
    assume(not (isinstance(version, (int, float)) and not isinstance(version, bool) and version == 1))
    expect_error([json.dumps({"v": version, "type": "ping"}).encode()], "bad_version", "protocol version", "update")


def test_missing_protocol_version():
    expect_error([b'{"type": "ping"}'], "bad_version", "None")


@FUZZ
@given(json_values.filter(lambda v: not (isinstance(v, str) and v in wire.MESSAGE_TYPES)))
def test_unknown_message_types(kind):
    expect_error([json.dumps({"v": 1, "type": kind}).encode()], "unknown_type", "unknown message type")


@FUZZ
@given(names, good_dtypes, shapes, st.integers(-50, 50))
def test_lying_shapes(name, dtype, shape, lie):
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    actual = expected + lie
    assume(lie != 0 and actual >= 0)
    spec = {"name": name, "dtype": dtype, "shape": shape}
    expect_error([header(arrays=[spec]), bytes(actual)], "size_mismatch", repr(name), str(expected), str(actual))


@FUZZ
@given(names, st.text(max_size=12).filter(lambda d: d not in wire.DTYPES) | st.sampled_from(
    ["float64", "object", "O", "complex64", "<U8", "V8", "int64", "bool", "datetime64"]) | json_scalars)
def test_wrong_dtypes(name, dtype):
    assume(dtype not in wire.DTYPES)
    spec = {"name": name, "dtype": dtype, "shape": [2]}
    expect_error([header(arrays=[spec]), bytes(16)], "bad_dtype", repr(name), "accepted")


@FUZZ
@given(names, st.one_of(
    st.lists(st.integers(0, 4), min_size=wire.MAX_NDIM + 1, max_size=8),
    st.lists(st.integers(max_value=-1), min_size=1, max_size=3),
    st.lists(st.integers(wire.MAX_AXIS + 1, 10**30), min_size=1, max_size=3),
    st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3) | st.booleans() | st.none(), min_size=1, max_size=3),
    json_scalars,
))
def test_insane_shapes(name, shape):
    spec = {"name": name, "dtype": "uint8", "shape": shape}
    expect_error([header(arrays=[spec]), b""], "bad_shape", repr(name), "shape")


@FUZZ
@given(st.one_of(json_scalars, st.dictionaries(st.text(max_size=5), json_scalars, max_size=3)))
def test_arrays_entry_must_be_a_list_of_objects(entry):
    if isinstance(entry, dict):  # an object, but not a {name, dtype, shape}
        assume(not isinstance(entry.get("name"), str) or not entry.get("name"))
        expect_error([header(arrays=[entry]), b""], "bad_arrays", "array name")
    else:
        parts = [header(arrays=entry)]
        with pytest.raises(wire.WireError) as e:
            wire.decode(parts)
        assert e.value.code in ("bad_arrays", "array_count")


@FUZZ
@given(st.integers(0, 4), st.integers(0, 4))
def test_array_count_must_match_buffers(declared, sent):
    assume(declared != sent)
    specs = [{"name": f"a{i}", "dtype": "uint8", "shape": [1]} for i in range(declared)]
    expect_error([header(arrays=specs)] + [b"x"] * sent, "array_count", f"declares {declared}", f"carries {sent}")


def test_too_many_arrays():
    n = wire.MAX_ARRAYS + 1
    specs = [{"name": f"a{i}", "dtype": "uint8", "shape": [0]} for i in range(n)]
    expect_error([header(arrays=specs)] + [b""] * n, "bad_arrays", f"at most {wire.MAX_ARRAYS}")


def test_duplicate_array_names():
    specs = [{"name": "x", "dtype": "uint8", "shape": [1]}] * 2
    expect_error([header(arrays=specs), b"a", b"b"], "bad_arrays", "'x'", "twice")


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3 * wire.MAX_HEADER_BYTES))
def test_huge_headers(extra):
    head = header(pad="x" * (wire.MAX_HEADER_BYTES + extra))
    error = expect_error([head], "header_too_large", str(len(head)), str(wire.MAX_HEADER_BYTES))
    assert "limit" in str(error)


def test_deeply_nested_header_is_a_wire_error():
    head = b'{"v": 1, "type": "ping", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert len(head) < wire.MAX_HEADER_BYTES
    expect_error([head], "bad_header", "JSON")


def test_message_over_the_size_limit():
    parts = [header(arrays=[{"name": "x", "dtype": "uint8", "shape": [600]}]), bytes(600)]
    expect_error(parts, "too_large", "over the limit of 500", max_message_bytes=500)


def test_empty_message():
    expect_error([], "empty", "header")


@FUZZ
@given(st.lists(st.tuples(names, good_dtypes, shapes), max_size=5), st.data())
def test_any_mangled_valid_message_fails_only_with_wire_error(specs, data):
    """Take a valid message, damage one thing at random: decode either succeeds or raises WireError."""
    arrays = {}
    for name, dtype, shape in specs:
        arrays[name] = np.zeros(shape, dtype)
    parts = frames_as_bytes(wire.encode("echo", {"req": 1}, arrays))
    which = data.draw(st.integers(0, len(parts) - 1))
    mangled = bytearray(parts[which])
    action = data.draw(st.sampled_from(["flip", "truncate", "extend", "drop", "duplicate"]))
    if action == "flip" and mangled:
        i = data.draw(st.integers(0, len(mangled) - 1))
        mangled[i] ^= data.draw(st.integers(1, 255))
        parts[which] = bytes(mangled)
    elif action == "truncate":
        parts[which] = bytes(mangled[: data.draw(st.integers(0, len(mangled)))])
    elif action == "extend":
        parts[which] = bytes(mangled) + data.draw(st.binary(min_size=1, max_size=16))
    elif action == "drop":
        del parts[which]
    else:
        parts.insert(which, parts[which])
    try:
        msg = wire.decode(parts)
    except wire.WireError as e:
        assert e.code and str(e)
    else:  # the damage happened to leave a valid message: then it must describe its own buffers exactly
        for name, array in msg.arrays.items():
            assert array.dtype.name in wire.DTYPES


def test_take_files_get_the_umasks_permissions_not_owner_only(tmp_path):
    import subprocess
    import sys

    # a fresh process: the module reads the umask once, at import
    code = ("import os, sys; os.umask(0o022); from backend.ipc.take import atomic_write_bytes; "
            "atomic_write_bytes(sys.argv[1], b'x')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.png")], check=True)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary left behind
