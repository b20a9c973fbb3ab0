"""Parameters validated at the edge: values from JSON or `--set` strings, messages that name the field."""

import json
from dataclasses import dataclass, field

import pytest

from backend.params import ParamError, describe, param, params_to_json, parse_params
from backend.stages.base import all_stages


@dataclass
class Inner:
    feather: float = param(0.0, min=0.0, max=10.0, help="soft edge")


@dataclass
class Outer:
    mode: str = param("a", choices=("a", "b"))
    count: int = param(3, min=1)
    flag: bool = param(False)
    names: list[str] = param([])
    inner: Inner = field(default_factory=Inner)


def test_strings_from_the_command_line_become_typed_values():
    p = parse_params(Outer, {"count": "7", "flag": "yes", "names": "x,y", "inner": {"feather": "2.5"}})
    assert (p.count, p.flag, p.names, p.inner.feather) == (7, True, ["x", "y"], 2.5)


@pytest.mark.parametrize("values, field_name, words", [
    ({"mode": "c"}, "mode", "choose one of a, b"),
    ({"count": 0}, "count", "below the minimum 1"),
    ({"count": "2.5"}, "count", "expected an integer"),
    ({"flag": "maybe"}, "flag", "true or false"),
    ({"inner": {"feather": 11}}, "inner.feather", "above the maximum 10"),
    ({"colour": 1}, "colour", "unknown parameter; Outer accepts count, flag, inner, mode, names"),
    ({"inner": {"feathr": 1}}, "inner.feathr", "unknown parameter"),
])
def test_each_bad_value_names_its_field_and_what_is_accepted(values, field_name, words):
    with pytest.raises(ParamError) as e:
        parse_params(Outer, values)
    assert e.value.field == field_name and words in str(e.value)


def test_canonical_json_fills_defaults_so_one_job_has_one_identity():
    assert params_to_json(parse_params(Outer, {})) == params_to_json(parse_params(Outer, {"count": "3"}))


def test_every_stage_describes_its_parameters_as_json_with_dotted_groups():
    described = {name: describe(stage.Params) for name, stage in all_stages().items()}
    json.dumps(described)  # the 'stages' reply travels as JSON
    names = {p["name"] for p in described["matte"]}
    assert {"key.screen", "refine.feather", "method"} <= names
