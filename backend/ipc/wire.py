"""The wire format: one multipart ZeroMQ message per request or event.

    part 0     JSON header: {"v": 1, "type": ..., ids and parameters ..., "arrays": [{name, dtype, shape}, ...]}
    part 1..n  one raw C-contiguous buffer per declared array, in order

except that between peers on one machine that agreed to it (backend/ipc/shm.py), an array of THRESHOLD bytes
or more goes into the sender's shared-memory arena instead: its entry carries
"shm": {arena, slot, offset, nbytes} and it has no buffer part.

No pickle, ever. `decode` trusts nothing: it checks the protocol version, the message type, the header's
size and shape, each dtype against a whitelist, each shape, and that every buffer holds exactly
prod(shape) * itemsize bytes (for shared memory: that the reference names the arena attached for this
peer and lies inside it), before any array is built. Anything else raises WireError, whose code and
message go back to the sender as an error event.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from backend.ipc import bounded_json

PROTOCOL_VERSION = 1

# Client -> server requests and server -> client events.
REQUESTS = frozenset({"hello", "ping", "status", "echo", "submit", "input", "fetch", "cancel", "heartbeat", "stages"})
EVENTS = frozenset({
    "welcome", "pong", "status", "echo", "accepted", "stored", "queued", "started", "progress", "frame",
    "result", "done", "cancelled", "error", "heartbeat", "stages",
})
MESSAGE_TYPES = REQUESTS | EVENTS

DTYPES = frozenset({"uint8", "uint16", "int32", "float16", "float32"})
MAX_HEADER_BYTES = 256 * 1024
MAX_ARRAYS = 16
MAX_NDIM = 4
# Per axis, not per image side: an encoded PNG travels as one long uint8 axis. The real bound is the
# buffer size check (nbytes == prod(shape) * itemsize) under the message size limit.
MAX_AXIS = (1 << 31) - 1
# A 4K float32 RGBA frame is 133 MB; leave room for several layers, refuse anything wilder.
MAX_MESSAGE_BYTES = 1 << 30


class WireError(ValueError):
    """A message that breaks the format. `code` is machine-readable, the message says what and how to fix."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Message:
    type: str
    header: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.header.get(key, default)


class Frames(list):
    """A message's frames, plus the shared-memory slots it filled (to free them if it is never sent)."""

    slots: tuple = ()
    shared_bytes = 0


def encode(type: str, fields: dict[str, Any] | None = None, arrays: dict[str, np.ndarray] | None = None,
           *, shm=None) -> Frames:
    """Frames for one message. Arrays go out as their own buffers, so pyzmq can send them without copying,
    or, with `shm` (an shm.Outbox the peer attached), big ones are copied into shared memory."""
    if type not in MESSAGE_TYPES:
        raise WireError("unknown_type", f"cannot send unknown message type {type!r}")
    header = {"v": PROTOCOL_VERSION, "type": type, **(fields or {})}
    parts = Frames([None])
    specs = []
    slots = []
    ready = {}
    for name, array in (arrays or {}).items():  # all checked before any goes into shared memory
        array = np.asarray(array)
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)  # (only when needed: it turns a 0-d array into 1-d)
        if array.dtype.name not in DTYPES:
            raise WireError("bad_dtype", f"array {name!r} has dtype {array.dtype}; the wire carries {sorted(DTYPES)}")
        ready[name] = array
    for name, array in ready.items():
        spec = {"name": name, "dtype": array.dtype.name, "shape": list(array.shape)}
        ref = shm.put(array) if shm is not None and array.nbytes >= shm.threshold else None
        if ref is not None:
            spec["shm"] = ref
            slots.append(ref["slot"])
            parts.shared_bytes += array.nbytes
        else:
            parts.append(memoryview(array).cast("B") if array.size else b"")
        specs.append(spec)
    header["arrays"] = specs
    parts.slots = tuple(slots)
    parts[0] = json.dumps(header, separators=(",", ":")).encode()
    return parts


def error_frames(code: str, message: str, **ids: Any) -> list:
    return encode("error", {"code": code, "message": message, **ids})


def _buffer(part: Any) -> memoryview:
    if hasattr(part, "buffer"):  # zmq.Frame
        return part.buffer
    return memoryview(part)


