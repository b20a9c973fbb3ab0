"""Parameters are dataclasses validated at the edge, with messages that name the field and what it accepts.

A field may carry metadata: `choices` (accepted values), `min`/`max` (inclusive bounds) and `help`.
`parse_params` builds a dataclass from a dict of JSON values or of `--set key=value` strings, checks
every field, then calls the dataclass's own `validate()` for rules that span fields.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any


class ParamError(ValueError):
    """A bad parameter. `field` names it; the message says what is accepted."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def param(default: Any = dataclasses.MISSING, *, choices=None, min=None, max=None, help: str = "", **kw):
    """A dataclass field with validation metadata."""
    meta = {"choices": choices, "min": min, "max": max, "help": help}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(name, value, arg)
            except ParamError as e:
                errors.append(str(e))
        raise ParamError(name, f"cannot read {value!r} as {hint}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ParamError(name, f"expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ParamError(name, f"expected an integer, got {value!r}")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ParamError(name, f"expected an integer, got {value!r}") from None
        if as_float != as_float or as_float in (float("inf"), float("-inf")):
            raise ParamError(name, f"expected a finite integer, got {value!r}")
        if as_float != int(as_float):
            raise ParamError(name, f"expected an integer, got {value!r}")
        return int(as_float)
    if hint is float:
        if isinstance(value, bool):
            raise ParamError(name, f"expected a number, got {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ParamError(name, f"expected a number, got {value!r}") from None
        if out != out or out in (float("inf"), float("-inf")):
            raise ParamError(name, f"expected a finite number, got {value!r}")
        return out
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ParamError(name, f"expected text, got {value!r}")
        return str(value)
    if origin in (list, tuple):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as e:
                    raise ParamError(name, f"expected a list, got {value!r} ({e})") from None
            else:
                value = [v for v in text.split(",") if v.strip()] if text else []
        if not isinstance(value, (list, tuple)):
            raise ParamError(name, f"expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(f"{name}[{i}]", v, item) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise ParamError(name, f"expected a JSON object, got {value!r} ({e})") from None
        if not isinstance(value, dict):
            raise ParamError(name, f"expected an object, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise ParamError(name, f"expected a JSON object, got {value!r} ({e})") from None
        if not isinstance(value, dict):
            raise ParamError(name, f"expected an object, got {value!r}")
        return parse_params(hint, value, prefix=f"{name}.")
    return value


def parse_params(cls: type, values: dict[str, Any] | None = None, *, prefix: str = ""):
    """Build and validate a parameters dataclass from JSON values or `key=value` strings."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParamError(
            prefix + unknown[0], f"unknown parameter; {cls.__name__} accepts {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name not in values:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamError(prefix + name, "is required")
            continue
        value = _coerce(prefix + name, values[name], hints[name])
        check_field(prefix + name, value, f.metadata)
        kwargs[name] = value
    params = cls(**kwargs)
    for name, f in fields.items():  # defaults are checked too: a wrong default is a bug worth a clear message
        if name not in values:
            check_field(prefix + name, getattr(params, name), f.metadata)
    validate = getattr(params, "validate", None)
    if validate is not None:
        validate()
    return params


def check_field(name: str, value: Any, meta: typing.Mapping) -> None:
    choices, lo, hi = meta.get("choices"), meta.get("min"), meta.get("max")
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if v is None:
            continue
        if choices is not None and v not in choices:
            raise ParamError(name, f"{v!r} is not accepted; choose one of {', '.join(map(str, choices))}")
        if lo is not None and v < lo:
            raise ParamError(name, f"{v} is below the minimum {lo}")
        if hi is not None and v > hi:
            raise ParamError(name, f"{v} is above the maximum {hi}")


def params_to_json(params) -> dict:
    """The canonical JSON form of a parameters dataclass (used for job identity and take.json)."""
    return json.loads(json.dumps(dataclasses.asdict(params), sort_keys=True))


def describe(cls: type, prefix: str = "") -> list[dict]:
    """One entry per field (name, type, default, choices, bounds, help) for `dstage stages` and the add-on.

    Nested parameter groups are listed field by field under dotted names (`key.screen`), which is also
    how `dstage run --set key.screen=blue` names them.
    """
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += describe(hints[f.name], prefix=f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        )
        entry = {"name": prefix + f.name, "type": str(hints[f.name]).replace("typing.", ""), "default": default}
        entry.update({k: v for k, v in f.metadata.items() if v not in (None, "")})
        out.append(entry)
    return out
