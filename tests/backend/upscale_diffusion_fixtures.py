"""A tiny StableDiffusionUpscalePipeline (random weights, a byte-level CLIP tokenizer) saved like the real one."""

from __future__ import annotations

import pytest
import torch


def tiny_clip_tokenizer():
    """A CLIP tokenizer whose vocabulary is the 256 byte symbols (each alone and word-final), no merges."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"])}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)


def save_tiny_sd_upscaler(folder) -> str:
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionUpscalePipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=7, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8, num_class_embeds=400,
    )
    vae = AutoencoderKL(  # three blocks: two halvings, so latents are the input's size and the output 4x
        block_out_channels=[8, 8, 16], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3, scaling_factor=0.08333,
    )
    tokenizer = tiny_clip_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=16, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    pipe = StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        low_res_scheduler=DDPMScheduler(), scheduler=DDIMScheduler(), max_noise_level=350,
    )
    out = folder / "pipeline"
    pipe.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_sd_upscaler(tmp_path_factory) -> str:
    return save_tiny_sd_upscaler(tmp_path_factory.mktemp("sd_x4_upscaler"))
