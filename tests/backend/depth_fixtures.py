"""Tiny depth models (random weights) saved like real ones, for the depth tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_depth_anything(tmp_path_factory) -> str:
    """A Depth Anything (V2 layout) model: tiny Dinov2 backbone, DPT-style head, with its image processor."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
        image_size=56, patch_size=14, out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[16, 16, 32, 32],
        fusion_hidden_size=16, head_hidden_size=8, patch_size=14,
    )
    folder = tmp_path_factory.mktemp("depth_anything")
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_dpt(tmp_path_factory) -> str:
    """A DPT (MiDaS layout) model with a tiny ViT; DPT's ViT takes square inputs, as dpt-large's processor makes."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(1)
    config = DPTConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=32,
        patch_size=8, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[16, 16, 32, 32], fusion_hidden_size=16,
    )
    folder = tmp_path_factory.mktemp("dpt")
    DPTForDepthEstimation(config).eval().save_pretrained(folder)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(folder)
    return str(folder)


def scene(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A structured RGB frame: a gradient floor, a wall and a bright box, so the model's output varies."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin(x / 5.0)], axis=-1) * 200
    img[height // 4: height // 2, width // 3: width // 2] = (250, 220, 40)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_zoedepth(tmp_path_factory) -> str:
    """A ZoeDepth (metric) model with a tiny BEiT backbone and one bin configuration."""
    from transformers import BeitConfig, ZoeDepthConfig, ZoeDepthForDepthEstimation, ZoeDepthImageProcessor

    torch.manual_seed(2)
    backbone = BeitConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8,
        out_indices=[1, 2, 3, 4], use_relative_position_bias=True, reshape_hidden_states=False, add_fpn=False,
    )
    config = ZoeDepthConfig(
        backbone_config=backbone, backbone_hidden_size=32, hidden_size=32, neck_hidden_sizes=[16, 16, 32, 32],
        fusion_hidden_size=16, bottleneck_features=16, num_relative_features=8, bin_embedding_dim=16,
        num_attractors=[4, 4, 4, 4], bin_configurations=[{"n_bins": 8, "min_depth": 0.5, "max_depth": 10.0, "name": "nyu"}],
    )
    folder = tmp_path_factory.mktemp("zoedepth")
    ZoeDepthForDepthEstimation(config).eval().save_pretrained(folder)
    ZoeDepthImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=True, ensure_multiple_of=8).save_pretrained(folder)
    return str(folder)
