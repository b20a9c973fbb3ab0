"""Tiny Wan video models (VACE and Animate) built from configs with random weights, saved as diffusers folders.

The sizes follow diffusers' own Wan pipeline tests: a 3-level Wan VAE (8x space, 4x time), a 2-3 layer
transformer, a 2-layer T5 encoder and, for Animate, a tiny CLIP vision encoder. The tokenizer is a word-level
one built here with the `tokenizers` library (no hub access). Everything loads through the same registry and
loaders as the backend does.
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ["<pad>", "</s>", "<unk>"] + "a an the of in on red blue green ink cel painted dancer figure walk".split()


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=16)


def _text_encoder():
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(vocab_size=len(WORDS), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, dropout_rate=0.0)
    return UMT5EncoderModel(config).eval()


def _vae():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True]).eval()


def _scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(shift=7.0)


def build_tiny_vace(folder: Path) -> Path:
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    torch.manual_seed(0)
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=3, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=96)
    pipe = WanVACEPipeline(tokenizer=_tokenizer(), text_encoder=_text_encoder(), vae=_vae(),
                           scheduler=_scheduler(), transformer=transformer)
    pipe.save_pretrained(folder)
    return folder


def build_tiny_animate(folder: Path) -> Path:
    from diffusers import WanAnimatePipeline, WanAnimateTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    transformer = WanAnimateTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36, latent_channels=16,
        out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", image_dim=4, rope_max_seq_len=32,
        motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16}, motion_encoder_size=16, motion_style_dim=8,
        motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16, face_encoder_num_heads=2,
        inject_face_latents_blocks=2)
    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=4, num_hidden_layers=2, num_attention_heads=2, image_size=4,
        intermediate_size=16, patch_size=1)).eval()
    pipe = WanAnimatePipeline(tokenizer=_tokenizer(), text_encoder=_text_encoder(), vae=_vae(),
                              scheduler=_scheduler(), transformer=transformer, image_encoder=image_encoder,
                              image_processor=CLIPImageProcessor(crop_size=4, size=4))
    pipe.save_pretrained(folder)
    return folder
