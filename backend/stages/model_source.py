"""Where a stage learns which weights to load for a role: the one place that asks the model registry.

The registry (backend/models.py) maps roles ("depth", "matte", "upscaler") to a hub id, a folder or a
file, and says whether downloads are allowed. Until it is wired in, a stage run without one fails with
a clear message instead of guessing a model.
"""

from __future__ import annotations

from backend.loaders.missing import ModelMissing
from backend.stages.base import StageContext


def model_source(ctx: StageContext, role: str) -> tuple[str, bool]:
    """(source, local_files_only) for `role`, from the registry the job runner put in ctx.models."""
    registry = ctx.models
    if registry is None:
        raise ModelMissing(f"(no model config loaded for {role!r})", role, "start the backend with a model config")
    if isinstance(registry, dict):  # a plain {role: source} mapping, as tests and notebooks pass it
        if role not in registry:
            raise ModelMissing(f"(no {role!r} entry)", role, f"add a {role!r} entry to the model config")
        return str(registry[role]), True
    return registry.source(role), not getattr(registry, "allow_download", False)
