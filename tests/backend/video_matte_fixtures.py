"""Tiny random-weight SAM 2 video and ViTMatte models, built from small configs through the real classes."""

from __future__ import annotations

from pathlib import Path

SIZE = 128   # the tracker's input size


def save_tiny_tracker(folder: Path) -> Path:
    import torch
    from transformers import (Sam2HieraDetConfig, Sam2MaskDecoderConfig, Sam2PromptEncoderConfig, Sam2VideoConfig,
                              Sam2VideoModel, Sam2VideoProcessor, Sam2VisionConfig)
    from transformers.models.sam2.image_processing_sam2_fast import Sam2ImageProcessorFast
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    # widths: the memory cross-attention reads 64 channels (fixed in the model), and pointers split into them
    hidden, memory = 128, 64
    backbone = Sam2HieraDetConfig(hidden_size=12, image_size=SIZE, blocks_per_stage=[1, 1, 1, 1],
                                  embed_dim_per_stage=[12, 24, 48, 96], num_attention_heads_per_stage=[1, 1, 1, 1])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[96, 48, 24, 12],
                              backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]], fpn_hidden_size=hidden)
    config = Sam2VideoConfig(
        vision_config=vision, image_size=SIZE,
        prompt_encoder_config=Sam2PromptEncoderConfig(image_size=SIZE, patch_size=16, hidden_size=hidden,
                                                      mask_input_channels=8),
        mask_decoder_config=Sam2MaskDecoderConfig(hidden_size=hidden, mlp_dim=64, num_hidden_layers=2,
                                                  num_attention_heads=4, iou_head_hidden_dim=32),
        memory_attention_hidden_size=hidden, memory_encoder_hidden_size=hidden, memory_encoder_output_channels=memory,
        mask_downsampler_embed_dim=hidden, memory_fuser_embed_dim=hidden, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32, memory_attention_rope_feat_sizes=[8, 8])
    torch.manual_seed(0)
    Sam2VideoModel(config).eval().save_pretrained(folder)
    size = {"height": SIZE, "width": SIZE}
    Sam2VideoProcessor(image_processor=Sam2ImageProcessorFast(size=size),
                       video_processor=Sam2VideoVideoProcessor(size=size)).save_pretrained(folder)
    return folder


def save_tiny_matting(folder: Path) -> Path:
    import torch
    from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting, VitMatteImageProcessor

    backbone = VitDetConfig(image_size=64, pretrain_image_size=64, patch_size=16, num_channels=4, hidden_size=32,
                            num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, out_features=["stage2"])
    config = VitMatteConfig(backbone_config=backbone, hidden_size=32, convstream_hidden_sizes=[8, 16, 16],
                            fusion_hidden_sizes=[32, 16, 8, 8])
    torch.manual_seed(0)
    VitMatteForImageMatting(config).eval().save_pretrained(folder)
    VitMatteImageProcessor().save_pretrained(folder)
    return folder
