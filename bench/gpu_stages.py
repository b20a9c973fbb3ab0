"""Frames per second of the per-frame model chain on the GPU at hand, with full-size random-weight models.

The chain per frame: ControlNet diffusion (SD 1.5 UNet + two ControlNets + VAE, 20 steps, CFG, fp16),
then depth (Depth Anything V2 base), then a matte (an ONNX net of rembg's size, u2net-like compute at
320x320). Random weights cost the same compute as trained ones, so the figures hold for real models
without downloading any. It prints the chain at 512x512 and 768x768, and SDXL (UNet, two text encoders,
VAE; no ControlNet) at 1024x1024 with the same depth and matte.

    python bench/gpu_stages.py            # on a GPU; prints "gpu_stages: no GPU" and exits 0 without one
    python bench/gpu_stages.py --smoke    # tiny configs on the CPU: checks the builders, not a benchmark

Last line: `gpu_stages: <fps512> fps at 512, <fps768> fps at 768, <fpsxl> fps SDXL 1024`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

STEPS = 20


# ---- model builders ------------------------------------------------------------------------------------
def tokenizer():
    """A CLIP tokenizer with a tiny vocabulary: tokenisation cost is nil either way, and nothing downloads."""
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({c + "</w>": len(letters) + i for i, c in enumerate(letters)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def clip_text(hidden: int, layers: int, heads: int, projection: int | None, tiny: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    if tiny:
        hidden, layers, heads, projection = 32, 2, 4, 32 if projection else None
    config = CLIPTextConfig(hidden_size=hidden, intermediate_size=hidden * 4, num_attention_heads=heads,
                            num_hidden_layers=layers, vocab_size=49408 if not tiny else 54,
                            max_position_embeddings=77, projection_dim=projection or hidden,
                            bos_token_id=52, eos_token_id=53, pad_token_id=53, hidden_act="gelu")
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def vae(tiny: bool):
    from diffusers import AutoencoderKL

    channels = (8, 8, 8, 8) if tiny else (128, 256, 512, 512)
    return AutoencoderKL(block_out_channels=channels, down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4,
                         layers_per_block=1 if tiny else 2, norm_num_groups=4 if tiny else 32)


def sd15_unet(tiny: bool):
    from diffusers import UNet2DConditionModel

    if tiny:
        return UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, cross_attention_dim=32,
                                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=8)
    return UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8, sample_size=64)  # SD 1.5's


def sdxl_unet(tiny: bool):
    from diffusers import UNet2DConditionModel

    if tiny:
        return UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=2, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4), use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80, cross_attention_dim=64)
    return UNet2DConditionModel(  # SDXL base 1.0's
        block_out_channels=(320, 640, 1280), layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816, sample_size=128)


def scheduler():
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                           steps_offset=1)


def sd15_controlnet_pipeline(device, dtype, tiny: bool):
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    with torch.device(device):
        unet = sd15_unet(tiny)
        embed = (8, 8, 8, 8) if tiny else (16, 32, 96, 256)
        controlnets = [ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=embed) for _ in range(2)]
        pipe = StableDiffusionControlNetPipeline(
            vae=vae(tiny), text_encoder=clip_text(768, 12, 12, None, tiny), tokenizer=tokenizer(), unet=unet,
            controlnet=controlnets, scheduler=scheduler(), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sdxl_pipeline(device, dtype, tiny: bool):
    from diffusers import StableDiffusionXLPipeline

    with torch.device(device):
        pipe = StableDiffusionXLPipeline(
            vae=vae(tiny), text_encoder=clip_text(768, 12, 12, None, tiny),
            text_encoder_2=clip_text(1280, 32, 20, 1280, tiny), tokenizer=tokenizer(), tokenizer_2=tokenizer(),
            unet=sdxl_unet(tiny), scheduler=scheduler())
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def depth_model(device, dtype, tiny: bool):
    """Depth Anything V2 base, from its architecture config (Dinov2-B/14 backbone, DPT head)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    if tiny:
        backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64,
                                patch_size=14, image_size=70, out_features=["stage1", "stage2", "stage3", "stage4"],
                                reshape_hidden_states=False)
        config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16, 32, 32],
                                     reassemble_hidden_size=32, fusion_hidden_size=16, head_hidden_size=8)
    else:
        backbone = Dinov2Config(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, patch_size=14,
                                image_size=518, out_features=["stage3", "stage6", "stage9", "stage12"],
                                reshape_hidden_states=False)
        config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[96, 192, 384, 768],
                                     reassemble_hidden_size=768, fusion_hidden_size=128, head_hidden_size=32)
    with torch.device(device):
        model = DepthAnythingForDepthEstimation(config)
    return model.to(device, dtype).eval()