def decode(
    parts: Sequence[Any],
    *,
    accept: Iterable[str] = MESSAGE_TYPES,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    shm=None,
) -> Message:
    """Validate and decode one message's frames (bytes or zmq.Frame). Raises WireError. `shm` is the peer's
    arena (shm.Inbox) when this connection agreed to shared memory; without it, shared-memory refs are refused."""
    if not parts:
        raise WireError("empty", "empty message: expected a JSON header frame")
    buffers = [_buffer(p) for p in parts]
    total = sum(b.nbytes for b in buffers)
    if total > max_message_bytes:
        raise WireError(
            "too_large",
            f"message of {total} bytes is over the limit of {max_message_bytes}; send smaller frames or raise the limit",
        )
    head = buffers[0]
    if head.nbytes > MAX_HEADER_BYTES:
        raise WireError("header_too_large", f"header of {head.nbytes} bytes is over the limit of {MAX_HEADER_BYTES}")
    try:
        header = bounded_json.loads(bytes(head))
    except bounded_json.BoundedJSONError as e:
        raise WireError("bad_header", f"header refused as JSON: {e}") from None
    if not isinstance(header, dict):
        raise WireError("bad_header", f"header must be a JSON object, got {type(header).__name__}")
    version = header.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:  # JSON true == 1 in Python; refuse it
        raise WireError(
            "bad_version",
            f"protocol version {version!r} is not supported (this side speaks {PROTOCOL_VERSION}); "
            "update the add-on and the backend to the same release",
        )
    kind = header.get("type")
    accept = frozenset(accept)
    if not isinstance(kind, str) or kind not in accept:
        raise WireError("unknown_type", f"unknown message type {kind!r}; expected one of {', '.join(sorted(accept))}")
    specs = header.pop("arrays", [])
    if not isinstance(specs, list) or len(specs) > MAX_ARRAYS:
        raise WireError("bad_arrays", f"'arrays' must be a list of at most {MAX_ARRAYS} {{name, dtype, shape}} entries")
    checked = [_check_spec(spec) for spec in specs]  # each entry first: the count below trusts their form
    inline = [s for s in specs if "shm" not in s]
    if len(inline) != len(buffers) - 1:
        raise WireError(
            "array_count", f"header declares {len(inline)} inline arrays but the message carries {len(buffers) - 1} buffers"
        )
    shared = sum(math.prod(shape) * np.dtype(dtype).itemsize
                 for spec, (_, dtype, shape) in zip(specs, checked) if "shm" in spec)
    if shared and total + shared > max_message_bytes:
        raise WireError(
            "too_large",
            f"message of {total + shared} bytes (shared memory included) is over the limit of {max_message_bytes}",
        )
    arrays = {}
    inline_buffers = iter(buffers[1:])
    for spec, (name, dtype, shape) in zip(specs, checked):
        expected = math.prod(shape) * np.dtype(dtype).itemsize
        if name in arrays:
            raise WireError("bad_arrays", f"array name {name!r} appears twice")
        if "shm" in spec:
            if shm is None:
                raise WireError("shm_unavailable", f"array {name!r} refers to shared memory, but this connection has "
                                                   "none; send it inline (say hello again to renegotiate)")
            arrays[name] = shm.view(name, spec["shm"], dtype, shape, expected)
            continue
        buf = next(inline_buffers)
        if buf.nbytes != expected:
            raise WireError(
                "size_mismatch",
                f"array {name!r} declares {dtype}{tuple(shape)} = {expected} bytes but its buffer has {buf.nbytes}",
            )
        arrays[name] = np.frombuffer(buf, dtype=dtype).reshape(shape) if expected else np.zeros(shape, dtype)
    header.pop("v", None)
    header.pop("type", None)
    return Message(kind, header, arrays)


def _check_spec(spec: Any) -> tuple[str, str, list[int]]:
    if not isinstance(spec, dict):
        raise WireError("bad_arrays", f"array entry must be an object {{name, dtype, shape}}, got {spec!r:.80}")
    name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise WireError("bad_arrays", f"array name must be a string of 1-64 characters, got {name!r:.80}")
    if dtype not in DTYPES:
        raise WireError("bad_dtype", f"array {name!r} has dtype {dtype!r:.40}; accepted: {', '.join(sorted(DTYPES))}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_AXIS for n in shape)
    ):
        raise WireError(
            "bad_shape",
            f"array {name!r} has shape {shape!r:.80}; expected a list of at most {MAX_NDIM} integers in 0..{MAX_AXIS}",
        )
    return name, dtype, shape
