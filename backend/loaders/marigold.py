"""Load a Marigold pipeline (diffusers): normals, or intrinsics (albedo), from a folder or a cached hub id."""

from __future__ import annotations

import json
from pathlib import Path

from backend.errors import StageError
from backend.loaders.hf import resolve_source, torch_dtype_for

DEFAULT_NORMAL_MODEL = "prs-eth/marigold-normals-v1-1"
DEFAULT_ALBEDO_MODEL = "prs-eth/marigold-iid-appearance-v1-1"


def load_marigold(kind: str, source: str, *, local_files_only: bool = True, device: str = "cpu", role: str):
    """`kind` "normals" or "intrinsics"; the pipeline at `source`, on `device`, progress bars off."""
    from diffusers import MarigoldIntrinsicsPipeline, MarigoldNormalsPipeline

    cls = {"normals": MarigoldNormalsPipeline, "intrinsics": MarigoldIntrinsicsPipeline}[kind]
    folder = resolve_source(source, role=role, local_files_only=local_files_only)
    if not Path(folder, "model_index.json").is_file():
        raise StageError(f"{source} is not a diffusers pipeline folder (no model_index.json); the {role!r} role needs "
                         f"a Marigold {kind} pipeline such as {DEFAULT_NORMAL_MODEL if kind == 'normals' else DEFAULT_ALBEDO_MODEL}",
                         code="bad_model")
    index = json.loads(Path(folder, "model_index.json").read_text())
    names = (index.get("target_properties") or {}).get("target_names", [])
    if index.get("_class_name") != cls.__name__ or (kind == "intrinsics" and "albedo" not in names):
        wanted = "normals" if kind == "normals" else "intrinsics with an albedo target"
        raise StageError(f"{source} is a {index.get('_class_name')} (predicting {names or index.get('prediction_type')}); the "
                         f"{role!r} role needs a Marigold {wanted} model, such as "
                         f"{DEFAULT_NORMAL_MODEL if kind == 'normals' else DEFAULT_ALBEDO_MODEL}", code="bad_model")
    pipe = cls.from_pretrained(folder, local_files_only=True, dtype=torch_dtype_for(device))
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
