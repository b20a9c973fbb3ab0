"""Load an upscaler: transformers Swin2SR (2x or 4x), or a diffusers StableDiffusionUpscalePipeline (4x)."""

from __future__ import annotations

from pathlib import Path

from backend.loaders.hf import from_pretrained, resolve_source, torch_dtype_for
from backend.pipelines.upscale import Upscaler, swin2sr_runner

DEFAULT_UPSCALER = "caidas/swin2SR-classical-sr-x4-64"


def load_upscaler(source: str, *, local_files_only: bool = True, device: str = "cpu", role: str = "upscaler") -> Upscaler:
    """The upscaler at `source`: a diffusers pipeline folder (it has model_index.json) or a Swin2SR model."""
    resolved = resolve_source(source, role=role, local_files_only=local_files_only)
    if Path(resolved, "model_index.json").is_file():
        return _diffusion_upscaler(resolved, source, device)
    from transformers import AutoImageProcessor, Swin2SRForImageSuperResolution

    model = from_pretrained(Swin2SRForImageSuperResolution.from_pretrained, resolved, role=role,
                            local_files_only=local_files_only, dtype=torch_dtype_for(device))
    processor = from_pretrained(AutoImageProcessor.from_pretrained, resolved, role=role, local_files_only=local_files_only)
    model = model.to(device).eval()
    return Upscaler(for_frame=swin2sr_runner(model, processor), scale=int(model.config.upscale),
                    align=int(model.config.window_size), name=source)


def _diffusion_upscaler(folder: str, name: str, device: str) -> Upscaler:
    from diffusers import StableDiffusionUpscalePipeline

    from backend.pipelines.upscale_diffusion import sd_upscale_runner, size_multiple

    pipe = StableDiffusionUpscalePipeline.from_pretrained(folder, local_files_only=True, dtype=torch_dtype_for(device))
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return Upscaler(for_frame=sd_upscale_runner(pipe), scale=4, align=size_multiple(pipe), name=name)
