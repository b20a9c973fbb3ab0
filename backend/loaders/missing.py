"""The error every loader raises when a model's weights are not on this machine."""

from __future__ import annotations

import os
from pathlib import Path

from backend.errors import StageError


class ModelMissing(StageError):
    """A model the job needs is not here. The message names it, its config key and how to get it."""

    def __init__(self, model: str, role: str, how_to_get: str):
        super().__init__(
            f"model for {role!r} not found: {model}. Set the {role!r} entry of the model config to a local "
            f"folder or file, or {how_to_get}",
            code="model_missing",
        )
        self.model = model
        self.role = role


MODEL_FILE_SUFFIXES = (".onnx", ".safetensors", ".ckpt", ".pth", ".bin")


def looks_like_path(source: str) -> bool:
    """A filesystem path rather than a hub id (hub ids are "name" or "org/name", without a file suffix)."""
    if Path(source).expanduser().exists():
        return True
    if source.startswith(("/", ".", "~")) or "\\" in source or source.count("/") > 1:
        return True
    return Path(source).suffix.lower() in MODEL_FILE_SUFFIXES


def hub_hint(repo_id: str) -> str:
    return f"download it once on a machine with network: `hf download {repo_id}` (or allow downloads)"


def require_local(source: str, role: str, how_to_get: str) -> Path:
    """The source as an existing path, or ModelMissing naming it."""
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelMissing(str(path), role, how_to_get)
    return path
