"""Tiny Marigold pipelines (random weights) saved as diffusers folders, for the normal and albedo stages."""

from __future__ import annotations

import pytest
import torch

from diffuse_fixtures import _text_encoder, _tokenizer, _vae


def _parts(targets: int):
    from diffusers import DDIMScheduler, UNet2DConditionModel

    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4 + 4 * targets,
        out_channels=4 * targets, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, attention_head_dim=8,
        norm_num_groups=8,
    ).eval()
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              prediction_type="v_prediction", timestep_spacing="trailing", clip_sample=False)
    return dict(unet=unet, vae=_vae(), scheduler=scheduler, text_encoder=_text_encoder(), tokenizer=_tokenizer())


@pytest.fixture(scope="session")
def tiny_marigold_normals(tmp_path_factory) -> str:
    from diffusers import MarigoldNormalsPipeline

    torch.manual_seed(0)
    pipe = MarigoldNormalsPipeline(**_parts(1), prediction_type="normals", use_full_z_range=True,
                                   default_denoising_steps=2, default_processing_resolution=64)
    folder = tmp_path_factory.mktemp("marigold_normals")
    pipe.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_marigold_intrinsics(tmp_path_factory) -> str:
    """The lighting model's layout: albedo (linear light), shading, residual."""
    from diffusers import MarigoldIntrinsicsPipeline

    torch.manual_seed(1)
    properties = {"target_names": ["albedo", "shading", "residual"],
                  "albedo": {"prediction_space": "linear", "up_to_scale": False},
                  "shading": {"prediction_space": "linear", "up_to_scale": True},
                  "residual": {"prediction_space": "linear", "up_to_scale": True}}
    pipe = MarigoldIntrinsicsPipeline(**_parts(3), prediction_type="intrinsics", target_properties=properties,
                                      default_denoising_steps=2, default_processing_resolution=64)
    folder = tmp_path_factory.mktemp("marigold_iid")
    pipe.save_pretrained(folder)
    return str(folder)
