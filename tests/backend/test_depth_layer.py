"""The depth layer the stage declares stores its depth faithfully in the take's 16-bit PNG."""

import numpy as np
import pytest

from backend.imageio import decode_layer, encode_layer
from backend.params import parse_params
from backend.stages.base import get_stage


@pytest.mark.parametrize("values,lo,hi", [({}, 0.0, 1.0), ({"output": "metres", "near": 0.5, "far": 30.0}, 0.5, 30.0)])
def test_declared_range_round_trips_through_png16(values, lo, hi):
    stage = get_stage("depth")
    layer = stage.layers(parse_params(stage.Params, values), (64, 48))["depth"]
    assert (layer.format, layer.near, layer.far) == ("png16", lo, hi)
    depth = np.random.default_rng(0).uniform(lo, hi, (48, 64)).astype(np.float32)
    back = decode_layer(layer, encode_layer(layer, depth))
    assert np.abs(back - depth).max() <= (hi - lo) / 65535 * 0.51 + 1e-6
