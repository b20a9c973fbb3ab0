"""Content digests of frames: the same arrays give the same digest on both sides of the wire."""

from __future__ import annotations

import hashlib
import json

import numpy as np


def digest_arrays(arrays: dict[str, np.ndarray]) -> str:
    """A hex digest over the names, dtypes, shapes and bytes of a frame's arrays."""
    h = hashlib.blake2b(digest_size=20)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, array.dtype.name, list(array.shape)]).encode())
        h.update(memoryview(array).cast("B") if array.size else b"")
    return h.hexdigest()


def digest_json(value) -> str:
    """A hex digest of a JSON value in canonical form (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
