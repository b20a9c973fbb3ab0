"""The optional RAFT flow path (torchvision), loaded from a local state dict; DIS stays the default."""

import numpy as np
import pytest
import torch

from backend.params import ParamError, parse_params
from backend.pipelines.flow import FlowParams, RaftFlow
from backend.pipelines.propagate import PropagateParams

torch.set_num_threads(1)


def test_raft_loads_a_local_state_dict_and_returns_a_flow_per_pixel(tmp_path):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    path = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), path)  # random weights: the code path, not accuracy
    flow = RaftFlow(path, "cpu")
    a = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)
    out = flow(a, a[:, ::-1].copy())
    assert out.shape == (60, 90, 2) and out.dtype == np.float32 and np.isfinite(out).all()


def test_raft_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="use flow method 'dis'"):
        RaftFlow(tmp_path / "missing.pth", "cpu")
    torch.save({"not": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a torchvision raft"):
        RaftFlow(tmp_path / "other.pth", "cpu")
    with pytest.raises(ParamError, match="raft_weights"):
        parse_params(FlowParams, {"method": "raft"})
    assert PropagateParams().flow_method == "dis"
