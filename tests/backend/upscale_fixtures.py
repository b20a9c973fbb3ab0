"""Tiny Swin2SR models (random weights) saved like real ones, for the upscale tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def save_tiny_swin2sr(folder, scale: int) -> str:
    from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution, Swin2SRImageProcessor

    torch.manual_seed(scale)
    config = Swin2SRConfig(image_size=32, embed_dim=16, depths=[2], num_heads=[2], window_size=4, upscale=scale,
                           mlp_ratio=2.0)
    Swin2SRForImageSuperResolution(config).eval().save_pretrained(folder)
    Swin2SRImageProcessor(pad_size=4).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_swin2sr_x2(tmp_path_factory) -> str:
    return save_tiny_swin2sr(tmp_path_factory.mktemp("swin2sr_x2"), 2)


@pytest.fixture(scope="session")
def tiny_swin2sr_x4(tmp_path_factory) -> str:
    return save_tiny_swin2sr(tmp_path_factory.mktemp("swin2sr_x4"), 4)


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Edges, gradients and fine texture: what seams show up on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(x / 3.0), 128 + 100 * np.cos(y / 4.0), (x + y) % 64 * 4], -1)
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
