"""Seconds per output frame and peak GPU memory of the video engines (engine=vace, engine=animate) with
full-size random-weight Wan architectures: VACE 1.3B and 14B, Animate 14B, at 480p and 720p, one 81-frame
segment (77 for Animate, its own length), through the same segment functions the propagate stage runs.
Random weights cost the same compute as trained ones, so the figures hold without downloading anything.

    python bench/gpu_video_engines.py            # on a GPU; prints "gpu_video_engines: no GPU" and exits 0 without
    python bench/gpu_video_engines.py --smoke    # tiny configs on the CPU: checks the builders, not a benchmark

Last line: `gpu_video_engines: vace-1.3B 480p <s>/frame <GB> GB, ... (N steps)`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.pipelines.video_params import VideoParams  # noqa: E402
from backend.pipelines.video_segments import shot_noise  # noqa: E402
from backend.pipelines.wan_animate import animate_segment  # noqa: E402
from backend.pipelines.wan_vace import vace_segment  # noqa: E402

SIZES = {"480p": (832, 480), "720p": (1280, 720)}
VACE_1_3B = dict(num_attention_heads=12, ffn_dim=8960, num_layers=30, vace_layers=list(range(0, 30, 2)))


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2, "figure": 3}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)


def text_encoder(tiny: bool):
    from transformers import UMT5Config, UMT5EncoderModel

    if tiny:
        return UMT5EncoderModel(UMT5Config(vocab_size=8, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                           relative_attention_num_buckets=8)).eval()
    # UMT5-XXL, Wan's text encoder (vocabulary cut: embedding size does not change the compute)
    return UMT5EncoderModel(UMT5Config(vocab_size=1024, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                                       num_heads=64, feed_forward_proj="gated-gelu",
                                       relative_attention_num_buckets=32)).eval()


def wan_vae(tiny: bool):
    from diffusers import AutoencoderKLWan

    if tiny:
        return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                temperal_downsample=[False, True, True])
    return AutoencoderKLWan()   # the defaults are Wan 2.1's VAE


def scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(shift=5.0)


def vace_pipeline(size: str, tiny: bool):
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    if tiny:
        transformer = WanVACETransformer3DModel(num_attention_heads=2, attention_head_dim=12, text_dim=32, ffn_dim=32,
                                                num_layers=3, vace_layers=[0, 2], rope_max_seq_len=32)
    else:
        transformer = WanVACETransformer3DModel(**(VACE_1_3B if size == "1.3B" else {}))
    return WanVACEPipeline(tokenizer=tokenizer(), text_encoder=text_encoder(tiny), vae=wan_vae(tiny),
                           scheduler=scheduler(), transformer=transformer)


def animate_pipeline(tiny: bool):
    from diffusers import WanAnimatePipeline, WanAnimateTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    if tiny:
        transformer = WanAnimateTransformer3DModel(
            num_attention_heads=2, attention_head_dim=12, text_dim=32, ffn_dim=32, num_layers=2, image_dim=4,
            rope_max_seq_len=32, motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16}, motion_encoder_size=16,
            motion_style_dim=8, motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16,
            face_encoder_num_heads=2, inject_face_latents_blocks=2)
        vision = CLIPVisionConfig(hidden_size=4, num_hidden_layers=2, num_attention_heads=2, image_size=4,
                                  intermediate_size=16, patch_size=1)
        processor = CLIPImageProcessor(crop_size=4, size=4)
    else:
        transformer = WanAnimateTransformer3DModel()   # the defaults are Wan2.2-Animate-14B's
        vision = CLIPVisionConfig(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16,
                                  intermediate_size=5120, image_size=224, patch_size=14)   # ViT-H/14
        processor = CLIPImageProcessor(crop_size=224, size=224)
    return WanAnimatePipeline(tokenizer=tokenizer(), text_encoder=text_encoder(tiny), vae=wan_vae(tiny),
                              scheduler=scheduler(), transformer=transformer, image_encoder=CLIPVisionModel(vision),
                              image_processor=processor)


def measure(engine: str, pipe, width: int, height: int, frames: int, steps: int, device: str) -> tuple[float, float]:
    """(seconds per output frame, peak GPU memory in GB) of one segment."""
    rng = np.random.default_rng(0)
    video = VideoParams(prompt="figure", steps=steps, guidance=5.0 if engine == "vace" else 1.0,
                        face_size=pipe.transformer.config.motion_encoder_size if engine == "animate" else 512)
    z, spatial = pipe.vae.config.z_dim, pipe.vae_scale_factor_spatial
    noise = shot_noise(0, 0, (frames - 1) // 4 + 1, (z, height // spatial, width // spatial), 1)
    images = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(frames)]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if engine == "vace":
        vace_segment(pipe, video, images, {}, images[0], noise)
    else:
        faces = [rng.integers(0, 255, (video.face_size, video.face_size, 3), dtype=np.uint8)] * frames
        animate_segment(pipe, video, images[0], images, faces, None, noise)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    return seconds / frames, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU (checks the code paths)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps (per-frame time scales with them)")
    parser.add_argument("--only", help="one of vace-1.3B, vace-14B, animate-14B")
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        print("gpu_video_engines: no GPU (nothing measured; run it where torch sees a CUDA device, or --smoke)")
        return 0
    device = "cpu" if args.smoke else "cuda"
    dtype = torch.float32 if args.smoke else torch.bfloat16
    sizes = {"tiny": (48, 32)} if args.smoke else SIZES
    results = []
    for name in ("vace-1.3B", "vace-14B", "animate-14B"):
        if args.only and name != args.only:
            continue
        engine = name.split("-")[0]
        with torch.device(device):
            torch.manual_seed(0)
            pipe = vace_pipeline(name.split("-")[1], args.smoke) if engine == "vace" else animate_pipeline(args.smoke)
        pipe.to(device, dtype)
        pipe.set_progress_bar_config(disable=True)
        frames = (9 if args.smoke else 81) if engine == "vace" else (9 if args.smoke else 77)
        for label, (width, height) in sizes.items():
            per_frame, peak = measure(engine, pipe, width, height, frames, args.steps, device)
            print(f"{name} {label} {frames} frames: {per_frame:.2f} s/frame, peak {peak:.1f} GB", flush=True)
            results.append(f"{name} {label} {per_frame:.2f} s/frame {peak:.1f} GB")
        del pipe
        if device == "cuda":
            torch.cuda.empty_cache()
    print(f"gpu_video_engines: {', '.join(results)} ({args.steps} steps{', SMOKE on CPU' if args.smoke else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