class MatteNet(nn.Module):
    """A U-Net of rembg's order of size (31M parameters; u2net has 44M) at 320x320, for timing the matte step."""

    def __init__(self, widths=(64, 128, 256, 512, 1024)):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.down = nn.ModuleList()
        cin = 3
        for w in widths:
            self.down.append(block(cin, w))
            cin = w
        self.up = nn.ModuleList(block(widths[i] + widths[i + 1], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(torch.cat([nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear"), skip], 1))
        return torch.sigmoid(self.head(x))


def matte_runner(device, dtype, tiny: bool, folder: Path):
    """An ONNX export of MatteNet run by onnxruntime (CUDA provider when present), as rembg runs its nets.

    Returns (run(image), description). Without onnxruntime's CUDA provider the same net runs in torch on the
    GPU instead, which is said in the description.
    """
    import onnxruntime as ort

    size = 64 if tiny else 320
    net = MatteNet((4, 8, 8, 16, 16) if tiny else (64, 128, 256, 512, 1024)).eval()
    path = folder / "matte.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, size, size), str(path), input_names=["input"], output_names=["alpha"],
                      dynamo=False)
    params = sum(p.numel() for p in net.parameters()) / 1e6
    want_cuda = str(device).startswith("cuda")
    if not want_cuda or "CUDAExecutionProvider" in ort.get_available_providers():
        providers = ["CUDAExecutionProvider"] if want_cuda else ["CPUExecutionProvider"]
        session = ort.InferenceSession(str(path), providers=providers)

        def run(image: np.ndarray):
            return session.run(None, {"input": image})[0]

        return run, size, f"onnxruntime {providers[0]}, {params:.0f}M params at {size}x{size}"
    torch_net = net.to(device, dtype)

    def run_torch(image: np.ndarray):
        with torch.inference_mode():
            return torch_net(torch.from_numpy(image).to(device, dtype)).float().cpu().numpy()

    return run_torch, size, f"torch on {device} (onnxruntime has no CUDA provider here), {params:.0f}M params"


# ---- timing ----------------------------------------------------------------------------------------------
def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def seconds(fn, device, repeats: int) -> float:
    fn()  # warm-up: kernels, allocator, cuDNN autotune
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def chain_seconds(diffuse, size, depth, matte, matte_size, device, dtype, repeats, steps):
    """One frame's diffusion + depth + matte, each timed on its own; returns their seconds."""
    from PIL import Image

    frame = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))
    generator = torch.Generator("cpu").manual_seed(0)
    kwargs = dict(prompt="a knight in a lit hall", negative_prompt="blurry", num_inference_steps=steps,
                  guidance_scale=7.0, width=size, height=size, generator=generator, output_type="np")
    if hasattr(diffuse, "controlnet"):
        kwargs.update(image=[frame, frame], controlnet_conditioning_scale=[1.0, 0.8])
    depth_size = 70 if size < 512 else 518
    depth_in = torch.randn(1, 3, depth_size, depth_size, device=device, dtype=dtype)
    matte_in = np.random.default_rng(1).random((1, 3, matte_size, matte_size), dtype=np.float32)

    def run_depth():
        with torch.inference_mode():
            depth(pixel_values=depth_in)

    t_diffuse = seconds(lambda: diffuse(**kwargs), device, repeats)
    t_depth = seconds(run_depth, device, repeats * 5)
    t_matte = seconds(lambda: matte(matte_in), device, repeats * 5)
    return t_diffuse, t_depth, t_matte


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU (checks the builders)")
    parser.add_argument("--repeats", type=int, default=3, help="timed diffusion runs per size")
    args = parser.parse_args(argv)

    if args.smoke:
        device, dtype, tiny, steps, sizes, xl_size = "cpu", torch.float32, True, 2, (64, 96), 64
        torch.set_num_threads(1)
        args.repeats = 1
        label = "gpu_stages (smoke: tiny models on the CPU, not a benchmark)"
    elif torch.cuda.is_available():
        device, dtype, tiny, steps, sizes, xl_size = "cuda", torch.float16, False, STEPS, (512, 768), 1024
        label = "gpu_stages"
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, fp16, {steps} steps, CFG 7")
    else:
        print("gpu_stages: no GPU")
        return 0

    fps = {}
    with tempfile.TemporaryDirectory() as tmp:
        depth = depth_model(device, dtype, tiny)
        matte, matte_size, matte_note = matte_runner(device, dtype, tiny, Path(tmp))
        print(f"depth: Depth Anything V2 base architecture; matte: {matte_note}")
        sd = sd15_controlnet_pipeline(device, dtype, tiny)
        for size in sizes:
            parts = chain_seconds(sd, size, depth, matte, matte_size, device, dtype, args.repeats, steps)
            fps[size] = 1.0 / sum(parts)
            print(f"SD1.5 + 2 ControlNets {size}x{size}: diffuse {parts[0]:.3f} s, depth {parts[1]:.3f} s, "
                  f"matte {parts[2]:.3f} s -> {fps[size]:.2f} fps")
        del sd
        if device == "cuda":
            torch.cuda.empty_cache()
        xl = sdxl_pipeline(device, dtype, tiny)
        parts = chain_seconds(xl, xl_size, depth, matte, matte_size, device, dtype, args.repeats, steps)
        fps["xl"] = 1.0 / sum(parts)
        print(f"SDXL {xl_size}x{xl_size}: diffuse {parts[0]:.3f} s, depth {parts[1]:.3f} s, matte {parts[2]:.3f} s "
              f"-> {fps['xl']:.2f} fps")
    a, b = sizes
    print(f"{label}: {fps[a]:.2f} fps at {a}, {fps[b]:.2f} fps at {b}, {fps['xl']:.2f} fps SDXL {xl_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
