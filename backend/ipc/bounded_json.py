"""JSON decoding with limits, for text a stranger sent: depth, integer and float sizes, constants.

The standard decoder has three ways to fail that are not JSONDecodeError: an integer of more than 4,300
digits raises a plain ValueError, nesting near the recursion limit raises RecursionError, and NaN or
Infinity decode quietly into floats that break any arithmetic done with them. Here each is one
BoundedJSONError; the callers turn it into their own error type.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 40   # an int64 has 19 digits; a double's shortest repr fits easily


class BoundedJSONError(ValueError):
    pass


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise BoundedJSONError(f"an integer of {len(text)} characters is over the limit of {MAX_NUMBER_CHARS}")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise BoundedJSONError(f"a number of {len(text)} characters is over the limit of {MAX_NUMBER_CHARS}")
    value = float(text)
    if not math.isfinite(value):
        raise BoundedJSONError(f"{text} is out of range for a number; send finite numbers")
    return value


def _constant(name: str) -> Any:
    raise BoundedJSONError(f"{name} is not JSON; send finite numbers")


def depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (0 for a scalar), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        todo.extend((child, level + 1) for child in children)
    return deepest


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode `data`; raises BoundedJSONError (with a message for the sender) on anything outside the limits."""
    try:
        value = json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except BoundedJSONError:
        raise
    except RecursionError:
        raise BoundedJSONError(f"nesting is deeper than the limit of {max_depth}") from None
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise BoundedJSONError(f"not valid UTF-8 JSON ({type(e).__name__}: {str(e)[:120]})") from None
    if depth(value) > max_depth:
        raise BoundedJSONError(f"nesting is deeper than the limit of {max_depth}")
    return value
