"""Load the two models of video matting: the tracker (SAM 2 video) and the matting model (ViTMatte)."""

from __future__ import annotations

from typing import Any

from backend.loaders.hf import from_pretrained


def load_tracker(source: str, *, local_files_only: bool = True, device: str = "cpu",
                 role: str = "tracker") -> tuple[Any, Any]:
    """(Sam2VideoModel, Sam2VideoProcessor) from a folder saved with save_pretrained, or a cached hub id."""
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    model = from_pretrained(Sam2VideoModel.from_pretrained, source, role=role, local_files_only=local_files_only)
    processor = from_pretrained(Sam2VideoProcessor.from_pretrained, source, role=role,
                                local_files_only=local_files_only)
    return model.to(device).eval(), processor


def load_matting(source: str, *, local_files_only: bool = True, device: str = "cpu",
                 role: str = "matting") -> tuple[Any, Any]:
    """(VitMatteForImageMatting, VitMatteImageProcessor) from a folder or a cached hub id."""
    from transformers import VitMatteForImageMatting, VitMatteImageProcessor

    model = from_pretrained(VitMatteForImageMatting.from_pretrained, source, role=role,
                            local_files_only=local_files_only)
    processor = from_pretrained(VitMatteImageProcessor.from_pretrained, source, role=role,
                                local_files_only=local_files_only)
    return model.to(device).eval(), processor
