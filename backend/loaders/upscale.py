"""Load a super-resolution model (transformers Swin2SR, 2x or 4x) from a folder or a cached hub id."""

from __future__ import annotations

from functools import lru_cache

from backend.loaders.hf import from_pretrained, torch_dtype_for
from backend.pipelines.upscale import Upscaler, swin2sr_runner

DEFAULT_UPSCALER = "caidas/swin2SR-classical-sr-x4-64"


@lru_cache(maxsize=2)  # models load once and stay warm between jobs
def load_upscaler(source: str, *, local_files_only: bool = True, device: str = "cpu", role: str = "upscaler") -> Upscaler:
    from transformers import AutoImageProcessor, Swin2SRForImageSuperResolution

    model = from_pretrained(Swin2SRForImageSuperResolution.from_pretrained, source, role=role,
                            local_files_only=local_files_only, dtype=torch_dtype_for(device))
    processor = from_pretrained(AutoImageProcessor.from_pretrained, source, role=role, local_files_only=local_files_only)
    model = model.to(device).eval()
    return Upscaler(run=swin2sr_runner(model, processor), scale=int(model.config.upscale),
                    align=int(model.config.window_size), name=source)
