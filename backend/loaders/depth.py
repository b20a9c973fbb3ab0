"""Load a depth model: Depth Anything V2 (default), ZoeDepth or DPT, from a folder or a cached hub id."""

from __future__ import annotations


from backend.loaders.hf import from_pretrained, torch_dtype_for
from backend.pipelines.depth import DepthModel, model_kind

DEFAULT_DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"


def load_depth_model(source: str, *, local_files_only: bool = True, device: str = "cpu", role: str = "depth") -> DepthModel:
    """The depth model at `source` (a folder saved with save_pretrained, or a hub id in the local cache)."""
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    model = from_pretrained(
        AutoModelForDepthEstimation.from_pretrained, source, role=role,
        local_files_only=local_files_only, dtype=torch_dtype_for(device),
    )
    processor = from_pretrained(AutoImageProcessor.from_pretrained, source, role=role, local_files_only=local_files_only)
    model = model.to(device).eval()
    return DepthModel(model=model, processor=processor, kind=model_kind(model.config), name=source)
